//! QPACK (RFC 9204) without a dynamic table: we advertise
//! `SETTINGS_QPACK_MAX_TABLE_CAPACITY` 0 (by omitting it), so a field section must have a
//! Required Insert Count of 0 and may reference only the static table; anything else is a
//! decompression failure. Strings may be Huffman-coded (RFC 7541's code, decoded by
//! `httlib-huffman`). Every length is checked against the bytes left and the caller's cap
//! before anything is allocated.

use thiserror::Error;

/// Why a field section was refused (QPACK_DECOMPRESSION_FAILED, or our size cap).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QpackError {
    #[error("truncated QPACK field section")]
    Truncated,
    #[error("QPACK integer too large")]
    IntegerOverflow,
    #[error("QPACK dynamic table reference (our table capacity is 0)")]
    DynamicReference,
    #[error("QPACK static table index {0} out of range")]
    BadStaticIndex(u64),
    #[error("bad Huffman string in a QPACK field")]
    BadHuffman,
    #[error("header list over {0} bytes")]
    TooLarge(usize),
}

/// RFC 9204 Appendix A: the static table (index, name, value).
pub static STATIC_TABLE: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains; preload",
    ),
    ("vary", "accept-encoding"),
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    (
        "content-security-policy",
        "script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

/// One decoded field: name and value as bytes (HTTP field values need not be UTF-8).
pub type Field = (Vec<u8>, Vec<u8>);

/// RFC 7541 5.1 prefix integer: `prefix` low bits of `buf[*at]`, then 7-bit continuation
/// bytes; at most 62 bits.
fn integer(buf: &[u8], at: &mut usize, prefix: u8) -> Result<u64, QpackError> {
    let mask: u8 = if prefix >= 8 {
        0xff
    } else {
        (1u8 << prefix) - 1
    };
    let first = *buf.get(*at).ok_or(QpackError::Truncated)?;
    *at += 1;
    let mut v = u64::from(first & mask);
    if v < u64::from(mask) {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*at).ok_or(QpackError::Truncated)?;
        *at += 1;
        if shift > 56 {
            return Err(QpackError::IntegerOverflow);
        }
        v = v
            .checked_add(u64::from(b & 0x7f) << shift)
            .ok_or(QpackError::IntegerOverflow)?;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// Appends a prefix integer; `flags` are the bits above the prefix in the first byte.
pub fn encode_integer(v: u64, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let mask: u8 = if prefix >= 8 {
        0xff
    } else {
        (1u8 << prefix) - 1
    };
    if v < u64::from(mask) {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask);
    let mut rest = v - u64::from(mask);
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A string literal: the H bit sits just above the `prefix`-bit length.
fn string(buf: &[u8], at: &mut usize, prefix: u8, budget: usize) -> Result<Vec<u8>, QpackError> {
    let first = *buf.get(*at).ok_or(QpackError::Truncated)?;
    let huffman = first & (1 << prefix) != 0;
    let len = integer(buf, at, prefix)?;
    let len = usize::try_from(len).map_err(|_| QpackError::IntegerOverflow)?;
    if len > buf.len() - *at {
        return Err(QpackError::Truncated);
    }
    let raw = &buf[*at..*at + len];
    *at += len;
    if !huffman {
        if len > budget {
            return Err(QpackError::TooLarge(budget));
        }
        return Ok(raw.to_vec());
    }
    // A Huffman code is at least 5 bits a symbol: the decoded form is at most 8/5 longer.
    if len.saturating_mul(8) / 5 > budget {
        return Err(QpackError::TooLarge(budget));
    }
    let mut out = Vec::with_capacity(len * 8 / 5 + 1);
    httlib_huffman::decode(raw, &mut out, httlib_huffman::DecoderSpeed::FourBits)
        .map_err(|_| QpackError::BadHuffman)?;
    Ok(out)
}

fn static_entry(index: u64) -> Result<(&'static str, &'static str), QpackError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i).copied())
        .ok_or(QpackError::BadStaticIndex(index))
}

