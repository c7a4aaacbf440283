//! rustls configurations for libp2p: TLS 1.3 only, the ring provider, our certificate, the
//! libp2p verifier both ways, no session resumption, no SNI. QUIC takes the same ones (with
//! only `libp2p` as ALPN).

use std::sync::Arc;

use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use crate::cert::Identity;
use crate::clock::Clock;
use crate::error::TlsError;
use crate::verifier::Libp2pVerifier;

/// The ALPN every libp2p TLS endpoint offers (last: it means "negotiate the muxer later").
pub const ALPN_LIBP2P: &[u8] = b"libp2p";
/// yamux offered through ALPN (early muxer negotiation), before `libp2p`.
pub const YAMUX_ALPN: &[u8] = b"/yamux/1.0.0";

/// ring with the three TLS 1.3 cipher suites (AES-128-GCM first, as ring orders them).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .retain(|s| s.version() == &rustls::version::TLS13);
    Arc::new(p)
}

fn local(e: rustls::Error) -> TlsError {
    TlsError::Local(format!("TLS configuration: {e}"))
}

fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|a| a.to_vec()).collect()
}

/// Presents our one certificate. rustls' `with_single_cert` would parse it with webpki, which
/// refuses the (critical) libp2p extension, so the key is paired with it here instead.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl OneCert {
    fn new(identity: &Identity, provider: &CryptoProvider) -> Result<Arc<Self>, TlsError> {
        let key = provider
            .key_provider
            .load_private_key(identity.private_key())
            .map_err(local)?;
        let cert = CertifiedKey::new(vec![identity.certificate().clone()], key);
        Ok(Arc::new(Self(Arc::new(cert))))
    }
}

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for OneCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The dialer's configuration: presents `identity`, accepts only `expected_peer` (peer id
/// bytes) when given, offers `alpn` in order; certificates are checked at `clock`'s time.
pub fn client_config(
    identity: &Identity,
    expected_peer: Option<&[u8]>,
    alpn: &[&[u8]],
    clock: &Clock,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Libp2pVerifier::new(
        expected_peer.map(<[u8]>::to_vec),
        provider.signature_verification_algorithms,
    );
    let resolver = OneCert::new(identity, &provider)?;
    let mut cfg = ClientConfig::builder_with_details(provider, Arc::new(clock.clone()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(local)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(resolver);
    cfg.alpn_protocols = alpn_list(alpn);
    cfg.resumption = Resumption::disabled();
    cfg.enable_sni = false;
    Ok(cfg)
}

/// The listener's configuration: presents `identity`, requires and verifies a client
/// certificate, picks the first of `alpn` the client offers; certificates are checked at
/// `clock`'s time.
pub fn server_config(
    identity: &Identity,
    alpn: &[&[u8]],
    clock: &Clock,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let verifier = Libp2pVerifier::new(None, provider.signature_verification_algorithms);
    let resolver = OneCert::new(identity, &provider)?;
    let mut cfg = ServerConfig::builder_with_details(provider, Arc::new(clock.clone()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(local)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = alpn_list(alpn);
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(cfg)
}
