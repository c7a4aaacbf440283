//! The TLS 1.3 record layer after the handshake, shaped like the Noise transport so the
//! connection crate seals and opens either one: sizes are exact (a record per 16 KiB of
//! plaintext, 22 bytes of overhead each) and only whole records are consumed, so a caller's
//! receive buffer never holds a partial record across a call inside rustls.
//!
//! rustls stays in charge of the records (key updates, post-handshake messages, alerts); its
//! own output outside our writes (a key update answer) goes out before the next records.

use std::io::{IoSlice, Write};
use std::ops::Range;

use rustls::Connection;

use crate::error::TlsError;
use crate::session::read_plaintext;
use crate::verifier::from_rustls;

/// Plaintext bytes per record rustls writes.
pub const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;
/// Wire bytes a record adds: 5-byte header, inner content type, 16-byte AEAD tag.
pub const RECORD_OVERHEAD: usize = 5 + 1 + 16;
/// Largest record body TLS 1.3 allows (RFC 8446 5.2: 2^14 + 256).
const MAX_RECORD_BODY: usize = MAX_RECORD_PLAINTEXT + 256;
/// Scratch buffers above this are released after use.
const MAX_IDLE_SCRATCH: usize = 4 * 1024 * 1024;

/// A finished TLS session as a connection cipher.
pub struct Transport {
    conn: Connection,
    /// TLS bytes rustls produced on its own (a KeyUpdate answer), sent before our next records.
    pending_out: Vec<u8>,
    scratch: Vec<u8>,
    peer_closed: bool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

/// Bytes of the complete records at the start of `input`; refuses what is not a TLS record.
fn complete_records(input: &[u8]) -> Result<usize, TlsError> {
    let mut pos = 0;
    while let Some(header) = input.get(pos..pos + 5) {
        let kind = header[0];
        if !(20..=23).contains(&kind) || header[1] != 3 {
            return Err(TlsError::Record(format!(
                "not a TLS record (type {kind}, version {:#04x}{:02x})",
                header[1], header[2]
            )));
        }
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        if len > MAX_RECORD_BODY {
            return Err(TlsError::Record(format!("record of {len} bytes")));
        }
        if input.len() < pos + 5 + len {
            break;
        }
        pos += 5 + len;
    }
    Ok(pos)
}

fn records_len(plaintext_len: usize) -> usize {
    plaintext_len + plaintext_len.div_ceil(MAX_RECORD_PLAINTEXT) * RECORD_OVERHEAD
}

impl Transport {
    pub(crate) fn new(mut conn: Connection) -> Self {
        conn.set_buffer_limit(None);
        let mut t = Self {
            conn,
            pending_out: Vec::new(),
            scratch: Vec::new(),
            peer_closed: false,
        };
        t.collect_output();
        t
    }

