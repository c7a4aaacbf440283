//! The post-handshake cipher pair and libp2p's transport framing:
//! every frame is `[2-byte big-endian length][ciphertext || 16-byte tag]`, at most 65535 bytes,
//! so at most 65519 bytes of plaintext each.

use crate::cipher::{CipherState, TAG_LEN};
use crate::symmetric::HASHLEN;
use crate::NoiseError;

/// Largest plaintext carried by one transport frame (65535 - 16).
pub const MAX_FRAME_PLAINTEXT: usize = crate::MAX_MESSAGE_LEN - TAG_LEN;

/// Bytes of the big-endian length prefix in front of every frame.
pub const LEN_PREFIX: usize = 2;

/// Per-frame overhead on the wire: length prefix plus tag.
pub const FRAME_OVERHEAD: usize = LEN_PREFIX + TAG_LEN;

/// How many frames `encrypt` cuts `plaintext_len` bytes into (0 for empty input).
pub fn frame_count(plaintext_len: usize) -> usize {
    plaintext_len.div_ceil(MAX_FRAME_PLAINTEXT)
}

/// Exact number of wire bytes `encrypt` produces for `plaintext_len` bytes.
pub fn encrypted_len(plaintext_len: usize) -> usize {
    plaintext_len + frame_count(plaintext_len) * FRAME_OVERHEAD
}

/// Scans the length prefixes of `input` without decrypting: returns `(consumed, plaintext)`,
/// the bytes of all complete frames and the plaintext they will decrypt to. A frame too short
/// to hold a tag counts as complete here; `decrypt` reports it.
pub fn scan_frames(input: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    let mut plain = 0;
    while let Some(frame_len) = complete_frame_len(&input[pos..]) {
        plain += frame_len.saturating_sub(TAG_LEN);
        pos += LEN_PREFIX + frame_len;
    }
    (pos, plain)
}

/// Length of the frame body at the start of `buf`, if the whole frame is present.
fn complete_frame_len(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; LEN_PREFIX] = buf.get(..LEN_PREFIX)?.try_into().ok()?;
    let len = usize::from(u16::from_be_bytes(prefix));
    (buf.len() - LEN_PREFIX >= len).then_some(len)
}

/// The transport cipher pair produced by `Handshake::into_transport`.
pub struct Transport {
    send: CipherState,
    recv: CipherState,
    handshake_hash: [u8; HASHLEN],
    remote_static: [u8; 32],
    initiator: bool,
}

impl Transport {
    pub(crate) fn new(
        send: CipherState,
        recv: CipherState,
        handshake_hash: [u8; HASHLEN],
        remote_static: [u8; 32],
        initiator: bool,
    ) -> Self {
        Self {
            send,
            recv,
            handshake_hash,
            remote_static,
            initiator,
        }
    }

