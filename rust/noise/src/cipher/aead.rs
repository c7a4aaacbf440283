//! ChaCha20-Poly1305 (RFC 8439) from interchangeable libraries, one per cargo feature.
//!
//! [`Ring`] is always built. With feature `aws-lc`, [`AwsLc`] (aws-lc-rs) is built too, and with
//! feature `openssl`, [`OpenSsl`] (the `openssl` crate, vendored: OpenSSL is compiled from the
//! source inside the crate and linked statically, so the wheel needs no system library).
//! [`DefaultAead`] is the one the Noise cipher uses: `openssl` if enabled, else `aws-lc` if
//! enabled, else `ring`. Every backend is public so one benchmark binary can race them all
//! (`cargo run --release -p rapidp2p-noise --example aead_backends --features aws-lc,openssl`).

/// The AEAD failed: a wrong tag on open (or, never in practice, a library error on seal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

/// One ChaCha20-Poly1305 key, usable to seal and open (Noise's handshake cipher does both).
pub trait ChaChaPoly: Sized {
    /// The library's name, for benchmark output.
    const NAME: &'static str;
    /// Wraps a 32-byte key.
    fn new(key: &[u8; 32]) -> Self;
    /// Encrypts `buf` in place under `nonce` and `ad`; returns the 16-byte tag.
    fn seal(&mut self, nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], AeadError>;
    /// Checks `tag` and decrypts `buf` in place. On error `buf`'s contents are unspecified.
    fn open(
        &mut self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AeadError>;
}

/// The Noise ChaChaPoly nonce for counter `n`: 4 zero bytes, then `n` little-endian.
pub fn noise_nonce(n: u64) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// The backend the Noise cipher uses in this build.
#[cfg(feature = "openssl")]
pub type DefaultAead = OpenSsl;
/// The backend the Noise cipher uses in this build.
#[cfg(all(feature = "aws-lc", not(feature = "openssl")))]
pub type DefaultAead = AwsLc;
/// The backend the Noise cipher uses in this build.
#[cfg(not(any(feature = "aws-lc", feature = "openssl")))]
pub type DefaultAead = Ring;

/// ChaCha20-Poly1305 from `ring` (its own assembly, AVX2 at most).
pub struct Ring(ring::aead::LessSafeKey);

impl ChaChaPoly for Ring {
    const NAME: &'static str = "ring";

    fn new(key: &[u8; 32]) -> Self {
        use ring::aead::{LessSafeKey, UnboundKey, CHACHA20_POLY1305};
        // CHACHA20_POLY1305 takes exactly 32 bytes, so this cannot fail.
        let unbound = match UnboundKey::new(&CHACHA20_POLY1305, key) {
            Ok(k) => k,
            Err(_) => unreachable!("ChaCha20-Poly1305 key is 32 bytes"),
        };
        Self(LessSafeKey::new(unbound))
    }

