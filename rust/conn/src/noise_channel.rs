//! The Noise transport (`rapidp2p-noise`) as a connection's cipher.

use std::ops::Range;

use rapidp2p_noise::{NoiseError, Transport};

use crate::channel::SecureChannel;

impl SecureChannel for Transport {
    type Error = NoiseError;

    fn encrypted_len(&self, plaintext_len: usize) -> usize {
        rapidp2p_noise::encrypted_len(plaintext_len)
    }

    fn encrypt_to_slice(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        Transport::encrypt_to_slice(self, plaintext, out)
    }

    fn encrypt(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        Transport::encrypt(self, plaintext, out)
    }

    fn decrypt(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, NoiseError> {
        Transport::decrypt(self, input, out)
    }

    fn encrypt_gather_to_slice(
        &mut self,
        segments: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        Transport::encrypt_gather_to_slice(self, segments, out)
    }

    fn decrypt_in_place(
        &mut self,
        buf: &mut [u8],
        plain: &mut Vec<Range<usize>>,
    ) -> Result<usize, NoiseError> {
        Transport::decrypt_in_place(self, buf, plain)
    }
}
