//! The TLS 1.3 record layer (`rapidp2p-tls`) as a connection's cipher, and `Cipher`, the
//! cipher of a connection secured by either protocol.

use std::ops::Range;

use rapidp2p_noise::{NoiseError, Transport as NoiseTransport};
use rapidp2p_tls::{TlsError, Transport as TlsTransport};

use crate::channel::SecureChannel;

impl SecureChannel for TlsTransport {
    type Error = TlsError;

    fn encrypted_len(&self, plaintext_len: usize) -> usize {
        TlsTransport::encrypted_len(self, plaintext_len)
    }

    fn encrypt_to_slice(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, TlsError> {
        TlsTransport::encrypt_to_slice(self, plaintext, out)
    }

    fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), TlsError> {
        TlsTransport::encrypt(self, plaintext, out)
    }

    fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, TlsError> {
        TlsTransport::decrypt(self, input, out)
    }

    fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, TlsError> {
        TlsTransport::encrypt_gather_to_slice(self, segments, out)
    }

    fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, TlsError> {
        TlsTransport::decrypt_in_place(self, buf, plain)
    }

    fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), TlsError> {
        TlsTransport::close_notify(self, out)
    }

    fn peer_closed(&self) -> bool {
        TlsTransport::peer_closed(self)
    }
}

/// The transport cipher of a connection secured with Noise or TLS.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per connection, never moved on the data path
pub enum Cipher {
    Noise(NoiseTransport),
    Tls(TlsTransport),
}

/// A failure of either cipher.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error(transparent)]
    Noise(#[from] NoiseError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Cipher::Noise($c) => $e.map_err(CipherError::from),
            Cipher::Tls($c) => $e.map_err(CipherError::from),
        }
    };
}

impl SecureChannel for Cipher {
    type Error = CipherError;

    fn encrypted_len(&self, plaintext_len: usize) -> usize {
        match self {
            Cipher::Noise(c) => SecureChannel::encrypted_len(c, plaintext_len),
            Cipher::Tls(c) => SecureChannel::encrypted_len(c, plaintext_len),
        }
    }

    fn encrypt_to_slice(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Self::Error> {
        each!(self, c => SecureChannel::encrypt_to_slice(c, plaintext, out))
    }

    fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Self::Error> {
        each!(self, c => SecureChannel::encrypt(c, plaintext, out))
    }

    fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Self::Error> {
        each!(self, c => SecureChannel::decrypt(c, input, out))
    }

    fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, Self::Error> {
        each!(self, c => SecureChannel::encrypt_gather_to_slice(c, segments, out))
    }

    fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, Self::Error> {
        each!(self, c => SecureChannel::decrypt_in_place(c, buf, plain))
    }

    fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), Self::Error> {
        each!(self, c => SecureChannel::close_notify(c, out))
    }

    fn peer_closed(&self) -> bool {
        match self {
            Cipher::Noise(c) => SecureChannel::peer_closed(c),
            Cipher::Tls(c) => SecureChannel::peer_closed(c),
        }
    }
}
