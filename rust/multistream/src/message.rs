//! One multistream message: encode, and decode from the front of a buffer.

use rapidp2p_wire::varint;

/// The protocol header both sides send first.
pub const HEADER: &str = "/multistream/1.0.0";
/// The listener's answer to a protocol it does not speak.
pub const NA: &str = "na";
/// Largest message body accepted (go-multistream's limit), newline included.
pub const MAX_MESSAGE: usize = 1024;

/// Why bytes are not a multistream message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("multistream message length is not a valid varint")]
    BadLength,
    #[error("zero-length multistream message")]
    Empty,
    #[error("multistream message of {0} bytes exceeds {MAX_MESSAGE}")]
    TooLong(u64),
    #[error("multistream message does not end with a newline")]
    NoNewline,
    #[error("multistream message is not valid UTF-8")]
    NotUtf8,
}

/// Appends `text` framed as a message to `out`.
pub fn encode_message(text: &str, out: &mut Vec<u8>) -> Result<(), MessageError> {
    let len = text.len() + 1;
    if len > MAX_MESSAGE {
        return Err(MessageError::TooLong(len as u64));
    }
    varint::encode(len as u64, out);
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
    Ok(())
}

/// A message decoded from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The text (newline removed) and the bytes it took.
    Message(&'a str, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Decodes the message at the front of `buf`.
pub fn decode_message(buf: &[u8]) -> Result<Decoded<'_>, MessageError> {
    let (len, n) = match varint::decode(buf) {
        Ok(v) => v,
        // A prefix too short to hold the varint (at most 2 bytes for 1024) is incomplete.
        Err(_) if buf.len() < 2 && buf.iter().all(|b| b & 0x80 != 0) => {
            return Ok(Decoded::Incomplete)
        }
        Err(_) => return Err(MessageError::BadLength),
    };
    if len == 0 {
        return Err(MessageError::Empty);
    }
    if len > MAX_MESSAGE as u64 {
        return Err(MessageError::TooLong(len));
    }
    let end = n + len as usize;
    if buf.len() < end {
        return Ok(Decoded::Incomplete);
    }
    let body = &buf[n..end];
    let Some((&b'\n', text)) = body.split_last() else {
        return Err(MessageError::NoNewline);
    };
    let text = std::str::from_utf8(text).map_err(|_| MessageError::NotUtf8)?;
    Ok(Decoded::Message(text, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        encode_message(HEADER, &mut out).unwrap();
        assert_eq!(out[0] as usize, HEADER.len() + 1);
        assert_eq!(
            decode_message(&out).unwrap(),
            Decoded::Message(HEADER, out.len())
        );
        assert_eq!(decode_message(&out[..5]).unwrap(), Decoded::Incomplete);
        assert_eq!(decode_message(&[]).unwrap(), Decoded::Incomplete);
    }

    #[test]
    fn refusals() {
        assert_eq!(decode_message(&[0]), Err(MessageError::Empty));
        assert_eq!(
            decode_message(&[2, b'a', b'b']),
            Err(MessageError::NoNewline)
        );
        assert_eq!(
            decode_message(&[2, 0xff, b'\n']),
            Err(MessageError::NotUtf8)
        );
        assert_eq!(
            decode_message(&[0x81, 0x10]),
            Err(MessageError::TooLong(0x801))
        );
        assert!(encode_message(&"x".repeat(1024), &mut Vec::new()).is_err());
    }
}
