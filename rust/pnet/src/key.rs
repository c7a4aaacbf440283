//! The `/key/swarm/psk/1.0.0/` key file: a header line, an encoding line (`/base16/`,
//! `/base64/` or `/bin/`), then the 32-byte key in that encoding. kubo's `swarm.key` uses
//! `/base16/`; go-libp2p's `DecodeV1PSK` also reads the other two, and so do we: header lines
//! lose trailing `\r\n`, and only the 32 bytes of key are decoded (anything after them, such
//! as a final newline, is ignored, as in go).

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use std::fmt;

/// Length of a pre-shared key in bytes.
pub const KEY_LEN: usize = 32;

const HEADER: &[u8] = b"/key/swarm/psk/1.0.0/";
/// Largest key file we look at (a base16 file is about 90 bytes).
const MAX_FILE: usize = 4096;

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a libp2p swarm key: the first line must be /key/swarm/psk/1.0.0/")]
    BadHeader,
    #[error("swarm key: unknown encoding {0:?} (expected /base16/, /base64/ or /bin/)")]
    UnknownEncoding(String),
    #[error("swarm key: {0}")]
    BadKey(&'static str),
    #[error("swarm key file larger than {MAX_FILE} bytes")]
    TooLarge,
}

/// A private network's 32-byte key. Its `Debug` form shows only a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PreSharedKey([u8; KEY_LEN]);

impl PreSharedKey {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self(key)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Reads a key file (`/key/swarm/psk/1.0.0/`, then `/base16/`, `/base64/` or `/bin/`).
    pub fn parse(file: &[u8]) -> Result<Self, KeyError> {
        if file.len() > MAX_FILE {
            return Err(KeyError::TooLarge);
        }
        let (header, rest) = line(file).ok_or(KeyError::BadHeader)?;
        if header != HEADER {
            return Err(KeyError::BadHeader);
        }
        let (encoding, body) =
            line(rest).ok_or(KeyError::BadKey("missing the encoding line and the key"))?;
        let mut key = [0u8; KEY_LEN];
        match encoding {
            b"/base16/" => {
                let hex = body
                    .get(..2 * KEY_LEN)
                    .ok_or(KeyError::BadKey("base16 key shorter than 64 hex digits"))?;
                HEXLOWER_PERMISSIVE
                    .decode_mut(hex, &mut key)
                    .map_err(|_| KeyError::BadKey("base16 key is not hexadecimal"))?;
            }
            b"/base64/" => {
                // Like go's base64 decoder: line breaks inside the text are skipped.
                let text: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| *b != b'\n' && *b != b'\r')
                    .collect();
                let decoded = decode_base64_prefix(&text)?;
                key.copy_from_slice(&decoded[..KEY_LEN]);
            }
            b"/bin/" => {
                let raw = body
                    .get(..KEY_LEN)
                    .ok_or(KeyError::BadKey("binary key shorter than 32 bytes"))?;
                key.copy_from_slice(raw);
            }
            other => {
                return Err(KeyError::UnknownEncoding(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        }
        Ok(Self(key))
    }

    /// The key in kubo's `swarm.key` form (`/base16/`, lowercase, final newline).
    pub fn to_file(&self) -> String {
        format!(
            "/key/swarm/psk/1.0.0/\n/base16/\n{}\n",
            HEXLOWER_PERMISSIVE.encode(&self.0)
        )
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(..)")
    }
}

/// Splits off the first line (without its `\n` and any trailing `\r`).
fn line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|b| *b == b'\n')?;
    let mut l = &data[..end];
    while let [head @ .., b'\r'] = l {
        l = head;
    }
    Some((l, &data[end + 1..]))
}

/// Decodes base64 text whose first 32 decoded bytes are the key (padding may follow).
fn decode_base64_prefix(text: &[u8]) -> Result<Vec<u8>, KeyError> {
    // 32 bytes take 44 characters with padding ("...=") ; go stops reading once it has 32.
    let want = 44;
    let chunk = text
        .get(..want)
        .ok_or(KeyError::BadKey("base64 key shorter than 32 bytes"))?;
    let decoded = BASE64
        .decode(chunk)
        .map_err(|_| KeyError::BadKey("base64 key is not valid base64"))?;
    if decoded.len() < KEY_LEN {
        return Err(KeyError::BadKey("base64 key shorter than 32 bytes"));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a7aedf6d1c3b3ba5b4e4a0e2b1e4dd95b08f5b4a52d3e6b1e7e0f5d37bd3f3e1";

    fn expected() -> [u8; 32] {
        let mut k = [0u8; 32];
        HEXLOWER_PERMISSIVE
            .decode_mut(HEX.as_bytes(), &mut k)
            .unwrap();
        k
    }

    #[test]
    fn base16_kubo_form_round_trips() {
        let file = format!("/key/swarm/psk/1.0.0/\n/base16/\n{HEX}\n");
        let k = PreSharedKey::parse(file.as_bytes()).unwrap();
        assert_eq!(k.as_bytes(), &expected());
        assert_eq!(k.to_file(), file);
    }

    #[test]
    fn base16_uppercase_crlf_and_no_final_newline() {
        let file = format!(
            "/key/swarm/psk/1.0.0/\r\n/base16/\r\n{}",
            HEX.to_uppercase()
        );
        let k = PreSharedKey::parse(file.as_bytes()).unwrap();
        assert_eq!(k.as_bytes(), &expected());
    }

    #[test]
    fn base64_and_bin() {
        let k = expected();
        let b64 = format!("/key/swarm/psk/1.0.0/\n/base64/\n{}\n", BASE64.encode(&k));
        assert_eq!(PreSharedKey::parse(b64.as_bytes()).unwrap().as_bytes(), &k);
        let mut bin = b"/key/swarm/psk/1.0.0/\n/bin/\n".to_vec();
        bin.extend_from_slice(&k);
        assert_eq!(PreSharedKey::parse(&bin).unwrap().as_bytes(), &k);
    }

    #[test]
    fn bad_files_are_refused() {
        let short = format!("/key/swarm/psk/1.0.0/\n/base16/\n{}", &HEX[..63]);
        let nothex = format!("/key/swarm/psk/1.0.0/\n/base16/\n{}zz\n", &HEX[..62]);
        let cases: [(&[u8], KeyError); 6] = [
            (b"", KeyError::BadHeader),
            (b"/key/swarm/psk/2.0.0/\n/base16/\n", KeyError::BadHeader),
            (
                b"/key/swarm/psk/1.0.0/\n/base58/\nabc\n",
                KeyError::UnknownEncoding("/base58/".into()),
            ),
            (
                short.as_bytes(),
                KeyError::BadKey("base16 key shorter than 64 hex digits"),
            ),
            (
                nothex.as_bytes(),
                KeyError::BadKey("base16 key is not hexadecimal"),
            ),
            (
                b"/key/swarm/psk/1.0.0/\n/bin/\nabc",
                KeyError::BadKey("binary key shorter than 32 bytes"),
            ),
        ];
        for (file, err) in cases {
            assert_eq!(PreSharedKey::parse(file), Err(err));
        }
        assert_eq!(
            PreSharedKey::parse(&vec![b'a'; MAX_FILE + 1]),
            Err(KeyError::TooLarge)
        );
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", PreSharedKey::new([7; 32])),
            "PreSharedKey(..)"
        );
    }
}
