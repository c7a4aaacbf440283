//! libp2p private networks (`pnet/Private-Networks-PSK-V1.md`), sans-IO.
//!
//! A 32-byte pre-shared key (PSK), read from the `/key/swarm/psk/1.0.0/` file format
//! ([`PreSharedKey::parse`]), turns on a connection protector that runs under everything
//! else on the connection (multistream-select, the security handshake, the muxer): each side
//! first sends a random 24-byte nonce, then every byte it writes is XORed with the XSalsa20
//! keystream of (PSK, its own nonce); every byte it reads is XORed with the keystream of
//! (PSK, the remote's nonce). [`Protector`] holds both keystreams and works in place on the
//! caller's buffers; it does no IO and keeps no buffers.
//!
//! The keystream is computed four blocks at a time (`stream.rs`, SSE2 on x86_64), over
//! RustCrypto's `salsa20` for the key derivation and as the reference every test compares
//! against: the crate's one-block-at-a-time XSalsa20 ran at half the speed.

mod key;
mod protector;
mod stream;

pub use key::{KeyError, PreSharedKey, KEY_LEN};
pub use protector::{Protector, NONCE_LEN};