/// Decodes a field section (the payload of a HEADERS frame). `max_size` bounds the header
/// list as RFC 9114 4.2.2 counts it (name + value + 32 per field).
pub fn decode_field_section(buf: &[u8], max_size: usize) -> Result<Vec<Field>, QpackError> {
    decode_fields(buf, max_size).map_err(|e| match e {
        QpackError::TooLarge(_) => QpackError::TooLarge(max_size),
        other => other,
    })
}

fn decode_fields(buf: &[u8], max_size: usize) -> Result<Vec<Field>, QpackError> {
    let mut at = 0;
    let required_insert_count = integer(buf, &mut at, 8)?;
    let _delta_base = integer(buf, &mut at, 7)?;
    if required_insert_count != 0 {
        return Err(QpackError::DynamicReference);
    }
    let mut fields = Vec::new();
    let mut size = 0usize;
    while at < buf.len() {
        let b = buf[at];
        let left = max_size.saturating_sub(size);
        let (name, value) = if b & 0x80 != 0 {
            // Indexed field line: 1 T index(6).
            if b & 0x40 == 0 {
                return Err(QpackError::DynamicReference);
            }
            let (n, v) = static_entry(integer(buf, &mut at, 6)?)?;
            (n.as_bytes().to_vec(), v.as_bytes().to_vec())
        } else if b & 0x40 != 0 {
            // Literal with name reference: 0 1 N T index(4), value string (7-bit prefix).
            if b & 0x10 == 0 {
                return Err(QpackError::DynamicReference);
            }
            let (n, _) = static_entry(integer(buf, &mut at, 4)?)?;
            let value = string(buf, &mut at, 7, left)?;
            (n.as_bytes().to_vec(), value)
        } else if b & 0x20 != 0 {
            // Literal with literal name: 0 0 1 N H namelen(3), value string.
            let name = string(buf, &mut at, 3, left)?;
            let value = string(buf, &mut at, 7, left.saturating_sub(name.len()))?;
            (name, value)
        } else {
            // Post-base forms (0001xxxx, 0000xxxx) address the dynamic table only.
            return Err(QpackError::DynamicReference);
        };
        size = size
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(32);
        if size > max_size {
            return Err(QpackError::TooLarge(max_size));
        }
        fields.push((name, value));
    }
    Ok(fields)
}

