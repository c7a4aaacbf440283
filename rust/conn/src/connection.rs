//! `Connection`: optional transport cipher + yamux session, one call per socket read.

use std::ops::Range;

use rapidp2p_yamux::frame::GO_AWAY_PROTOCOL_ERROR;
use rapidp2p_yamux::{Config, Error as MuxError, Event, Role, Session};

use crate::channel::SecureChannel;

/// Scratch plaintext buffers larger than this are released after use.
const MAX_IDLE_SCRATCH: usize = 4 * 1024 * 1024;

/// Why a connection call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// A transport frame failed authentication (or could not be encrypted); the connection
    /// is dead.
    #[error("decryption failed: {0}")]
    Crypto(String),
    /// The yamux session refused (peer violation or local misuse).
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// A secured (or plaintext) yamux connection. Before the muxer starts it can carry a
/// "preamble" of raw plaintext through the cipher (multistream-select for the muxer inside
/// Noise): `send_preamble` / `receive_preamble`, then `start_muxer` with the leftover.
#[derive(Debug)]
pub struct Connection<T> {
    cipher: Option<T>,
    session: Session,
    tail: Vec<u8>,
    plain: Vec<u8>,
    preamble_out: Vec<u8>,
    in_preamble: bool,
    muxer_started: bool,
    crypto_failed: bool,
    frames: Vec<Range<usize>>,
}

/// Where the bytes of one `Event::Data` (pushed with an empty vector) lie in the buffer given
/// to `Connection::receive_in_place`: `(event index, byte range)`, in stream order.
pub type DataRange = (usize, Range<usize>);

fn crypto<E: std::fmt::Display>(e: E) -> ConnError {
    ConnError::Crypto(e.to_string())
}

impl<T: SecureChannel> Connection<T> {
    /// `cipher = None` means no encryption; `role` is Client for the dialer.
    pub fn new(cipher: Option<T>, role: Role, cfg: Config) -> Result<Self, MuxError> {
        Ok(Self {
            cipher,
            session: Session::new(role, cfg)?,
            tail: Vec::new(),
            plain: Vec::new(),
            preamble_out: Vec::new(),
            in_preamble: false,
            muxer_started: false,
            crypto_failed: false,
            frames: Vec::new(),
        })
    }

    /// True when bytes on the wire are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// True once the transport failed or the session is closed.
    pub fn is_closed(&self) -> bool {
        self.crypto_failed || self.session.is_closed()
    }

    /// Decrypts every complete frame of `tail + data` into `self.plain`, keeping the partial
    /// tail (always under one frame). A failure kills the connection and queues GoAway.
    fn decrypt(&mut self, data: &[u8]) -> Result<(), ConnError> {
        let Some(cipher) = self.cipher.as_mut() else {
            self.plain.extend_from_slice(data);
            return Ok(());
        };
        let result = if self.tail.is_empty() {
            cipher.decrypt(data, &mut self.plain).map(|n| {
                self.tail.extend_from_slice(&data[n..]);
            })
        } else {
            self.tail.extend_from_slice(data);
            cipher.decrypt(&self.tail, &mut self.plain).map(|n| {
                self.tail.drain(..n);
            })
        };
        if let Err(e) = result {
            self.crypto_failed = true;
            self.tail = Vec::new();
            self.plain = Vec::new();
            // Tell the peer why (our send cipher still works), then the caller closes.
            let _ = self.session.go_away(GO_AWAY_PROTOCOL_ERROR);
            return Err(crypto(e));
        }
        Ok(())
    }

    fn recycle_scratch(&mut self) {
        self.plain.clear();
        if self.plain.capacity() > MAX_IDLE_SCRATCH {
            self.plain = Vec::new();
        }
    }

    /// Decrypts every complete frame (keeping the partial tail) and runs the session over the
    /// plaintext, appending events. Ends the preamble phase if one was running.
    pub fn receive(
        &mut self,
        data: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.crypto_failed {
            return Ok(());
        }
        self.in_preamble = false;
        self.muxer_started = true;
        if self.cipher.is_none() {
            return Ok(self.session.receive(data, now, events)?);
        }
        self.decrypt(data)?;
        let r = self.session.receive(&self.plain, now, events);
        self.recycle_scratch();
        Ok(r?)
    }

