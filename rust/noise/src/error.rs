//! Every way a Noise handshake or transport can fail. Peer input never panics: it ends here.

/// Errors of the handshake state machine and of the transport cipher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// A handshake message is shorter than its pattern requires.
    #[error("truncated handshake message: {len} bytes, need at least {need}")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Minimum bytes the message pattern needs.
        need: usize,
    },
    /// A handshake or transport message would exceed the 65535-byte Noise limit.
    #[error("noise message of {0} bytes exceeds 65535")]
    TooLarge(usize),
    /// The AEAD tag did not verify (tampered, replayed, reordered or wrong key).
    #[error("decryption failed: bad authentication tag")]
    Decrypt,
    /// A transport frame is too short to hold the 16-byte tag.
    #[error("transport frame of {0} bytes is shorter than the 16-byte tag")]
    ShortFrame(usize),
    /// write/read called when the other one was due, or after the handshake ended.
    #[error("handshake message out of order: {0}")]
    OutOfOrder(&'static str),
    /// `into_transport` before the third message was processed.
    #[error("handshake not finished")]
    NotFinished,
    /// An earlier error aborted this handshake; it can't be resumed.
    #[error("handshake already failed")]
    Poisoned,
    /// The remote key yields an all-zero Diffie-Hellman output (a low-order point).
    #[error("remote x25519 key is a low-order point")]
    LowOrderKey,
    /// 2^64 - 1 messages were sent or received with one key.
    #[error("nonce exhausted")]
    NonceExhausted,
    /// The operating system's random generator failed.
    #[error("random number generator failed")]
    Rng,
}
