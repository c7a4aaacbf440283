//! The one ASN.1 structure the extension needs, in strict DER:
//! `SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }`.

use crate::error::TlsError;

const SEQUENCE: u8 = 0x30;
const OCTET_STRING: u8 = 0x04;
/// Larger than any key protobuf plus signature (an 8192-bit RSA key and signature is ~2 KiB).
const MAX_LEN: usize = 16 * 1024;

fn push_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn push_tlv(tag: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    push_len(body.len(), out);
    out.extend_from_slice(body);
}

/// DER of `SignedKey{public_key, signature}`; both must be under 16 KiB.
pub fn encode_signed_key(public_key: &[u8], signature: &[u8]) -> Result<Vec<u8>, TlsError> {
    if public_key.len() > MAX_LEN || signature.len() > MAX_LEN {
        return Err(TlsError::Local("key or signature too large".into()));
    }
    let mut body = Vec::with_capacity(public_key.len() + signature.len() + 8);
    push_tlv(OCTET_STRING, public_key, &mut body);
    push_tlv(OCTET_STRING, signature, &mut body);
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(SEQUENCE, &body, &mut out);
    Ok(out)
}

fn bad(msg: &str) -> TlsError {
    TlsError::BadExtension(msg.into())
}

/// Reads one TLV with `tag` at the front of `buf`; returns its body and the rest. Lengths must
/// be minimal (DER), definite and at most 16 KiB.
fn read_tlv(buf: &[u8], tag: u8) -> Result<(&[u8], &[u8]), TlsError> {
    let (&t, rest) = buf.split_first().ok_or_else(|| bad("truncated"))?;
    if t != tag {
        return Err(bad(&format!("expected tag {tag:#04x}, found {t:#04x}")));
    }
    let (&first, rest) = rest.split_first().ok_or_else(|| bad("truncated length"))?;
    let (len, rest) = match first {
        n if n < 0x80 => (n as usize, rest),
        0x81 => match rest.split_first() {
            Some((&n, r)) if n >= 0x80 => (n as usize, r),
            _ => return Err(bad("non-minimal or truncated length")),
        },
        0x82 => match rest {
            [hi, lo, r @ ..] if *hi != 0 => (((*hi as usize) << 8) | *lo as usize, r),
            _ => return Err(bad("non-minimal or truncated length")),
        },
        _ => return Err(bad("length form not allowed")),
    };
    if len > MAX_LEN {
        return Err(bad("element too large"));
    }
    if rest.len() < len {
        return Err(bad("truncated element"));
    }
    Ok(rest.split_at(len))
}

/// Parses `SignedKey` strictly; returns `(public_key, signature)`.
pub fn decode_signed_key(buf: &[u8]) -> Result<(&[u8], &[u8]), TlsError> {
    let (body, rest) = read_tlv(buf, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after SignedKey"));
    }
    let (public_key, body) = read_tlv(body, OCTET_STRING)?;
    let (signature, body) = read_tlv(body, OCTET_STRING)?;
    if !body.is_empty() {
        return Err(bad("extra fields in SignedKey"));
    }
    Ok((public_key, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_short_and_long() {
        for (k, s) in [
            (vec![1u8; 36], vec![2u8; 64]),
            (vec![3u8; 300], vec![4u8; 512]),
        ] {
            let der = encode_signed_key(&k, &s).unwrap();
            assert_eq!(decode_signed_key(&der).unwrap(), (&k[..], &s[..]));
        }
    }

    #[test]
    fn rejects_malformed() {
        let good = encode_signed_key(b"key", b"sig").unwrap();
        for cut in 0..good.len() {
            assert!(decode_signed_key(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_signed_key(&trailing).is_err());
        // BIT STRING instead of OCTET STRING, non-minimal length, indefinite length.
        assert!(decode_signed_key(&[0x30, 0x06, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00]).is_err());
        assert!(decode_signed_key(&[0x30, 0x81, 0x04, 0x04, 0x00, 0x04, 0x00]).is_err());
        assert!(decode_signed_key(&[0x30, 0x80, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00]).is_err());
        // A third field.
        assert!(decode_signed_key(&[0x30, 0x06, 0x04, 0x00, 0x04, 0x00, 0x04, 0x00]).is_err());
    }
}