    /// The final handshake hash (a channel binding both sides share).
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.handshake_hash
    }

    /// The peer's static x25519 public key authenticated by the handshake.
    pub fn remote_static_public(&self) -> [u8; 32] {
        self.remote_static
    }

    /// True on the dialer's side.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Frames sent so far (the next sending nonce).
    pub fn send_nonce(&self) -> u64 {
        self.send.nonce()
    }

    /// Frames received so far (the next receiving nonce).
    pub fn recv_nonce(&self) -> u64 {
        self.recv.nonce()
    }

    fn check_send_budget(&self, plaintext_len: usize) -> Result<(), NoiseError> {
        let frames = u64::try_from(frame_count(plaintext_len)).unwrap_or(u64::MAX);
        if frames > self.send.remaining() {
            return Err(NoiseError::NonceExhausted);
        }
        Ok(())
    }

    /// Encrypts `plaintext` into frames appended to `out`, sealing in place in `out` (one copy
    /// of the plaintext, no temporary buffers). Writes nothing when the nonce would run out.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        self.check_send_budget(plaintext.len())?;
        out.reserve(encrypted_len(plaintext.len()));
        for chunk in plaintext.chunks(MAX_FRAME_PLAINTEXT) {
            let start = out.len();
            out.extend_from_slice(&frame_len_prefix(chunk.len()));
            out.extend_from_slice(chunk);
            let tag = self
                .send
                .seal_in_place(&[], &mut out[start + LEN_PREFIX..])?;
            out.extend_from_slice(tag.as_ref());
        }
        Ok(())
    }

    /// Like `encrypt` but into a caller-provided slice of exactly `encrypted_len(plaintext.len())`
    /// bytes (lets a binding write straight into a foreign buffer). Returns bytes written.
    pub fn encrypt_to_slice(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let need = encrypted_len(plaintext.len());
        if out.len() < need {
            return Err(NoiseError::TooLarge(need));
        }
        self.check_send_budget(plaintext.len())?;
        let mut pos = 0;
        for chunk in plaintext.chunks(MAX_FRAME_PLAINTEXT) {
            let body = pos + LEN_PREFIX;
            let tag_at = body + chunk.len();
            out[pos..body].copy_from_slice(&frame_len_prefix(chunk.len()));
            out[body..tag_at].copy_from_slice(chunk);
            let tag = self.send.seal_in_place(&[], &mut out[body..tag_at])?;
            out[tag_at..tag_at + TAG_LEN].copy_from_slice(tag.as_ref());
            pos = tag_at + TAG_LEN;
        }
        Ok(pos)
    }

    /// Like `encrypt_to_slice` for the concatenation of `segments` (frames are cut from the
    /// whole, not per segment): gathers and seals in one pass, so bytes still owned by other
    /// buffers need no staging copy. `out` must hold `encrypted_len(total)` bytes; returns
    /// bytes written.
    pub fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let total: usize = segments.iter().map(|s| s.len()).sum();
        let need = encrypted_len(total);
        if out.len() < need {
            return Err(NoiseError::TooLarge(need));
        }
        self.check_send_budget(total)?;
        let mut segs = segments.iter().copied().filter(|s| !s.is_empty());
        let mut cur: &[u8] = segs.next().unwrap_or(&[]);
        let mut left = total;
        let mut pos = 0;
        while left > 0 {
            let frame = left.min(MAX_FRAME_PLAINTEXT);
            let body = pos + LEN_PREFIX;
            let tag_at = body + frame;
            out[pos..body].copy_from_slice(&frame_len_prefix(frame));
            let mut fill = body;
            while fill < tag_at {
                if cur.is_empty() {
                    cur = segs.next().unwrap_or(&[]);
                    continue;
                }
                let take = cur.len().min(tag_at - fill);
                out[fill..fill + take].copy_from_slice(&cur[..take]);
                cur = &cur[take..];
                fill += take;
            }
            let tag = self.send.seal_in_place(&[], &mut out[body..tag_at])?;
            out[tag_at..tag_at + TAG_LEN].copy_from_slice(tag.as_ref());
            pos = tag_at + TAG_LEN;
            left -= frame;
        }
        Ok(pos)
    }

    /// Decrypts every complete frame at the start of `buf` in place (no copy) and appends
    /// the range of each frame's plaintext within `buf` to `plain`; returns the bytes of
    /// complete frames consumed. On error the receive nonce stays at the failed frame, `plain`
    /// has the ranges of the frames before it, and the failed frame's bytes are unspecified.
    pub fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<usize, NoiseError> {
        let mut pos = 0;
        while let Some(frame_len) = complete_frame_len(&buf[pos..]) {
            let body_len = frame_len
                .checked_sub(TAG_LEN)
                .ok_or(NoiseError::ShortFrame(frame_len))?;
            let body = pos + LEN_PREFIX;
            let (text, tag) = buf[body..body + frame_len].split_at_mut(body_len);
            self.recv.open_in_place(&[], text, tag)?;
            if body_len > 0 {
                plain.push(body..body + body_len);
            }
            pos = body + frame_len;
        }
        Ok(pos)
    }

    /// Decrypts every complete frame at the start of `input`, appending the plaintext to `out`;
    /// returns the input bytes consumed (the caller keeps the partial tail). On error the
    /// receive nonce stays at the failed frame and `out` keeps only the plaintext of the frames
    /// before it. `out` grows by less than `input.len()`.
    pub fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, NoiseError> {
        let (_, plain) = scan_frames(input);
        out.reserve(plain);
        let mut pos = 0;
        while let Some(frame_len) = complete_frame_len(&input[pos..]) {
            let frame = &input[pos + LEN_PREFIX..pos + LEN_PREFIX + frame_len];
            let body_len = frame_len
                .checked_sub(TAG_LEN)
                .ok_or(NoiseError::ShortFrame(frame_len))?;
            let (body, tag) = frame.split_at(body_len);
            let start = out.len();
            out.extend_from_slice(body);
            if let Err(e) = self.recv.open_in_place(&[], &mut out[start..], tag) {
                out.truncate(start);
                return Err(e);
            }
            pos += LEN_PREFIX + frame_len;
        }
        Ok(pos)
    }

    /// Like `decrypt` but into a slice of at least `scan_frames(input).1` bytes; returns
    /// `(consumed, written)`. On error the slice content is unspecified.
    pub fn decrypt_to_slice(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), NoiseError> {
        let mut pos = 0;
        let mut written = 0;
        while let Some(frame_len) = complete_frame_len(&input[pos..]) {
            let frame = &input[pos + LEN_PREFIX..pos + LEN_PREFIX + frame_len];
            let body_len = frame_len
                .checked_sub(TAG_LEN)
                .ok_or(NoiseError::ShortFrame(frame_len))?;
            let (body, tag) = frame.split_at(body_len);
            let dst = out
                .get_mut(written..written + body_len)
                .ok_or(NoiseError::TooLarge(written + body_len))?;
            dst.copy_from_slice(body);
            self.recv.open_in_place(&[], dst, tag)?;
            written += body_len;
            pos += LEN_PREFIX + frame_len;
        }
        Ok((pos, written))
    }

    /// Test hook: move both nonces (exhaustion tests without 2^64 frames).
    #[cfg(test)]
    pub(crate) fn set_nonces(&mut self, send: u64, recv: u64) {
        self.send.set_nonce(send);
        self.recv.set_nonce(recv);
    }
}

