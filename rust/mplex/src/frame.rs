//! The mplex frame: `varint(id << 3 | flag)`, `varint(length)`, `length` bytes.

use rapidp2p_wire::varint::{self, VarintError, MAX_VARINT_LEN};

use crate::error::ProtocolError;

/// Longest header: two varints of at most 9 bytes each.
pub const MAX_HEADER_LEN: usize = 2 * MAX_VARINT_LEN;

/// The three low bits of the header varint. "Initiator" flags are sent by the side that
/// opened the stream, "Receiver" flags by the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    NewStream = 0,
    MessageReceiver = 1,
    MessageInitiator = 2,
    CloseReceiver = 3,
    CloseInitiator = 4,
    ResetReceiver = 5,
    ResetInitiator = 6,
}

impl Flag {
    fn from_bits(bits: u64) -> Option<Self> {
        Some(match bits {
            0 => Self::NewStream,
            1 => Self::MessageReceiver,
            2 => Self::MessageInitiator,
            3 => Self::CloseReceiver,
            4 => Self::CloseInitiator,
            5 => Self::ResetReceiver,
            6 => Self::ResetInitiator,
            _ => return None,
        })
    }

    /// True when the sender of this flag opened the stream (NewStream included).
    pub fn from_initiator(self) -> bool {
        matches!(
            self,
            Self::NewStream | Self::MessageInitiator | Self::CloseInitiator | Self::ResetInitiator
        )
    }
}

/// A decoded frame header; the body (`length` bytes) follows it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub id: u64,
    pub flag: Flag,
    pub length: u64,
}

impl FrameHeader {
    pub fn new(id: u64, flag: Flag, length: u64) -> Self {
        Self { id, flag, length }
    }

    /// Appends the header's bytes to `out` (`id` must be below 2^60).
    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::encode((self.id << 3) | self.flag as u64, out);
        varint::encode(self.length, out);
    }

    /// The header as a small stack buffer: `(bytes, used)`.
    pub fn to_bytes(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut v = Vec::with_capacity(MAX_HEADER_LEN);
        self.encode(&mut v);
        let mut b = [0u8; MAX_HEADER_LEN];
        b[..v.len()].copy_from_slice(&v);
        (b, v.len())
    }

    /// Decodes a header from the front of `buf`: `Ok(None)` when more bytes are needed,
    /// else the header and the bytes it used. Bad varints and flag 7 are errors; the length
    /// is not checked here (the session knows its limit).
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let (h, n) = match varint::decode(buf) {
            Ok(v) => v,
            Err(VarintError::Truncated) => return Ok(None),
            Err(e) => return Err(ProtocolError::Header(e)),
        };
        let (length, m) = match varint::decode(&buf[n..]) {
            Ok(v) => v,
            Err(VarintError::Truncated) => return Ok(None),
            Err(e) => return Err(ProtocolError::Length(e)),
        };
        let id = h >> 3;
        let flag = Flag::from_bits(h & 7).ok_or(ProtocolError::BadFlag(id))?;
        Ok(Some((Self { id, flag, length }, n + m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (id, flag, len) in [
            (0, Flag::NewStream, 0),
            (1, Flag::MessageInitiator, 1 << 20),
            ((1u64 << 60) - 1, Flag::ResetInitiator, 0),
            (17, Flag::CloseReceiver, 300),
        ] {
            let h = FrameHeader::new(id, flag, len);
            let (b, n) = h.to_bytes();
            assert_eq!(FrameHeader::decode(&b[..n]), Ok(Some((h, n))));
            for cut in 0..n {
                assert_eq!(FrameHeader::decode(&b[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn known_bytes() {
        // Stream 1, MessageInitiator (2): header varint 1<<3|2 = 10; length 3.
        let mut v = Vec::new();
        FrameHeader::new(1, Flag::MessageInitiator, 3).encode(&mut v);
        assert_eq!(v, [10, 3]);
    }

    #[test]
    fn bad_headers() {
        assert_eq!(FrameHeader::decode(&[7, 0]), Err(ProtocolError::BadFlag(0)));
        assert_eq!(
            FrameHeader::decode(&[0x80, 0]),
            Err(ProtocolError::Header(VarintError::NotMinimal))
        );
        assert_eq!(
            FrameHeader::decode(&[0xff; 10]),
            Err(ProtocolError::Header(VarintError::Overflow))
        );
        let mut long = vec![2u8];
        long.extend_from_slice(&[0xff; 10]);
        assert_eq!(
            FrameHeader::decode(&long),
            Err(ProtocolError::Length(VarintError::Overflow))
        );
    }
}
