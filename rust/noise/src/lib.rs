//! Sans-IO `Noise_XX_25519_ChaChaPoly_SHA256`, the way libp2p's `/noise` security protocol
//! runs it (libp2p/specs `noise/README.md`; Noise framework revision 34).
//!
//! - [`Handshake`] drives the three XX messages. Bodies go in and out without the 2-byte
//!   length prefix; the caller frames them and builds the libp2p `NoiseHandshakePayload`.
//! - [`Transport`] is the cipher pair after `Split()`, plus libp2p's transport framing
//!   (`[u16 BE length][ciphertext || tag]`, plaintext split at 65519 bytes).
//!
//! Why a hand-written state machine instead of `snow`: XX is three fixed messages, so the whole
//! state machine is a few hundred lines that we can audit, and it lets every primitive come
//! from `ring` (assembly ChaCha20-Poly1305, HMAC-SHA256, SHA-256) with `x25519-dalek` for DH.
//! It also lets the transport seal and open in place in the caller's output buffer, so bulk
//! data is copied once; `snow` would add its own buffers and a resolver layer we don't need.
//!
//! No sockets, no clock, no panics on peer input: every failure is a [`NoiseError`], a failed
//! handshake stays failed, and a transport nonce only advances after a successful AEAD call.

mod cipher;
mod error;
mod handshake;
mod symmetric;
mod transport;

pub use cipher::{aead, TAG_LEN};
pub use error::NoiseError;
pub use handshake::{generate_static_secret, public_key_of, Handshake, DHLEN};
pub use symmetric::{HASHLEN, PROTOCOL_NAME};
pub use transport::{
    encrypted_len, frame_count, scan_frames, Transport, FRAME_OVERHEAD, LEN_PREFIX,
    MAX_FRAME_PLAINTEXT,
};

/// The Noise limit on one message (handshake or transport), in bytes.
pub const MAX_MESSAGE_LEN: usize = 65535;
