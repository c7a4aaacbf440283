//! The one error type of the crate; every variant is a distinct, typed reason.

/// Why a certificate, a handshake or a record was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// Not exactly one certificate, undecodable, outside its validity, or a bad self-signature.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// The certificate has no libp2p public-key extension (OID 1.3.6.1.4.1.53594.1.1).
    #[error("the certificate lacks the libp2p public key extension")]
    MissingExtension,
    /// The extension (or the key protobuf inside it) is not well-formed.
    #[error("malformed libp2p public key extension: {0}")]
    BadExtension(String),
    /// The identity key's signature over the certificate key does not verify.
    #[error("the identity signature in the certificate does not verify")]
    BadSignature,
    /// An identity key this implementation cannot verify (e.g. an RSA key under 2048 bits).
    #[error("unsupported identity key: {0}")]
    UnsupportedKey(String),
    /// The certificate proves a different peer than the one dialled (base58 peer ids).
    #[error("peer id mismatch: dialled {expected}, the certificate proves {actual}")]
    PeerIdMismatch { expected: String, actual: String },
    /// The TLS handshake failed for another reason (protocol violation, no common ALPN...).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The peer aborted with a TLS alert.
    #[error("the peer sent TLS alert {0}")]
    Alert(String),
    /// A record after the handshake failed: bad MAC, oversized, or not TLS at all.
    #[error("TLS record error: {0}")]
    Record(String),
    /// API misuse (local bug, never the peer's doing).
    #[error("{0}")]
    Local(String),
}

impl TlsError {
    /// True for the certificate errors the verifier raises (what a peer proved wrong).
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            Self::BadCertificate(_)
                | Self::MissingExtension
                | Self::BadExtension(_)
                | Self::BadSignature
                | Self::UnsupportedKey(_)
                | Self::PeerIdMismatch { .. }
        )
    }
}
