//! Noise `CipherState` for ChaChaPoly: a ring ChaCha20-Poly1305 key and a 64-bit counter nonce.
//!
//! The nonce is 4 zero bytes followed by the counter in little-endian, as the Noise spec fixes
//! for ChaChaPoly. Nonces only advance after an AEAD operation succeeded.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

use crate::NoiseError;

/// Bytes of the Poly1305 authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// A key plus the next nonce to use with it.
pub(crate) struct CipherState {
    key: LessSafeKey,
    n: u64,
}

impl CipherState {
    /// Wraps a 32-byte key with nonce 0.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        // CHACHA20_POLY1305 takes exactly 32 bytes, so this cannot fail.
        let unbound = match UnboundKey::new(&CHACHA20_POLY1305, key) {
            Ok(k) => k,
            Err(_) => unreachable!("ChaCha20-Poly1305 key is 32 bytes"),
        };
        Self {
            key: LessSafeKey::new(unbound),
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

    fn ring_nonce(&self) -> Result<Nonce, NoiseError> {
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.n.to_le_bytes());
        Ok(Nonce::assume_unique_for_key(bytes))
    }

    /// Encrypts `buf` in place and returns the tag; advances the nonce.
    pub(crate) fn seal_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<Tag, NoiseError> {
        let nonce = self.ring_nonce()?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(ad), buf)
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
        let nonce = self.ring_nonce()?;
        let tag = Tag::try_from(tag).map_err(|_| NoiseError::Decrypt)?;
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(ad), tag, buf, 0..)
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