    /// True once the peer sent close_notify (later records are ignored).
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Ends our direction: appends the bytes rustls queued by itself, then a close_notify
    /// alert, to `out`. Nothing may be sealed afterwards (the peer ignores it).
    pub fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), TlsError> {
        out.append(&mut self.pending_out);
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            self.conn
                .write_tls(out)
                .map_err(|e| TlsError::Local(e.to_string()))?;
        }
        Ok(())
    }

    /// Sends a TLS KeyUpdate (asking the peer to update too) before the next records: new
    /// traffic keys both ways, as rustls does by itself near the AEAD limits.
    pub fn update_keys(&mut self) -> Result<(), TlsError> {
        self.conn
            .refresh_traffic_keys()
            .map_err(|e| TlsError::Local(e.to_string()))?;
        self.collect_output();
        Ok(())
    }

    /// Moves TLS bytes rustls queued by itself into `pending_out`.
    fn collect_output(&mut self) {
        // rustls holds the answer to a KeyUpdate until the next write: an empty write makes
        // it queue it now, so its size is known before the next seal.
        let _ = self.conn.writer().write(&[]);
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.pending_out).is_err() {
                break;
            }
        }
    }

    /// Exact wire bytes the next seal of `plaintext_len` bytes produces.
    pub fn encrypted_len(&self, plaintext_len: usize) -> usize {
        self.pending_out.len() + records_len(plaintext_len)
    }

    /// Seals the concatenation of `segments` into exactly `encrypted_len(total)` bytes of
    /// `out`; returns bytes written.
    pub fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, TlsError> {
        let total: usize = segments.iter().map(|s| s.len()).sum();
        let expected = self.encrypted_len(total);
        if out.len() < expected {
            return Err(TlsError::Local("output slice too small".into()));
        }
        let mut pos = self.pending_out.len();
        out[..pos].copy_from_slice(&self.pending_out);
        self.pending_out.clear();
        if total > 0 {
            let slices: Vec<IoSlice<'_>> = segments
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| IoSlice::new(s))
                .collect();
            let taken = self
                .conn
                .writer()
                .write_vectored(&slices)
                .map_err(|e| TlsError::Record(e.to_string()))?;
            if taken != total {
                return Err(TlsError::Local(format!(
                    "rustls took {taken} of {total} bytes"
                )));
            }
        }
        let mut rest = &mut out[pos..expected];
        while self.conn.wants_write() && !rest.is_empty() {
            let before = rest.len();
            self.conn
                .write_tls(&mut rest)
                .map_err(|e| TlsError::Record(e.to_string()))?;
            pos += before - rest.len();
        }
        if pos != expected || self.conn.wants_write() {
            return Err(TlsError::Local(format!(
                "sealed {pos} bytes where {expected} were expected"
            )));
        }
        Ok(pos)
    }

    /// Seals `plaintext` into `out` (see `encrypt_gather_to_slice`).
    pub fn encrypt_to_slice(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TlsError> {
        self.encrypt_gather_to_slice(&[plaintext], out)
    }

    /// Seals `plaintext`, appending the records to `out`.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), TlsError> {
        let start = out.len();
        out.resize(start + self.encrypted_len(plaintext.len()), 0);
        let n = self.encrypt_to_slice(plaintext, &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    }

    /// Opens every complete record at the start of `input`, appending the plaintext to `out`;
    /// returns the bytes consumed (the partial record left is shorter than one record).
    pub fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, TlsError> {
        let whole = complete_records(input)?;
        if self.peer_closed {
            return Ok(whole);
        }
        let mut rd = &input[..whole];
        while !rd.is_empty() {
            let n = self
                .conn
                .read_tls(&mut rd)
                .map_err(|e| TlsError::Record(e.to_string()))?;
            let state = match self.conn.process_new_packets() {
                Ok(s) => s,
                Err(e) => {
                    self.collect_output();
                    return Err(match from_rustls(&e) {
                        TlsError::Handshake(m) => TlsError::Record(m),
                        other => other,
                    });
                }
            };
            if state.plaintext_bytes_to_read() > 0 {
                read_plaintext(&mut self.conn, out)?;
            }
            if state.peer_has_closed() {
                self.peer_closed = true;
                break;
            }
            if n == 0 {
                break;
            }
        }
        self.collect_output();
        Ok(whole)
    }

    /// Opens every complete record of `buf`, writing the plaintext to the front of `buf`
    /// (always shorter than the records) and its range to `plain`; returns bytes consumed.
    pub fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, TlsError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = self.decrypt(buf, &mut scratch);
        if let Ok(consumed) = result {
            debug_assert!(scratch.len() <= consumed);
            if !scratch.is_empty() {
                buf[..scratch.len()].copy_from_slice(&scratch);
                plain.push(0..scratch.len());
            }
        }
        if scratch.capacity() > MAX_IDLE_SCRATCH {
            scratch = Vec::new();
        }
        self.scratch = scratch;
        result
    }
}
