//! A secured, multiplexed connection without IO: one `receive` per socket read decrypts every
//! complete frame and runs the muxer negotiation and the yamux session over the plaintext;
//! `flush_into` seals all pending frames in one pass. The muxer is yamux, or mplex when the
//! negotiation picks it (old peers). The cipher is optional (plaintext
//! security, tests); a private-network protector may sit under everything.

mod channel;
mod connection;
mod noise_channel;
mod outqueue;
mod tls_channel;
pub mod upgrade;

pub use channel::{NoCipher, SecureChannel, MAX_WIRE_FRAME};
pub use connection::{ConnError, Connection, DataRange, Muxer, REF_MIN, YAMUX_ID};
pub use outqueue::OutQueue;
pub use rapidp2p_mplex as mplex;
pub use rapidp2p_multistream as multistream;
pub use rapidp2p_noise as noise;
pub use rapidp2p_pnet as pnet;
pub use rapidp2p_tls as tls;
pub use rapidp2p_yamux as yamux;
pub use tls_channel::{Cipher, CipherError};
pub use upgrade::{Upgrade, UpgradeConfig, UpgradeError, UpgradeEvent};

/// A connection encrypted with the libp2p Noise transport (or plaintext when built with None).
pub type NoiseConnection = Connection<rapidp2p_noise::Transport>;
