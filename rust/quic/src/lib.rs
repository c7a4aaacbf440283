//! libp2p QUIC v1 (libp2p/specs `quic/README.md`) without IO: a quinn-proto endpoint whose TLS
//! is rust/tls's libp2p configuration (certificate with the libp2p extension, the verifier that
//! derives and checks the peer id, ALPN `libp2p`). QUIC streams are libp2p streams (no yamux).
//!
//! The caller owns the UDP socket and the clock: it feeds datagrams
//! ([`Endpoint::handle_datagram`]), runs timers ([`Endpoint::handle_timeout`]), collects events
//! ([`Endpoint::process`]) and sends what [`Endpoint::poll_transmit`] returns. Bad datagrams
//! never become events: quinn-proto drops what does not decode or authenticate.

mod config;
mod endpoint;
mod error;
mod verifier;

pub use config::ALPN_H3;
pub use config::{QuicConfig, QUIC_V1};
pub use endpoint::{Endpoint, Event};
pub use error::{CloseKind, CloseReason, QuicError};
pub use quinn_proto::Transmit;
