//! Unsigned-varint length-prefixed frames (multistream-select, identify, kad, ...).
//!
//! The splitter takes everything that has arrived and yields every complete frame in one pass;
//! the caller keeps `buf[consumed()..]` for the next read. A length over the cap is refused as
//! soon as its prefix is read, before the body arrives, and nothing is ever allocated from it.

use crate::error::{Result, WireError};
use crate::varint::{self, VarintError};

/// Iterator over the complete frames at the front of a buffer.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    max_len: u64,
    failed: bool,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8], max_len: u64) -> Self {
        Frames {
            buf,
            pos: 0,
            max_len,
            failed: false,
        }
    }

    /// Bytes taken by the frames yielded so far: the unconsumed tail starts here.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// After the stream ended, fails if a partial varint or body was left over (ROBUSTNESS 3).
    pub fn check_eof(&self) -> Result<()> {
        let tail = &self.buf[self.pos..];
        if tail.is_empty() {
            return Ok(());
        }
        match varint::decode(tail) {
            Err(VarintError::Truncated) => {
                Err(WireError::Eof("EOF inside a frame length varint".into()))
            }
            Err(e) => Err(e.into()),
            Ok((len, n)) => Err(WireError::Eof(format!(
                "EOF inside a frame body: {} of {len} bytes received",
                tail.len() - n
            ))),
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let (len, n) = match varint::decode(rest) {
            Ok(v) => v,
            Err(VarintError::Truncated) => return None,
            Err(e) => {
                self.failed = true;
                return Some(Err(e.into()));
            }
        };
        if len > self.max_len {
            self.failed = true;
            return Some(Err(WireError::FrameTooLarge {
                len,
                max: self.max_len,
            }));
        }
        let body = &rest[n..];
        // `len <= max_len` and `len <= body.len()` keep the cast and the slice in range.
        if len > body.len() as u64 {
            return None;
        }
        let len = len as usize;
        self.pos += n + len;
        Some(Ok(&body[..len]))
    }
}

/// Splits `buf` into complete frames; returns them and the offset of the unconsumed tail.
pub fn split(buf: &[u8], max_len: u64) -> Result<(Vec<&[u8]>, usize)> {
    let mut it = Frames::new(buf, max_len);
    let frames = it.by_ref().collect::<Result<Vec<_>>>()?;
    Ok((frames, it.consumed()))
}

/// Appends `payload` with its varint length prefix to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(varint::MAX_VARINT_LEN + payload.len());
    varint::encode(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_and_keeps_tail() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        encode(b"", &mut buf);
        encode(b"world", &mut buf);
        let full = buf.len();
        buf.extend_from_slice(&[0x05, b'a']);
        let (frames, used) = split(&buf, 100).unwrap();
        assert_eq!(frames, vec![&b"hello"[..], b"", b"world"]);
        assert_eq!(used, full);
        let it = Frames::new(&buf[used..], 100);
        assert!(matches!(it.check_eof(), Err(WireError::Eof(_))));
    }

    #[test]
    fn refuses_over_cap_before_body() {
        // Prefix says 2**40 bytes; only the prefix has arrived.
        let mut buf = Vec::new();
        varint::encode(1 << 40, &mut buf);
        assert_eq!(
            split(&buf, 1024),
            Err(WireError::FrameTooLarge {
                len: 1 << 40,
                max: 1024
            })
        );
    }

    #[test]
    fn bad_varints() {
        assert_eq!(
            split(&[0x81, 0x00], 10),
            Err(WireError::Varint(VarintError::NotMinimal))
        );
        assert_eq!(
            split(&[0xff; 12], u64::MAX),
            Err(WireError::Varint(VarintError::Overflow))
        );
        assert_eq!(split(&[0x80, 0x80], 10), Ok((vec![], 0)));
        assert!(matches!(
            Frames::new(&[0x80], 10).check_eof(),
            Err(WireError::Eof(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            for p in &payloads { encode(p, &mut buf); }
            let (frames, used) = split(&buf, 300).unwrap();
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!(frames.len(), payloads.len());
            for (f, p) in frames.iter().zip(&payloads) { prop_assert_eq!(*f, &p[..]); }
            // Any prefix yields a prefix of the frames and a consistent offset.
            let k = if buf.is_empty() { 0 } else { cut.index(buf.len() + 1) };
            let (part, used) = split(&buf[..k], 300).unwrap();
            prop_assert!(used <= k);
            prop_assert_eq!(&part[..], &frames[..part.len()]);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), max in 0u64..512) {
            let _ = split(&data, max);
            let _ = Frames::new(&data, max).check_eof();
        }
    }
}
