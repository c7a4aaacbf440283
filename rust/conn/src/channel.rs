//! The transport-cipher interface a `Connection` needs (implemented by the Noise transport).

use std::ops::Range;

/// No wire frame of any cipher is longer: a Noise frame (2-byte length + 65535) is the
/// largest; a TLS record is at most 5 + 2^14 + 256 bytes.
pub const MAX_WIRE_FRAME: usize = 2 + 65535;

/// A framed, authenticated cipher pair: `encrypt` appends whole wire frames, `decrypt`
/// consumes every complete frame at the start of its input.
pub trait SecureChannel {
    type Error: std::fmt::Display;

    /// Exact wire bytes `encrypt` produces for `plaintext_len` bytes.
    fn encrypted_len(&self, plaintext_len: usize) -> usize;

    /// Encrypts into exactly `encrypted_len(plaintext.len())` bytes of `out`; returns bytes
    /// written.
    fn encrypt_to_slice(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Self::Error>;

    /// Encrypts, appending whole frames to `out`.
    fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Self::Error>;

    /// Decrypts every complete frame of `input` into `out`; returns input bytes consumed.
    /// The partial tail left over is always shorter than one wire frame.
    fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Self::Error>;

    /// Encrypts the concatenation of `segments` into exactly `encrypted_len(total)` bytes of
    /// `out` (one pass, no staging copy); returns bytes written.
    fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, Self::Error>;

    /// Decrypts every complete frame of `buf` in place, appending the range of each frame's
    /// plaintext to `plain`; returns the bytes of complete frames.
    fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, Self::Error>;

    /// Appends the message that ends our direction of the channel (TLS close_notify) to
    /// `out`; nothing for a cipher without one (Noise). Nothing may be sealed afterwards.
    fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), Self::Error> {
        let _ = out;
        Ok(())
    }

    /// True once the peer ended its direction (a TLS close_notify arrived): an end of
    /// stream, not an error.
    fn peer_closed(&self) -> bool {
        false
    }
}

/// A cipher that cannot exist: `Connection<NoCipher>` is a plaintext-only connection.
#[derive(Debug)]
pub enum NoCipher {}

impl SecureChannel for NoCipher {
    type Error = std::convert::Infallible;

    fn encrypted_len(&self, _: usize) -> usize {
        match *self {}
    }

    fn encrypt_to_slice(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, Self::Error> {
        match *self {}
    }

    fn encrypt(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<(), Self::Error> {
        match *self {}
    }

    fn decrypt(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<usize, Self::Error> {
        match *self {}
    }

    fn encrypt_gather_to_slice(&mut self, _: &[&[u8]], _: &mut [u8]) -> Result<usize, Self::Error> {
        match *self {}
    }

    fn decrypt_in_place(
        &mut self,
        _: &mut [u8],
        _: &mut Vec<Range<usize>>,
    ) -> Result<usize, Self::Error> {
        match *self {}
    }
}
