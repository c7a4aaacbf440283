//! The libp2p `PublicKey` / `PrivateKey` protobuf (field 1 `Type` enum, field 2 `Data` bytes),
//! encoded and decoded in the deterministic form the peer-ID spec requires: peer IDs hash these
//! bytes, so two encodings of one key must never both be accepted.

use crate::error::{Result, WireError};
use crate::varint;

/// Tag of field 1 (`Type`), wire type varint.
const TAG_TYPE: u8 = 0x08;
/// Tag of field 2 (`Data`), wire type length-delimited.
const TAG_DATA: u8 = 0x12;
/// Highest key type the spec defines (RSA=0, Ed25519=1, Secp256k1=2, ECDSA=3).
pub const MAX_KEY_TYPE: u64 = 3;

fn err(msg: &str) -> WireError {
    WireError::Protobuf(format!("key protobuf: {msg}"))
}

/// Encodes a key protobuf; fails only for a key type outside 0..=3.
pub fn encode(key_type: u64, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if key_type > MAX_KEY_TYPE {
        return Err(err(&format!("unknown key type {key_type}")));
    }
    out.reserve(4 + varint::MAX_VARINT_LEN + data.len());
    out.push(TAG_TYPE);
    varint::encode(key_type, out);
    out.push(TAG_DATA);
    varint::encode(data.len() as u64, out);
    out.extend_from_slice(data);
    Ok(())
}

/// Decodes a key protobuf strictly; returns the key type and a borrow of the `Data` field.
pub fn decode(buf: &[u8]) -> Result<(u64, &[u8])> {
    let rest = match buf.split_first() {
        Some((&TAG_TYPE, rest)) => rest,
        Some(_) => return Err(err("expected field 1 (Type) first")),
        None => return Err(err("empty message")),
    };
    let (key_type, n) = varint::decode(rest).map_err(|e| err(&format!("bad Type varint: {e}")))?;
    if key_type > MAX_KEY_TYPE {
        return Err(err(&format!("unknown key type {key_type}")));
    }
    let rest = match rest[n..].split_first() {
        Some((&TAG_DATA, rest)) => rest,
        Some(_) => return Err(err("expected field 2 (Data) after Type")),
        None => return Err(err("missing field 2 (Data)")),
    };
    let (len, n) = varint::decode(rest).map_err(|e| err(&format!("bad Data length: {e}")))?;
    let rest = &rest[n..];
    if len > rest.len() as u64 {
        return Err(err(&format!(
            "Data length {len} exceeds the {} bytes left",
            rest.len()
        )));
    }
    if len < rest.len() as u64 {
        return Err(err("trailing bytes after Data"));
    }
    Ok((key_type, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: u64, d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(t, d, &mut out).unwrap();
        out
    }

    #[test]
    fn ed25519_vector() {
        // Header bytes of an Ed25519 key: Type=1, Data of 32 bytes.
        let key = [0x1e_u8; 32];
        let pb = enc(1, &key);
        assert_eq!(&pb[..4], &[0x08, 0x01, 0x12, 0x20]);
        assert_eq!(decode(&pb), Ok((1, &key[..])));
    }

    #[test]
    fn rejects_non_deterministic() {
        let good = enc(1, b"abc");
        assert!(decode(&good[..good.len() - 1]).is_err()); // truncated
        let mut extra = good.clone();
        extra.push(0);
        assert!(decode(&extra).is_err()); // trailing
        assert!(decode(&[0x12, 0x00, 0x08, 0x01]).is_err()); // order
        assert!(decode(&[0x08, 0x81, 0x00, 0x12, 0x00]).is_err()); // non-minimal type
        assert!(decode(&[0x08, 0x01, 0x12, 0x80, 0x00]).is_err()); // non-minimal length
        assert!(decode(&[0x08, 0x04, 0x12, 0x00]).is_err()); // key type 4
        assert!(decode(&[0x08, 0x01]).is_err()); // missing data
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x08, 0x01, 0x1a, 0x00]).is_err()); // other field
        assert!(encode(4, b"", &mut Vec::new()).is_err());
        assert_eq!(decode(&[0x08, 0x00, 0x12, 0x00]), Ok((0, &b""[..])));
    }
}
