//! A secured, multiplexed connection without IO: one `receive` per socket read decrypts every
//! complete frame and runs the yamux session over the plaintext; `write_output` encrypts all
//! pending frames in one pass. The cipher is optional (plaintext security, tests).

mod channel;
mod connection;
mod noise_channel;
mod tls_channel;

pub use channel::{NoCipher, SecureChannel};
pub use connection::{ConnError, Connection, DataRange};
pub use rapidp2p_noise as noise;
pub use rapidp2p_tls as tls;
pub use rapidp2p_yamux as yamux;
pub use tls_channel::{Cipher, CipherError};

/// A connection encrypted with the libp2p Noise transport (or plaintext when built with None).
pub type NoiseConnection = Connection<rapidp2p_noise::Transport>;