/// Encodes a field section with static references where an entry matches exactly (or by
/// name) and plain (not Huffman) literals otherwise; Required Insert Count 0.
pub fn encode_field_section(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0, 0];
    for (name, value) in fields {
        if let Some(i) = STATIC_TABLE
            .iter()
            .position(|(n, v)| n == name && v == value)
        {
            encode_integer(i as u64, 6, 0xc0, &mut out);
        } else if let Some(i) = STATIC_TABLE.iter().position(|(n, _)| n == name) {
            encode_integer(i as u64, 4, 0x50, &mut out);
            encode_integer(value.len() as u64, 7, 0, &mut out);
            out.extend_from_slice(value.as_bytes());
        } else {
            encode_integer(name.len() as u64, 3, 0x20, &mut out);
            out.extend_from_slice(name.as_bytes());
            encode_integer(value.len() as u64, 7, 0, &mut out);
            out.extend_from_slice(value.as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<Field> {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn static_table_landmarks() {
        // Entries the WebTransport exchange uses, and the table's ends (RFC 9204 App. A).
        assert_eq!(STATIC_TABLE[0], (":authority", ""));
        assert_eq!(STATIC_TABLE[1], (":path", "/"));
        assert_eq!(STATIC_TABLE[15], (":method", "CONNECT"));
        assert_eq!(STATIC_TABLE[23], (":scheme", "https"));
        assert_eq!(STATIC_TABLE[25], (":status", "200"));
        assert_eq!(STATIC_TABLE[27], (":status", "404"));
        assert_eq!(STATIC_TABLE[67], (":status", "400"));
        assert_eq!(STATIC_TABLE[90], ("origin", ""));
        assert_eq!(STATIC_TABLE[98], ("x-frame-options", "sameorigin"));
    }

    #[test]
    fn rfc9204_b1_literal_with_name_reference() {
        // RFC 9204 B.1: ":path" "/index.html" as a literal with static name reference.
        let enc = [
            0x00, 0x00, 0x51, 0x0b, 0x2f, 0x69, 0x6e, 0x64, 0x65, 0x78, 0x2e, 0x68, 0x74, 0x6d,
            0x6c,
        ];
        assert_eq!(
            decode_field_section(&enc, 4096).unwrap(),
            fields(&[(":path", "/index.html")])
        );
    }

    #[test]
    fn huffman_literals() {
        // RFC 7541 C.4.1: "www.example.com" Huffman-coded (0x8c: H=1, length 12).
        let mut enc = vec![0x00, 0x00, 0x50];
        enc.extend_from_slice(&[
            0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ]);
        assert_eq!(
            decode_field_section(&enc, 4096).unwrap(),
            fields(&[(":authority", "www.example.com")])
        );
        // The same string, Huffman-coded, as a literal name (0x28: 001 N=0 H=1 len=...).
        let mut enc = vec![0x00, 0x00, 0x2f, 0x05];
        enc.extend_from_slice(&[
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ]);
        enc.extend_from_slice(&[0x01, b'x']);
        assert_eq!(
            decode_field_section(&enc, 4096).unwrap(),
            fields(&[("www.example.com", "x")])
        );
    }

    #[test]
    fn roundtrip_connect_request() {
        let req = [
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "127.0.0.1:4001"),
            (":path", "/.well-known/libp2p-webtransport?type=noise"),
            ("sec-webtransport-http3-draft02", "1"),
            ("origin", "http://localhost:8000"),
        ];
        let enc = encode_field_section(&req);
        assert_eq!(decode_field_section(&enc, 4096).unwrap(), fields(&req));
    }

    #[test]
    fn refuses_dynamic_table_and_bad_input() {
        assert_eq!(
            decode_field_section(&[0x01, 0x00], 4096),
            Err(QpackError::DynamicReference)
        );
        assert_eq!(
            decode_field_section(&[0x00, 0x00, 0x80], 4096),
            Err(QpackError::DynamicReference)
        );
        assert_eq!(
            decode_field_section(&[0x00, 0x00, 0x10], 4096),
            Err(QpackError::DynamicReference)
        );
        assert_eq!(
            decode_field_section(&[0x00, 0x00, 0xff, 0x40], 4096),
            Err(QpackError::BadStaticIndex(127))
        );
        assert_eq!(
            decode_field_section(&[0x00], 4096),
            Err(QpackError::Truncated)
        );
        // A literal whose length runs past the end.
        assert_eq!(
            decode_field_section(&[0x00, 0x00, 0x51, 0x0b, 0x2f], 4096),
            Err(QpackError::Truncated)
        );
        // An integer with endless continuation bytes.
        let mut long = vec![0x00, 0x00, 0xff];
        long.extend(std::iter::repeat_n(0xff, 20));
        long.push(0x01);
        assert_eq!(
            decode_field_section(&long, 4096),
            Err(QpackError::IntegerOverflow)
        );
        // Every truncation of a valid section fails cleanly (no panic).
        let enc = encode_field_section(&[(":path", "/x"), ("a-name", "a value")]);
        for cut in 0..enc.len() {
            let _ = decode_field_section(&enc[..cut], 4096);
        }
    }

    #[test]
    fn size_cap() {
        let big = "v".repeat(5000);
        let enc = encode_field_section(&[("x-big", &big)]);
        assert_eq!(
            decode_field_section(&enc, 4096),
            Err(QpackError::TooLarge(4096))
        );
        // Many small fields add up past the cap too.
        let many: Vec<(&str, &str)> = (0..200).map(|_| ("x-a", "b")).collect();
        let enc = encode_field_section(&many);
        assert_eq!(
            decode_field_section(&enc, 4096),
            Err(QpackError::TooLarge(4096))
        );
    }
}
