//! The libp2p WebRTC stream framing (libp2p/specs `webrtc/README.md`, "Multiplexing"): every
//! data channel message is a varint length prefix and a protobuf
//! `Message { optional Flag flag = 1; optional bytes message = 2; }`, at most
//! [`MAX_MESSAGE_SIZE`] bytes on the wire. A receiver keeps bytes across data channel messages
//! (a message may in principle span them) and refuses a prefix over the cap before buffering.

use rapidp2p_wire::varint;
use thiserror::Error;

/// Largest data channel message either side sends or accepts (prefix included).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024;
/// Largest payload one message carries: the cap minus the prefix and protobuf overhead
/// (2-byte length prefix, flag field 2 bytes, message tag 1 byte and a 2-byte length).
pub const MAX_PAYLOAD: usize = MAX_MESSAGE_SIZE - 8;
/// Largest payload we put in one message we send: 8 KiB messages, half the limit. rust-libp2p's
/// `libp2p-webrtc` (webrtc-rs) reads each data channel message into an 8 KiB buffer and fails
/// the stream ("Short buffer (size: 8192)") on a larger one, though the spec allows 16 KiB.
pub const SEND_PAYLOAD: usize = 8 * 1024 - 8;

/// The flags of a message (`enum Flag` of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// The sender will send no more data (half-close).
    Fin,
    /// The sender will read no more data: stop writing.
    StopSending,
    /// The sender abandons the stream both ways.
    Reset,
    /// Acknowledges a FIN: every byte sent before it was received.
    FinAck,
}

impl Flag {
    pub fn code(self) -> u64 {
        match self {
            Flag::Fin => 0,
            Flag::StopSending => 1,
            Flag::Reset => 2,
            Flag::FinAck => 3,
        }
    }