    fn seal(&mut self, nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], AeadError> {
        use ring::aead::{Aad, Nonce};
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf)
            .map_err(|_| AeadError)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(
        &mut self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AeadError> {
        use ring::aead::{Aad, Nonce, Tag};
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}

/// ChaCha20-Poly1305 from aws-lc-rs (AWS-LC, a BoringSSL fork built from source by the crate).
#[cfg(feature = "aws-lc")]
pub struct AwsLc(aws_lc_rs::aead::LessSafeKey);

#[cfg(feature = "aws-lc")]
impl ChaChaPoly for AwsLc {
    const NAME: &'static str = "aws-lc-rs";

    fn new(key: &[u8; 32]) -> Self {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, CHACHA20_POLY1305};
        let unbound = match UnboundKey::new(&CHACHA20_POLY1305, key) {
            Ok(k) => k,
            Err(_) => unreachable!("ChaCha20-Poly1305 key is 32 bytes"),
        };
        Self(LessSafeKey::new(unbound))
    }

    fn seal(&mut self, nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], AeadError> {
        use aws_lc_rs::aead::{Aad, Nonce};
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf)
            .map_err(|_| AeadError)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(
        &mut self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AeadError> {
        use aws_lc_rs::aead::{Aad, Nonce};
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                &tag[..],
                buf,
            )
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}

/// ChaCha20-Poly1305 from OpenSSL 3 (vendored, static), through one reused `EVP_CIPHER_CTX`.
///
/// The context keeps the key schedule; each message only re-initialises the nonce, unless the
/// direction changes (the handshake cipher alternates), which re-keys.
#[cfg(feature = "openssl")]
pub struct OpenSsl {
    ctx: openssl::cipher_ctx::CipherCtx,
    key: zeroize::Zeroizing<[u8; 32]>,
    /// What the context was last initialised for: None, Some(true) = seal, Some(false) = open.
    sealing: Option<bool>,
}

#[cfg(feature = "openssl")]
impl OpenSsl {
    fn init(&mut self, seal: bool, nonce: &[u8; 12]) -> Result<(), openssl::error::ErrorStack> {
        use openssl::cipher::Cipher;
        let (cipher, key) = if self.sealing == Some(seal) {
            (None, None)
        } else {
            (Some(Cipher::chacha20_poly1305()), Some(&self.key[..]))
        };
        if seal {
            self.ctx.encrypt_init(cipher, key, Some(nonce))?;
        } else {
            self.ctx.decrypt_init(cipher, key, Some(nonce))?;
        }
        self.sealing = Some(seal);
        Ok(())
    }

    fn run(
        &mut self,
        seal: bool,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: Option<&[u8; 16]>,
    ) -> Result<[u8; 16], openssl::error::ErrorStack> {
        if let Err(e) = self.init(seal, &nonce) {
            self.sealing = None;
            return Err(e);
        }
        if !ad.is_empty() {
            self.ctx.cipher_update(ad, None)?;
        }
        // A stream cipher: output length == input length, so in place is exact.
        let len = buf.len();
        if len > 0 {
            self.ctx.cipher_update_inplace(buf, len)?;
        }
        let mut out = [0u8; 16];
        if let Some(tag) = tag {
            self.ctx.set_tag(tag)?;
        }
        // Block size 1: final writes nothing, but the crate wants room for one block.
        let mut scratch = [0u8; 16];
        self.ctx.cipher_final(&mut scratch)?;
        if tag.is_none() {
            self.ctx.tag(&mut out)?;
        }
        Ok(out)
    }
}

#[cfg(feature = "openssl")]
impl ChaChaPoly for OpenSsl {
    const NAME: &'static str = "openssl";

    fn new(key: &[u8; 32]) -> Self {
        let ctx = match openssl::cipher_ctx::CipherCtx::new() {
            Ok(c) => c,
            Err(e) => panic!("EVP_CIPHER_CTX_new failed (out of memory): {e}"),
        };
        Self {
            ctx,
            key: zeroize::Zeroizing::new(*key),
            sealing: None,
        }
    }

    fn seal(&mut self, nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], AeadError> {
        self.run(true, nonce, ad, buf, None).map_err(|_| AeadError)
    }

    fn open(
        &mut self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), AeadError> {
        self.run(false, nonce, ad, buf, Some(tag))
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 section 2.8.2's AEAD test vector, run through every backend in this build.
    fn rfc8439<A: ChaChaPoly>() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce = [
            0x07, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        ];
        let ad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one \
tip for the future, sunscreen would be it.";
        let expect_tag = [
            0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a, 0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60,
            0x06, 0x91,
        ];
        let mut a = A::new(&key);
        let mut buf = plain.to_vec();
        let tag = a.seal(nonce, &ad, &mut buf).expect("seal");
        assert_eq!(tag, expect_tag, "{}", A::NAME);
        assert_eq!(&buf[..4], &[0xd3, 0x1a, 0x8d, 0x34], "{}", A::NAME);
        // The same key object opens (the handshake cipher alternates directions), then
        // seals again, then rejects a flipped tag bit without advancing anything.
        a.open(nonce, &ad, &mut buf, &tag).expect("open");
        assert_eq!(&buf[..], &plain[..], "{}", A::NAME);
        let again = a.seal(nonce, &ad, &mut buf).expect("seal again");
        assert_eq!(again, expect_tag, "{}", A::NAME);
        let mut bad = tag;
        bad[0] ^= 1;
        assert_eq!(
            a.open(nonce, &ad, &mut buf, &bad),
            Err(AeadError),
            "{}",
            A::NAME
        );
        // Empty plaintext and empty ad (the transport's shape for a zero-length frame).
        let mut empty: [u8; 0] = [];
        let t = a.seal(nonce, &[], &mut empty).expect("seal empty");
        a.open(nonce, &[], &mut empty, &t).expect("open empty");
    }

    #[test]
    fn ring_rfc8439() {
        rfc8439::<Ring>();
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn aws_lc_rfc8439() {
        rfc8439::<AwsLc>();
    }

    #[cfg(feature = "openssl")]
    #[test]
    fn openssl_rfc8439() {
        rfc8439::<OpenSsl>();
    }
}
