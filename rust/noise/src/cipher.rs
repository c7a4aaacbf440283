//! Noise `CipherState` for ChaChaPoly: a ChaCha20-Poly1305 key and a 64-bit counter nonce.
//!
//! The nonce is 4 zero bytes followed by the counter in little-endian, as the Noise spec fixes
//! for ChaChaPoly. Nonces only advance after an AEAD operation succeeded.
//!
//! The AEAD itself comes from one of several libraries (module [`aead`]), picked at build
//! time by cargo feature, because it is most of a bulk transfer's CPU and the libraries differ
//! by CPU: `ring` (the default), `aws-lc` (aws-lc-rs, already linked for WebRTC's DTLS) or
//! `openssl` (the `openssl` crate with its vendored OpenSSL source, which has the AVX-512
//! ChaCha20 and Poly1305 code paths). See `docs/how-to/benchmark.md` for the figures.

use crate::NoiseError;

pub mod aead;

use aead::{ChaChaPoly, DefaultAead};

/// Bytes of the Poly1305 authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// A key plus the next nonce to use with it.
pub(crate) struct CipherState {
    key: DefaultAead,
    n: u64,
}

impl CipherState {
    /// Wraps a 32-byte key with nonce 0.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: DefaultAead::new(key),
            n: 0,
        }
    }

    /// The next nonce value (how many messages this key has processed).
    pub(crate) fn nonce(&self) -> u64 {
        self.n
    }

    /// How many more messages this key may process (2^64 - 1 is reserved by the spec).
    pub(crate) fn remaining(&self) -> u64 {
        u64::MAX - self.n
    }

    fn next_nonce(&self) -> Result<[u8; 12], NoiseError> {
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        Ok(aead::noise_nonce(self.n))
    }

    /// Encrypts `buf` in place and returns the tag; advances the nonce.
    pub(crate) fn seal_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], NoiseError> {
        let nonce = self.next_nonce()?;
        let tag = self
            .key
            .seal(nonce, ad, buf)
            .map_err(|_| NoiseError::Decrypt)?;
        self.n += 1;
        Ok(tag)
    }

    /// Decrypts `buf` in place given its separate `tag`; advances the nonce only on success.
    pub(crate) fn open_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), NoiseError> {
        let nonce = self.next_nonce()?;
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| NoiseError::Decrypt)?;
        self.key
            .open(nonce, ad, buf, tag)
            .map_err(|_| NoiseError::Decrypt)?;
        self.n += 1;
        Ok(())
    }

    /// Test hook: jump the nonce (to exercise exhaustion without 2^64 messages).
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }
}
