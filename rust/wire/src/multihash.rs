//! Multihash: varint code, varint digest length, digest. Strict: the digest length must match
//! the hash function, and a decoded multihash must take the whole input.

use sha2::{Digest, Sha256};

use crate::error::{Result, WireError};
use crate::varint;

pub const IDENTITY: u64 = 0x00;
pub const SHA2_256: u64 = 0x12;
pub const SHA2_512: u64 = 0x13;

/// Longest digest accepted for any code (bounds identity hashes of untrusted input).
pub const MAX_DIGEST_LEN: u64 = 1024;

/// A decoded multihash borrowing its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Multihash<'a> {
    pub code: u64,
    pub digest: &'a [u8],
}

fn err(msg: String) -> WireError {
    WireError::Multihash(format!("multihash: {msg}"))
}

/// The digest length a hash function produces, or None for identity (any length).
fn expected_len(code: u64) -> Result<Option<usize>> {
    match code {
        IDENTITY => Ok(None),
        SHA2_256 => Ok(Some(32)),
        SHA2_512 => Ok(Some(64)),
        _ => Err(err(format!("unsupported hash code 0x{code:x}"))),
    }
}

/// Human name of a supported code.
pub fn code_name(code: u64) -> &'static str {
    match code {
        IDENTITY => "identity",
        SHA2_256 => "sha2-256",
        SHA2_512 => "sha2-512",
        _ => "unknown",
    }
}

/// Decodes a multihash that must fill `buf` exactly.
pub fn decode(buf: &[u8]) -> Result<Multihash<'_>> {
    let (code, n) = varint::decode(buf).map_err(|e| err(format!("bad code varint: {e}")))?;
    let expected = expected_len(code)?;
    let rest = &buf[n..];
    let (len, n) = varint::decode(rest).map_err(|e| err(format!("bad length varint: {e}")))?;
    let digest = &rest[n..];
    if len > MAX_DIGEST_LEN {
        return Err(err(format!("digest length {len} over the cap")));
    }
    if len != digest.len() as u64 {
        return Err(err(format!(
            "digest length {len} but {} bytes follow",
            digest.len()
        )));
    }
    if let Some(want) = expected {
        if digest.len() != want {
            return Err(err(format!(
                "{} digest must be {want} bytes, got {}",
                code_name(code),
                digest.len()
            )));
        }
    }
    Ok(Multihash { code, digest })
}

/// Appends a multihash of `digest` under `code` (checked like `decode`).
pub fn encode(code: u64, digest: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if let Some(want) = expected_len(code)? {
        if digest.len() != want {
            return Err(err(format!(
                "{} digest must be {want} bytes, got {}",
                code_name(code),
                digest.len()
            )));
        }
    }
    if digest.len() as u64 > MAX_DIGEST_LEN {
        return Err(err(format!("digest length {} over the cap", digest.len())));
    }
    varint::encode(code, out);
    varint::encode(digest.len() as u64, out);
    out.extend_from_slice(digest);
    Ok(())
}

/// Appends the sha2-256 multihash of `data`.
pub fn sha256(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(34);
    out.push(SHA2_256 as u8);
    out.push(32);
    out.extend_from_slice(&Sha256::digest(data));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sha256_vector() {
        // sha2-256 of "foo" from the multihash test vectors.
        let mut out = Vec::new();
        sha256(b"foo", &mut out);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "12202c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
        assert_eq!(decode(&out).unwrap().digest.len(), 32);
    }

    #[test]
    fn rejects() {
        assert!(decode(&[0x12, 0x1f]).is_err()); // sha256 of 31 bytes
        assert!(decode(&[0x12, 0x20, 0]).is_err()); // truncated
        assert!(decode(&[0x00, 0x01, 1, 2]).is_err()); // trailing
        assert!(decode(&[0x14, 0x00]).is_err()); // unsupported code
        assert!(decode(&[]).is_err());
        assert_eq!(
            decode(&[0x00, 0x00]),
            Ok(Multihash {
                code: 0,
                digest: &[]
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&data);
        }

        #[test]
        fn identity_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            encode(IDENTITY, &data, &mut out).unwrap();
            prop_assert_eq!(decode(&out).unwrap().digest, &data[..]);
        }
    }
}
