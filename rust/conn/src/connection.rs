//! `Connection`: optional transport cipher + yamux session, one call per socket read.

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

/// A secured (or plaintext) yamux connection.
#[derive(Debug)]
pub struct Connection<T> {
    cipher: Option<T>,
    session: Session,
    tail: Vec<u8>,
    plain: Vec<u8>,
    crypto_failed: bool,
}

impl<T: SecureChannel> Connection<T> {
    /// `cipher = None` means no encryption; `role` is Client for the dialer.
    pub fn new(cipher: Option<T>, role: Role, cfg: Config) -> Result<Self, MuxError> {
        Ok(Self {
            cipher,
            session: Session::new(role, cfg)?,
            tail: Vec::new(),
            plain: Vec::new(),
            crypto_failed: false,
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

    /// Decrypts every complete frame (keeping the partial tail, always under one frame) and
    /// runs the session over the plaintext, appending events.
    pub fn receive(
        &mut self,
        data: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.crypto_failed {
            return Ok(());
        }
        let Some(cipher) = self.cipher.as_mut() else {
            return Ok(self.session.receive(data, now, events)?);
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
            return Err(ConnError::Crypto(e.to_string()));
        }
        let r = self.session.receive(&self.plain, now, events);
        self.plain.clear();
        if self.plain.capacity() > MAX_IDLE_SCRATCH {
            self.plain = Vec::new();
        }
        Ok(r?)
    }

    /// Exact bytes `write_output` / `write_output_to_slice` will produce now.
    pub fn output_len(&self) -> usize {
        let n = self.session.pending_output().len();
        match &self.cipher {
            Some(c) if n > 0 => c.encrypted_len(n),
            _ => n,
        }
    }

    /// Appends all pending output (encrypted when there is a cipher) to `out`.
    pub fn write_output(&mut self, out: &mut Vec<u8>) -> Result<(), ConnError> {
        let plain = self.session.pending_output();
        if plain.is_empty() {
            return Ok(());
        }
        match self.cipher.as_mut() {
            None => out.extend_from_slice(plain),
            Some(c) => c
                .encrypt(plain, out)
                .map_err(|e| ConnError::Crypto(e.to_string()))?,
        }
        self.session.clear_output();
        Ok(())
    }

    /// Writes all pending output into `out`, which must hold exactly `output_len()` bytes;
    /// returns bytes written (lets a binding fill a foreign buffer without a copy).
    pub fn write_output_to_slice(&mut self, out: &mut [u8]) -> Result<usize, ConnError> {
        let plain = self.session.pending_output();
        let n =
            match self.cipher.as_mut() {
                None => {
                    let dst = out.get_mut(..plain.len()).ok_or(ConnError::Mux(
                        MuxError::InvalidArgument("output slice too small"),
                    ))?;
                    dst.copy_from_slice(plain);
                    plain.len()
                }
                Some(_) if plain.is_empty() => 0,
                Some(c) => c
                    .encrypt_to_slice(plain, out)
                    .map_err(|e| ConnError::Crypto(e.to_string()))?,
            };
        self.session.clear_output();
        Ok(n)
    }

    /// Convenience: all pending output as a new vector.
    pub fn take_output(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut out = Vec::with_capacity(self.output_len());
        self.write_output(&mut out)?;
        Ok(out)
    }
}
