//! The connection protector: one XSalsa20 keystream per direction, applied in place.

use crate::key::PreSharedKey;
use crate::stream::XSalsa20Stream as XSalsa20;

/// Length of the nonce each side sends first.
pub const NONCE_LEN: usize = 24;

/// The protector of one connection (sans-IO).
///
/// Write [`Protector::local_nonce`] to the socket before any other byte, pass every outgoing
/// byte through [`Protector::encrypt`] and every received byte through
/// [`Protector::decrypt`], in order. The first [`NONCE_LEN`] received bytes are the remote's
/// nonce; `decrypt` takes them out of the stream.
pub struct Protector {
    key: [u8; 32],
    local_nonce: [u8; NONCE_LEN],
    write: XSalsa20,
    remote_nonce: [u8; NONCE_LEN],
    remote_have: usize,
    read: Option<XSalsa20>,
}

impl Protector {
    /// A protector whose outgoing nonce is `local_nonce` (tests pass a fixed one).
    pub fn new(psk: &PreSharedKey, local_nonce: [u8; NONCE_LEN]) -> Self {
        let key = *psk.as_bytes();
        Self {
            write: XSalsa20::new(&key, &local_nonce),
            key,
            local_nonce,
            remote_nonce: [0; NONCE_LEN],
            remote_have: 0,
            read: None,
        }
    }

    /// A protector with a fresh nonce from the operating system's RNG.
    pub fn with_random_nonce(psk: &PreSharedKey) -> Result<Self, getrandom::Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce)?;
        Ok(Self::new(psk, nonce))
    }

    /// The nonce to send before anything else.
    pub fn local_nonce(&self) -> &[u8; NONCE_LEN] {
        &self.local_nonce
    }

    /// The remote's nonce once all of it arrived.
    pub fn remote_nonce(&self) -> Option<&[u8; NONCE_LEN]> {
        self.read.as_ref().map(|_| &self.remote_nonce)
    }

    /// How many bytes of the remote's nonce arrived so far (0..=24).
    pub fn remote_nonce_received(&self) -> usize {
        self.remote_have
    }

    /// Encrypts outgoing bytes in place (continuing the outgoing keystream).
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.write.apply(buf);
    }

    /// Decrypts received bytes in place. The remote's nonce is taken from the front of the
    /// stream: returns how many leading bytes of `buf` were nonce (the plaintext is
    /// `buf[returned..]`, decrypted in place).
    pub fn decrypt(&mut self, buf: &mut [u8]) -> usize {
        let mut skip = 0;
        if self.read.is_none() {
            skip = (NONCE_LEN - self.remote_have).min(buf.len());
            self.remote_nonce[self.remote_have..self.remote_have + skip]
                .copy_from_slice(&buf[..skip]);
            self.remote_have += skip;
            if self.remote_have < NONCE_LEN {
                return skip;
            }
            self.read = Some(XSalsa20::new(&self.key, &self.remote_nonce));
        }
        if let Some(read) = self.read.as_mut() {
            read.apply(&mut buf[skip..]);
        }
        skip
    }
}

impl Drop for Protector {
    fn drop(&mut self) {
        // Best effort: do not leave the key in freed memory (the ciphers drop their own state).
        for b in self.key.iter_mut() {
            // SAFETY: a plain volatile write to a byte we own, so it is not optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protector")
            .field("remote_nonce_received", &self.remote_have)
            .finish_non_exhaustive()
    }
}