    pub fn from_code(code: u64) -> Option<Flag> {
        Some(match code {
            0 => Flag::Fin,
            1 => Flag::StopSending,
            2 => Flag::Reset,
            3 => Flag::FinAck,
            _ => return None,
        })
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub flag: Option<Flag>,
    pub data: Vec<u8>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("message of {0} bytes exceeds the 16 KiB limit")]
    TooLarge(usize),
    #[error("bad varint in a message: {0}")]
    Varint(#[from] varint::VarintError),
    #[error("malformed message protobuf: {0}")]
    Protobuf(&'static str),
    #[error("unknown message flag {0}")]
    UnknownFlag(u64),
}

/// Appends one framed message (`data` at most [`MAX_PAYLOAD`] bytes) to `out`.
pub fn encode(flag: Option<Flag>, data: &[u8], out: &mut Vec<u8>) {
    debug_assert!(data.len() <= MAX_PAYLOAD);
    let mut body = Vec::with_capacity(data.len() + 6);
    if let Some(f) = flag {
        body.push(0x08);
        varint::encode(f.code(), &mut body);
    }
    if !data.is_empty() {
        body.push(0x12);
        varint::encode(data.len() as u64, &mut body);
        body.extend_from_slice(data);
    }
    varint::encode(body.len() as u64, out);
    out.extend_from_slice(&body);
}

/// One framed message as its own buffer.
pub fn encode_one(flag: Option<Flag>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    encode(flag, data, &mut out);
    out
}

fn decode_body(mut body: &[u8]) -> Result<Message, FrameError> {
    let mut msg = Message::default();
    while !body.is_empty() {
        let (key, n) = varint::decode(body)?;
        body = &body[n..];
        match key {
            0x08 => {
                let (v, n) = varint::decode(body)?;
                body = &body[n..];
                msg.flag = Some(Flag::from_code(v).ok_or(FrameError::UnknownFlag(v))?);
            }
            0x12 => {
                let (len, n) = varint::decode(body)?;
                body = &body[n..];
                let len = usize::try_from(len).map_err(|_| FrameError::Protobuf("length"))?;
                if len > body.len() {
                    return Err(FrameError::Protobuf("truncated message field"));
                }
                msg.data = body[..len].to_vec();
                body = &body[len..];
            }
            _ => {
                // Unknown fields are skipped by wire type (protobuf forward compatibility).
                let wire = key & 7;
                match wire {
                    0 => {
                        let (_, n) = varint::decode(body)?;
                        body = &body[n..];
                    }
                    2 => {
                        let (len, n) = varint::decode(body)?;
                        body = &body[n..];
                        let len =
                            usize::try_from(len).map_err(|_| FrameError::Protobuf("length"))?;
                        if len > body.len() {
                            return Err(FrameError::Protobuf("truncated field"));
                        }
                        body = &body[len..];
                    }
                    _ => return Err(FrameError::Protobuf("unsupported wire type")),
                }
            }
        }
    }
    Ok(msg)
}

/// Reassembles messages from the bytes of one data channel.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held waiting for the rest of a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Decodes every whole message in `data` (plus what was held); keeps a partial tail.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        // Fast path: nothing held, decode straight from `data`.
        let owned;
        let mut input: &[u8] = if self.buf.is_empty() {
            data
        } else {
            self.buf.extend_from_slice(data);
            owned = std::mem::take(&mut self.buf);
            &owned[..]
        };
        loop {
            if input.is_empty() {
                return Ok(());
            }
            let (len, n) = match varint::decode(input) {
                Ok(v) => v,
                Err(varint::VarintError::Truncated) if input.len() < 3 => {
                    self.buf = input.to_vec();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len.saturating_add(n) > MAX_MESSAGE_SIZE {
                return Err(FrameError::TooLarge(len.saturating_add(n)));
            }
            if input.len() < n + len {
                self.buf = input.to_vec();
                return Ok(());
            }
            out.push(decode_body(&input[n..n + len])?);
            input = &input[n + len..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_flag_and_split_anywhere() {
        let mut wire = Vec::new();
        encode(None, b"hello", &mut wire);
        for f in [Flag::Fin, Flag::StopSending, Flag::Reset, Flag::FinAck] {
            encode(Some(f), b"", &mut wire);
        }
        encode(Some(Flag::Fin), &vec![7u8; MAX_PAYLOAD], &mut wire);
        for split in 0..wire.len().min(300) {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.push(&wire[..split], &mut out).unwrap();
            d.push(&wire[split..], &mut out).unwrap();
            assert_eq!(out.len(), 6);
            assert_eq!(out[0].data, b"hello");
            assert_eq!(out[0].flag, None);
            assert_eq!(out[1].flag, Some(Flag::Fin));
            assert_eq!(out[4].flag, Some(Flag::FinAck));
            assert_eq!(out[5].data.len(), MAX_PAYLOAD);
            assert_eq!(out[5].flag, Some(Flag::Fin));
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn largest_message_fits_the_cap() {
        let one = encode_one(Some(Flag::Fin), &vec![0u8; MAX_PAYLOAD]);
        assert!(one.len() <= MAX_MESSAGE_SIZE, "{}", one.len());
    }

    #[test]
    fn oversized_prefix_is_refused_before_buffering() {
        let mut wire = Vec::new();
        varint::encode((MAX_MESSAGE_SIZE + 1) as u64, &mut wire);
        let mut d = Decoder::new();
        let err = d.push(&wire, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut d = Decoder::new();
        // flag 9 is unknown
        assert_eq!(
            d.push(&[2, 0x08, 9], &mut Vec::new()),
            Err(FrameError::UnknownFlag(9))
        );
        // message field longer than the body
        assert!(matches!(
            Decoder::new().push(&[3, 0x12, 5, 1], &mut Vec::new()),
            Err(FrameError::Protobuf(_))
        ));
        // non-minimal varint length prefix
        assert!(matches!(
            Decoder::new().push(&[0x81, 0x00, 0], &mut Vec::new()),
            Err(FrameError::Varint(_))
        ));
        // wire type 5 (fixed32) is not in the schema
        assert!(matches!(
            Decoder::new().push(&[2, 0x1d, 0], &mut Vec::new()),
            Err(FrameError::Protobuf(_))
        ));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        // field 3 varint, field 4 bytes, then message "a"
        d.push(&[8, 0x18, 1, 0x22, 1, 9, 0x12, 1, b'a'], &mut out)
            .unwrap();
        assert_eq!(out[0].data, b"a");
    }
}
