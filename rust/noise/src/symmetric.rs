//! Noise `SymmetricState` (spec rev 34, section 5.2) for SHA-256 and ChaChaPoly:
//! the chaining key `ck`, the handshake hash `h`, and the optional handshake cipher.

use ring::{digest, hmac};
use zeroize::Zeroize;

use crate::cipher::{CipherState, TAG_LEN};
use crate::NoiseError;

/// SHA-256 output length, the Noise `HASHLEN`.
pub const HASHLEN: usize = 32;

/// The protocol name hashed into the initial state.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_25519_ChaChaPoly_SHA256";

/// `HMAC-HASH(key, data)` over the concatenation of `data` parts.
fn hmac_sha256(key: &[u8], data: &[&[u8]]) -> [u8; HASHLEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in data {
        ctx.update(part);
    }
    let mut out = [0u8; HASHLEN];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Noise `HKDF(chaining_key, input_key_material, 2)`: returns two 32-byte outputs.
pub(crate) fn hkdf2(ck: &[u8; HASHLEN], ikm: &[u8]) -> ([u8; HASHLEN], [u8; HASHLEN]) {
    let mut temp = hmac_sha256(ck, &[ikm]);
    let out1 = hmac_sha256(&temp, &[&[0x01]]);
    let out2 = hmac_sha256(&temp, &[&out1, &[0x02]]);
    temp.zeroize();
    (out1, out2)
}

/// The hashing and key-chaining half of a handshake.
pub(crate) struct SymmetricState {
    ck: [u8; HASHLEN],
    h: [u8; HASHLEN],
    cipher: Option<CipherState>,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`: the name is exactly 32 bytes, so `h` is the name
    /// itself (no padding, no hashing), and `ck = h`.
    pub(crate) fn initialize() -> Self {
        let mut h = [0u8; HASHLEN];
        if PROTOCOL_NAME.len() <= HASHLEN {
            h[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        } else {
            h.copy_from_slice(digest::digest(&digest::SHA256, PROTOCOL_NAME).as_ref());
        }
        Self {
            ck: h,
            h,
            cipher: None,
        }
    }

    /// The handshake hash so far (the channel binding once the handshake ends).
    pub(crate) fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.h
    }

    /// `MixHash(data)`: `h = SHA256(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.h);
        ctx.update(data);
        self.h.copy_from_slice(ctx.finish().as_ref());
    }

    /// `MixKey(ikm)`: advance `ck` and install a fresh handshake cipher key with nonce 0.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, mut k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = Some(CipherState::new(&k));
        k.zeroize();
    }

    /// `EncryptAndHash(plaintext)`, appending the result to `out`.
    pub(crate) fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        if let Some(cipher) = self.cipher.as_mut() {
            let tag = cipher.seal_in_place(&self.h, &mut out[start..])?;
            out.extend_from_slice(tag.as_ref());
        }
        self.mix_hash(&out[start..]);
        Ok(())
    }

    /// `DecryptAndHash(ciphertext)`, returning the plaintext.
    pub(crate) fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let plaintext = match self.cipher.as_mut() {
            None => ciphertext.to_vec(),
            Some(cipher) => {
                let body_len =
                    ciphertext
                        .len()
                        .checked_sub(TAG_LEN)
                        .ok_or(NoiseError::Truncated {
                            len: ciphertext.len(),
                            need: TAG_LEN,
                        })?;
                let (body, tag) = ciphertext.split_at(body_len);
                let mut buf = body.to_vec();
                cipher.open_in_place(&self.h, &mut buf, tag)?;
                buf
            }
        };
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// `Split()`: the two transport keys, initiator-to-responder first.
    pub(crate) fn split(&self) -> (CipherState, CipherState) {
        let (mut k1, mut k2) = hkdf2(&self.ck, &[]);
        let pair = (CipherState::new(&k1), CipherState::new(&k2));
        k1.zeroize();
        k2.zeroize();
        pair
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.ck.zeroize();
    }
}
