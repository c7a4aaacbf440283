//! The 12-byte yamux header: version, type, flags, stream id, length (all big-endian).

/// Size of every yamux header on the wire.
pub const HEADER_LEN: usize = 12;
/// The only protocol version in use.
pub const VERSION: u8 = 0;
/// The window every stream starts with before any window update (fixed by the spec).
pub const DEFAULT_WINDOW: u32 = 256 * 1024;

/// SYN: opens a stream (or marks a ping request).
pub const FLAG_SYN: u16 = 0x1;
/// ACK: acknowledges a stream open (or marks a ping response).
pub const FLAG_ACK: u16 = 0x2;
/// FIN: half-closes the sender's side of a stream.
pub const FLAG_FIN: u16 = 0x4;
/// RST: resets a stream at once.
pub const FLAG_RST: u16 = 0x8;

/// GoAway code: normal termination.
pub const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: the peer broke the protocol.
pub const GO_AWAY_PROTOCOL_ERROR: u32 = 1;
/// GoAway code: an internal error.
pub const GO_AWAY_INTERNAL_ERROR: u32 = 2;

/// The four frame types; any other value on the wire is a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Stream data; `length` bytes of body follow the header.
    Data = 0,
    /// Window credit; `length` is the delta, no body.
    WindowUpdate = 1,
    /// Keep-alive / RTT probe; `length` is an opaque value echoed back.
    Ping = 2,
    /// Session termination; `length` is the error code.
    GoAway = 3,
}

impl FrameType {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Data),
            1 => Some(Self::WindowUpdate),
            2 => Some(Self::Ping),
            3 => Some(Self::GoAway),
            _ => None,
        }
    }
}

/// A decoded header. Unknown flag bits are kept (and ignored by the session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: FrameType,
    pub flags: u16,
    pub stream_id: u32,
    pub length: u32,
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("unsupported yamux version {0}")]
    Version(u8),
    #[error("unknown yamux frame type {0}")]
    Type(u8),
}

impl Header {
    pub fn new(ty: FrameType, flags: u16, stream_id: u32, length: u32) -> Self {
        Self {
            ty,
            flags,
            stream_id,
            length,
        }
    }

    /// The wire form of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = self.ty as u8;
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Parses a header; the version and the type are checked, nothing else.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        if b[0] != VERSION {
            return Err(HeaderError::Version(b[0]));
        }
        let ty = FrameType::from_u8(b[1]).ok_or(HeaderError::Type(b[1]))?;
        Ok(Self {
            ty,
            flags: u16::from_be_bytes([b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vector() {
        let h = Header::new(FrameType::WindowUpdate, FLAG_SYN, 1, 0x10000);
        assert_eq!(h.to_bytes(), [0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0]);
    }

    #[test]
    fn rejects_version_and_type() {
        let mut b = Header::new(FrameType::Data, 0, 1, 0).to_bytes();
        b[0] = 1;
        assert_eq!(Header::decode(&b), Err(HeaderError::Version(1)));
        b[0] = 0;
        b[1] = 4;
        assert_eq!(Header::decode(&b), Err(HeaderError::Type(4)));
    }

    proptest! {
        #[test]
        fn round_trip(ty in 0u8..4, flags: u16, id: u32, len: u32) {
            let h = Header::new(FrameType::from_u8(ty).unwrap(), flags, id, len);
            prop_assert_eq!(Header::decode(&h.to_bytes()), Ok(h));
        }

        #[test]
        fn decode_any_bytes(b: [u8; 12]) {
            match Header::decode(&b) {
                Ok(h) => prop_assert_eq!(h.to_bytes(), b),
                Err(HeaderError::Version(v)) => prop_assert!(v != 0),
                Err(HeaderError::Type(t)) => prop_assert!(b[0] == 0 && t >= 4),
            }
        }
    }
}
