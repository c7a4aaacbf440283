//! Multibase: a one-character prefix naming the base, then the encoded bytes. Decoding is
//! strict (canonical trailing bits, no padding, exact case) so one text maps to one value.

use std::sync::OnceLock;

use data_encoding::{Encoding, Specification, BASE32_NOPAD, BASE64URL_NOPAD, BASE64_NOPAD};
use data_encoding::{HEXLOWER, HEXUPPER};

use crate::base58;
use crate::error::{Result, WireError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    Base58Btc,
    Base32Lower,
    Base32Upper,
    Base64Url,
    Base64,
    Base16Lower,
    Base16Upper,
}

impl Base {
    pub const ALL: [Base; 7] = [
        Base::Base58Btc,
        Base::Base32Lower,
        Base::Base32Upper,
        Base::Base64Url,
        Base::Base64,
        Base::Base16Lower,
        Base::Base16Upper,
    ];

    pub fn prefix(self) -> char {
        match self {
            Base::Base58Btc => 'z',
            Base::Base32Lower => 'b',
            Base::Base32Upper => 'B',
            Base::Base64Url => 'u',
            Base::Base64 => 'm',
            Base::Base16Lower => 'f',
            Base::Base16Upper => 'F',
        }
    }

    /// The name the multibase table gives the base.
    pub fn name(self) -> &'static str {
        match self {
            Base::Base58Btc => "base58btc",
            Base::Base32Lower => "base32",
            Base::Base32Upper => "base32upper",
            Base::Base64Url => "base64url",
            Base::Base64 => "base64",
            Base::Base16Lower => "base16",
            Base::Base16Upper => "base16upper",
        }
    }

    pub fn from_prefix(c: char) -> Option<Base> {
        Base::ALL.into_iter().find(|b| b.prefix() == c)
    }

    /// Looks a base up by its table name or by its one-character prefix.
    pub fn from_name(name: &str) -> Result<Base> {
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(b) = Base::from_prefix(c) {
                return Ok(b);
            }
        }
        Base::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| WireError::Multibase(format!("multibase: unsupported base {name:?}")))
    }

    /// Encodes `data` without the prefix.
    pub fn encode_body(self, data: &[u8], out: &mut String) {
        match self {
            Base::Base58Btc => base58::encode_into(data, out),
            _ => self.encoding().encode_append(data, out),
        }
    }

    /// Decodes text without the prefix.
    pub fn decode_body(self, text: &str) -> Result<Vec<u8>> {
        match self {
            Base::Base58Btc => base58::decode(text),
            _ => self
                .encoding()
                .decode(text.as_bytes())
                .map_err(|e| WireError::Multibase(format!("multibase {}: {e}", self.name()))),
        }
    }

    fn encoding(self) -> &'static Encoding {
        // The crate's encodings are `const`s; statics give them a 'static address.
        static B32U: Encoding = BASE32_NOPAD;
        static B64U: Encoding = BASE64URL_NOPAD;
        static B64: Encoding = BASE64_NOPAD;
        static B16L: Encoding = HEXLOWER;
        static B16U: Encoding = HEXUPPER;
        match self {
            Base::Base32Lower => base32_lower(),
            Base::Base32Upper => &B32U,
            Base::Base64Url => &B64U,
            Base::Base64 => &B64,
            Base::Base16Lower => &B16L,
            Base::Base16Upper => &B16U,
            // Not reached: base58 has its own arm in each caller.
            Base::Base58Btc => &B16L,
        }
    }
}

/// RFC 4648 base32, lower case, no padding (multibase 'b', the CID default).
fn base32_lower() -> &'static Encoding {
    static ENC: OnceLock<Encoding> = OnceLock::new();
    ENC.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
        // A constant, valid specification: this cannot fail.
        spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
    })
}

/// Encodes `data` as multibase text (prefix + body).
pub fn encode(base: Base, data: &[u8]) -> String {
    let mut out = String::with_capacity(1 + data.len() * 2);
    out.push(base.prefix());
    base.encode_body(data, &mut out);
    out
}

/// Decodes multibase text; returns the base and the bytes.
pub fn decode(text: &str) -> Result<(Base, Vec<u8>)> {
    let mut chars = text.chars();
    let c = chars
        .next()
        .ok_or_else(|| WireError::Multibase("multibase: empty text".into()))?;
    let base = Base::from_prefix(c)
        .ok_or_else(|| WireError::Multibase(format!("multibase: unknown prefix {c:?}")))?;
    Ok((base, base.decode_body(chars.as_str())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_vectors() {
        // "yes mani !" from the multibase test vectors.
        let data = b"yes mani !";
        assert_eq!(encode(Base::Base58Btc, data), "z7paNL19xttacUY");
        assert_eq!(encode(Base::Base32Lower, data), "bpfsxgidnmfxgsibb");
        assert_eq!(encode(Base::Base32Upper, data), "BPFSXGIDNMFXGSIBB");
        assert_eq!(encode(Base::Base64Url, data), "ueWVzIG1hbmkgIQ");
        assert_eq!(encode(Base::Base64, data), "meWVzIG1hbmkgIQ");
        assert_eq!(encode(Base::Base16Lower, data), "f796573206d616e692021");
        assert_eq!(encode(Base::Base16Upper, data), "F796573206D616E692021");
    }

    #[test]
    fn rejects() {
        assert!(decode("").is_err());
        assert!(decode("x123").is_err());
        assert!(decode("z0OIl").is_err()); // not in the base58 alphabet
        assert!(decode("bPFSX").is_err()); // wrong case
        assert!(decode("bpfsxgidnmfxgsibb=").is_err()); // padding
        assert!(decode("f7").is_err()); // odd length
        assert!(decode("baf").is_err()); // non-canonical trailing bits
        assert!(decode("bae").is_ok());
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..100), i in 0usize..7) {
            let base = Base::ALL[i];
            let text = encode(base, &data);
            prop_assert_eq!(decode(&text).unwrap(), (base, data));
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = decode(&text);
        }
    }
}
