//! Unsigned LEB128 varints as libp2p uses them: at most 9 bytes (63 bits), minimal encodings only.

use thiserror::Error;

/// Longest varint libp2p accepts (the multiformats spec caps unsigned-varint at 9 bytes).
pub const MAX_VARINT_LEN: usize = 9;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VarintError {
    #[error("varint is truncated")]
    Truncated,
    #[error("varint is longer than 9 bytes")]
    Overflow,
    #[error("varint is not minimally encoded")]
    NotMinimal,
}

/// Appends the varint encoding of `value` to `out`.
pub fn encode(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Decodes one varint from the front of `buf`, returning the value and bytes consumed.
pub fn decode(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i >= MAX_VARINT_LEN {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_edges() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, (1 << 63) - 1] {
            let mut out = Vec::new();
            encode(v, &mut out);
            assert_eq!(decode(&out), Ok((v, out.len())));
        }
    }

    #[test]
    fn rejects_bad() {
        assert_eq!(decode(&[0x81, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(decode(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(decode(&[0xff; 10]), Err(VarintError::Overflow));
    }
}
