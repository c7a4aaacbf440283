//! libp2p TLS 1.3 (libp2p/specs `tls/tls.md`) without IO, for TLS over TCP today and QUIC later.
//!
//! - [`CertKey`] / [`Identity`]: a per-host self-signed certificate (ECDSA P-256 cert key)
//!   carrying the libp2p public-key extension. The identity key lives elsewhere (Python's
//!   `cryptography`), so making one is two steps: [`CertKey::generate`] returns the bytes the
//!   identity key must sign, [`CertKey::certify`] builds the certificate around the signature.
//! - [`verify_certificate`] and [`Libp2pVerifier`]: the checks both sides run on the peer's
//!   certificate (one certificate, validity, self-signature, the extension, the identity
//!   signature in Rust for all four key types, the peer id), plugged into rustls as its server
//!   and client certificate verifier.
//! - [`client_config`] / [`server_config`]: rustls configurations (TLS 1.3 only, ring provider,
//!   client certificates required, ALPN list given by the caller) that a QUIC endpoint
//!   (quinn-proto) takes as they are.
//! - [`Clock`]: the wall-clock time the caller passes in (certificate validity), which
//!   rustls reads as its `TimeProvider`: nothing here reads the system clock.
//! - [`Handshake`]: the TLS-over-TCP handshake as a sans-IO state machine (bytes in, bytes
//!   out), ending in a [`Transport`] (the record layer under yamux) and the proven peer.

mod cert;
mod clock;
mod config;
mod der;
mod error;
mod identity;
mod session;
mod transport;
mod verifier;

pub use cert::{
    verify_certificate, CertKey, Identity, PeerCertificate, LIBP2P_EXTENSION_OID, SIGNING_PREFIX,
};
pub use clock::Clock;
pub use config::{client_config, provider, server_config, ALPN_LIBP2P, YAMUX_ALPN};
pub use error::TlsError;
pub use identity::verify_identity_signature;
pub use session::{Handshake, Remote};
pub use transport::{Transport, MAX_RECORD_PLAINTEXT, RECORD_OVERHEAD};
pub use verifier::Libp2pVerifier;
