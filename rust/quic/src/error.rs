//! Errors of calls into the endpoint, and why a connection ended.

use rapidp2p_tls::TlsError;

/// A call into the endpoint failed (local misuse or a stream the peer ended).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// No such connection (closed, drained, or never ours).
    #[error("unknown QUIC connection {0}")]
    UnknownConnection(u64),
    /// No such stream on the connection (never opened, or both sides ended).
    #[error("unknown QUIC stream {0}")]
    UnknownStream(u64),
    /// The peer reset the stream, or stopped reading it.
    #[error("stream {0} was reset")]
    StreamReset(u64),
    /// We already finished or reset our side of the stream.
    #[error("stream {0} is closed for writing")]
    StreamClosed(u64),
    /// The dial could not start (bad address, no connection ids left...).
    #[error("cannot dial: {0}")]
    Dial(String),
    /// The configuration is unusable (a local bug).
    #[error("QUIC configuration: {0}")]
    Config(String),
    /// Our TLS identity could not be turned into a configuration.
    #[error(transparent)]
    Tls(TlsError),
}

/// The class of reason a connection ended (mapped to an exception by the glue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The certificate proves another peer than the one dialled.
    PeerIdMismatch,
    /// The peer's certificate was refused (no extension, bad signature, ...).
    Certificate,
    /// The handshake failed for another reason (refused by the peer, no common ALPN...).
    Handshake,
    /// The handshake did not finish in time (or the peer never answered).
    HandshakeTimeout,
    /// Nothing listens at the dialled address (an ICMP port unreachable came back).
    Refused,
    /// Closed by either side, idle timeout or stateless reset after the handshake.
    Closed,
    /// The peer violated QUIC after the handshake.
    Protocol,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub kind: CloseKind,
    pub message: String,
}

impl CloseReason {
    pub(crate) fn new(kind: CloseKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn from_tls(e: &TlsError) -> Self {
        let kind = match e {
            TlsError::PeerIdMismatch { .. } => CloseKind::PeerIdMismatch,
            e if e.is_certificate_error() => CloseKind::Certificate,
            _ => CloseKind::Handshake,
        };
        Self::new(kind, e.to_string())
    }
}