/// The 2-byte big-endian length of a frame carrying `plaintext_len` bytes.
fn frame_len_prefix(plaintext_len: usize) -> [u8; LEN_PREFIX] {
    // plaintext_len <= MAX_FRAME_PLAINTEXT, so the frame length fits in u16.
    let len = u16::try_from(plaintext_len + TAG_LEN).unwrap_or(u16::MAX);
    len.to_be_bytes()
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("initiator", &self.initiator)
            .field("send_nonce", &self.send.nonce())
            .field("recv_nonce", &self.recv.nonce())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Handshake;

    fn pair() -> (Transport, Transport) {
        let mut i = Handshake::initiator().expect("init");
        let mut r = Handshake::responder().expect("resp");
        let m1 = i.write_message(&[]).expect("m1");
        r.read_message(&m1).expect("m1");
        let m2 = r.write_message(b"r").expect("m2");
        i.read_message(&m2).expect("m2");
        let m3 = i.write_message(b"i").expect("m3");
        r.read_message(&m3).expect("m3");
        (
            i.into_transport().expect("i"),
            r.into_transport().expect("r"),
        )
    }

    #[test]
    fn send_nonce_exhaustion_is_an_error_and_writes_nothing() {
        let (mut a, _) = pair();
        a.set_nonces(u64::MAX - 1, 0);
        let mut out = Vec::new();
        a.encrypt(b"last", &mut out)
            .expect("nonce 2^64-2 is usable");
        let written = out.len();
        assert_eq!(a.encrypt(b"x", &mut out), Err(NoiseError::NonceExhausted));
        assert_eq!(out.len(), written);
        let mut slice = vec![0u8; encrypted_len(1)];
        assert_eq!(
            a.encrypt_to_slice(b"x", &mut slice),
            Err(NoiseError::NonceExhausted)
        );
    }

    #[test]
    fn multi_frame_write_is_refused_whole_when_nonces_run_short() {
        let (mut a, _) = pair();
        a.set_nonces(u64::MAX - 1, 0);
        let mut out = Vec::new();
        let two_frames = vec![0u8; MAX_FRAME_PLAINTEXT + 1];
        assert_eq!(
            a.encrypt(&two_frames, &mut out),
            Err(NoiseError::NonceExhausted)
        );
        assert!(out.is_empty());
        assert_eq!(a.send_nonce(), u64::MAX - 1);
    }

    #[test]
    fn gather_and_in_place_match_encrypt_and_decrypt() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for cuts in [
            vec![],
            vec![0],
            vec![1, 2, 65519, 65520, 131038],
            vec![100, 100, 150_000],
            vec![199_999],
        ] {
            let mut segs: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                segs.push(&data[last..c.max(last)]);
                last = c.max(last);
            }
            // Gathered frames decrypt to the data and are cut like `encrypt` cuts them.
            let (mut a, mut b) = pair();
            let mut got = vec![0u8; encrypted_len(data.len()) + 3];
            let n = a.encrypt_gather_to_slice(&segs, &mut got).expect("gather");
            assert_eq!(n, encrypted_len(data.len()));
            assert_eq!(scan_frames(&got[..n]), (n, data.len()));
            let mut plain = Vec::new();
            assert_eq!(b.decrypt(&got[..n], &mut plain), Ok(n));
            assert_eq!(plain, data, "cuts {cuts:?}");
            // In place, with a partial frame left at the end.
            let (mut a, mut b) = pair();
            let mut buf = Vec::new();
            a.encrypt(&data, &mut buf).expect("enc");
            let whole = buf.len();
            buf.extend_from_slice(&got[..5]);
            let mut ranges = Vec::new();
            let consumed = b.decrypt_in_place(&mut buf, &mut ranges).expect("dec");
            assert_eq!(consumed, whole);
            let plain: Vec<u8> = ranges
                .iter()
                .flat_map(|r| buf[r.clone()].to_vec())
                .collect();
            assert_eq!(plain, data);
        }
    }

    #[test]
    fn in_place_rejects_tampering_without_advancing() {
        let (mut a, mut b) = pair();
        let mut wire = Vec::new();
        a.encrypt(b"one", &mut wire).expect("enc");
        let first = wire.len();
        a.encrypt(b"two", &mut wire).expect("enc");
        wire[first + 3] ^= 1;
        let mut ranges = Vec::new();
        assert_eq!(
            b.decrypt_in_place(&mut wire, &mut ranges),
            Err(NoiseError::Decrypt)
        );
        assert_eq!(ranges.len(), 1);
        assert_eq!(&wire[ranges[0].clone()], b"one");
        assert_eq!(b.recv_nonce(), 1);
        let mut short = vec![0u8, 3, 1, 2, 3];
        assert_eq!(
            b.decrypt_in_place(&mut short, &mut ranges),
            Err(NoiseError::ShortFrame(3))
        );
    }

    #[test]
    fn gather_checks_output_size_and_budget() {
        let (mut a, _) = pair();
        let mut small = vec![0u8; encrypted_len(10) - 1];
        assert_eq!(
            a.encrypt_gather_to_slice(&[b"01234", b"56789"], &mut small),
            Err(NoiseError::TooLarge(encrypted_len(10)))
        );
        let mut empty: [u8; 0] = [];
        assert_eq!(a.encrypt_gather_to_slice(&[b""], &mut empty), Ok(0));
        a.set_nonces(u64::MAX - 1, 0);
        let mut two = vec![0u8; encrypted_len(MAX_FRAME_PLAINTEXT + 1)];
        let big = vec![0u8; MAX_FRAME_PLAINTEXT];
        assert_eq!(
            a.encrypt_gather_to_slice(&[&big, b"x"], &mut two),
            Err(NoiseError::NonceExhausted)
        );
        assert_eq!(a.send_nonce(), u64::MAX - 1);
    }

    #[test]
    fn recv_nonce_exhaustion_is_an_error() {
        let (mut a, mut b) = pair();
        let mut wire = Vec::new();
        a.encrypt(b"hello", &mut wire).expect("enc");
        b.set_nonces(0, u64::MAX);
        let mut out = Vec::new();
        assert_eq!(b.decrypt(&wire, &mut out), Err(NoiseError::NonceExhausted));
        assert!(out.is_empty());
        assert_eq!(b.recv_nonce(), u64::MAX);
    }
}