    /// Zero-copy receive: decrypts every complete frame of `buf` in place and runs the
    /// session over the plaintext. DATA is not copied: each `Event::Data` carries an empty
    /// vector and its bytes are listed in `ranges` (ranges of `buf`). Returns the bytes of
    /// `buf` consumed; the caller keeps `buf[consumed..]` (a partial frame, always shorter than
    /// one wire frame) in front of the next input. Call `take_tail` first when switching from
    /// `receive` / `receive_preamble`, which keep their tail inside.
    pub fn receive_in_place(
        &mut self,
        buf: &mut [u8],
        now: f64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<DataRange>,
    ) -> Result<usize, ConnError> {
        if self.crypto_failed {
            return Ok(buf.len());
        }
        if !self.tail.is_empty() {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "take_tail() before receive_in_place",
            )));
        }
        self.in_preamble = false;
        self.muxer_started = true;
        let base = buf.as_ptr() as usize;
        let mut sink = |idx: usize, bytes: &[u8]| {
            let start = bytes.as_ptr() as usize - base;
            ranges.push((idx, start..start + bytes.len()));
        };
        self.session.begin_receive(now);
        let Some(cipher) = self.cipher.as_mut() else {
            self.session.receive_part(buf, events, Some(&mut sink))?;
            return Ok(buf.len());
        };
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let consumed = match cipher.decrypt_in_place(buf, &mut frames) {
            Ok(n) => n,
            Err(e) => {
                self.crypto_failed = true;
                let _ = self.session.go_away(GO_AWAY_PROTOCOL_ERROR);
                return Err(crypto(e));
            }
        };
        let mut result = Ok(consumed);
        for r in frames.drain(..) {
            if let Err(e) = self.session.receive_part(&buf[r], events, Some(&mut sink)) {
                result = Err(e.into());
                break;
            }
        }
        self.frames = frames;
        result
    }

    /// The partial ciphertext frame `receive` / `receive_preamble` kept, handed over (for a
    /// caller switching to `receive_in_place`).
    pub fn take_tail(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tail)
    }

    /// True while muxer output is held back for the preamble.
    pub fn in_preamble(&self) -> bool {
        self.in_preamble
    }

    /// Plaintext bytes that may go out now: the preamble, then the session's frames.
    pub fn plaintext_pending(&self) -> usize {
        self.preamble_out.len() + self.session_out_len()
    }

    /// Hands every plaintext byte that may go out now to `f`, in wire order (preamble, then
    /// session frames), and forgets it: for a caller that queues frames of its own (see
    /// `Session::send_with`) and seals everything with `seal_gather`.
    pub fn drain_plaintext(&mut self, f: &mut dyn FnMut(&[u8])) {
        if !self.preamble_out.is_empty() {
            f(&self.preamble_out);
            self.preamble_out.clear();
        }
        if self.session_out_len() > 0 {
            f(self.session.pending_output());
            self.session.clear_output();
        }
    }

    /// Wire bytes for `plaintext_len` bytes of plaintext sealed in one go.
    pub fn wire_len(&self, plaintext_len: usize) -> usize {
        match &self.cipher {
            Some(c) if plaintext_len > 0 => c.encrypted_len(plaintext_len),
            _ => plaintext_len,
        }
    }

    /// Seals (or, without a cipher, copies) the concatenation of `segments` into exactly
    /// `wire_len(total)` bytes of `out`; returns bytes written. A failure (nonce exhaustion)
    /// kills the connection.
    pub fn seal_gather(&mut self, segments: &[&[u8]], out: &mut [u8]) -> Result<usize, ConnError> {
        let Some(cipher) = self.cipher.as_mut() else {
            let mut pos = 0;
            for seg in segments {
                out.get_mut(pos..pos + seg.len())
                    .ok_or(ConnError::Mux(MuxError::InvalidArgument(
                        "output slice too small",
                    )))?
                    .copy_from_slice(seg);
                pos += seg.len();
            }
            return Ok(pos);
        };
        cipher.encrypt_gather_to_slice(segments, out).map_err(|e| {
            self.crypto_failed = true;
            crypto(e)
        })
    }

    fn check_preamble(&mut self) -> Result<(), ConnError> {
        if self.muxer_started {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "the muxer already started",
            )));
        }
        if self.crypto_failed {
            return Err(ConnError::Mux(MuxError::SessionClosed));
        }
        self.in_preamble = true;
        Ok(())
    }

    /// Preamble phase: queues raw plaintext (not yamux) for the peer. Muxer output is held
    /// back until `start_muxer`.
    pub fn send_preamble(&mut self, data: &[u8]) -> Result<(), ConnError> {
        self.check_preamble()?;
        self.preamble_out.extend_from_slice(data);
        Ok(())
    }

    /// Preamble phase: decrypts `data` and returns the plaintext (not fed to yamux).
    pub fn receive_preamble(&mut self, data: &[u8]) -> Result<Vec<u8>, ConnError> {
        self.check_preamble()?;
        self.decrypt(data)?;
        let out = self.plain.clone();
        self.recycle_scratch();
        Ok(out)
    }

    /// Ends the preamble: `plaintext` (already decrypted bytes received after it) goes to the
    /// yamux session.
    pub fn start_muxer(
        &mut self,
        plaintext: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.crypto_failed {
            return Err(ConnError::Mux(MuxError::SessionClosed));
        }
        self.in_preamble = false;
        self.muxer_started = true;
        Ok(self.session.receive(plaintext, now, events)?)
    }

    /// The session's plaintext that may go out now (none while the preamble runs).
    fn session_out_len(&self) -> usize {
        if self.in_preamble {
            0
        } else {
            self.session.pending_output().len()
        }
    }

    /// Exact bytes `write_output` / `write_output_to_slice` will produce now.
    pub fn output_len(&self) -> usize {
        self.wire_len(self.preamble_out.len()) + self.wire_len(self.session_out_len())
    }

    /// Appends all pending output (encrypted when there is a cipher) to `out`.
    pub fn write_output(&mut self, out: &mut Vec<u8>) -> Result<(), ConnError> {
        let n = self.output_len();
        let start = out.len();
        out.resize(start + n, 0);
        let written = self.write_output_to_slice(&mut out[start..])?;
        out.truncate(start + written);
        Ok(())
    }

    /// Writes all pending output into `out`, which must hold at least `output_len()` bytes;
    /// returns bytes written (lets a binding fill a foreign buffer without a copy).
    pub fn write_output_to_slice(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        if out.len() < self.output_len() {
            return Err(ConnError::Mux(MuxError::InvalidArgument(
                "output slice too small",
            )));
        }
        let mut pos = 0;
        if !self.preamble_out.is_empty() {
            pos += seal(self.cipher.as_mut(), &self.preamble_out, &mut out[pos..])?;
            self.preamble_out.clear();
        }
        if self.session_out_len() > 0 {
            let plain = self.session.pending_output();
            pos += seal(self.cipher.as_mut(), plain, &mut out[pos..])?;
            self.session.clear_output();
        }
        Ok(pos)
    }

    /// Convenience: all pending output as a new vector.
    pub fn take_output(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut out = Vec::with_capacity(self.output_len());
        self.write_output(&mut out)?;
        Ok(out)
    }
}

/// Copies or encrypts `plain` into the front of `out`; returns bytes written.
fn seal<T: SecureChannel>(
    cipher: Option<&mut T>,
    plain: &[u8],
    out: &mut [u8],
) -> Result<usize, ConnError> {
    match cipher {
        None => {
            out[..plain.len()].copy_from_slice(plain);
            Ok(plain.len())
        }
        Some(c) => {
            let n = c.encrypted_len(plain.len());
            c.encrypt_to_slice(plain, &mut out[..n]).map_err(crypto)
        }
    }
}
