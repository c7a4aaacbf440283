//! WebTransport over HTTP/3 (draft-02, what Chromium and webtransport-go speak) for libp2p
//! (libp2p/specs `webtransport/README.md`), without IO: only what a libp2p WebTransport
//! endpoint needs of HTTP/3.
//!
//! - [`varint`]: QUIC variable-length integers (RFC 9000 16).
//! - [`qpack`]: QPACK field sections with the static table and literals (Huffman included)
//!   and no dynamic table (we advertise a capacity of 0, so a peer may not use one).
//! - [`session`]: one connection's HTTP/3 state: SETTINGS on the control streams, the peer's
//!   QPACK streams read and ignored, the extended CONNECT answered (200 on
//!   `/.well-known/libp2p-webtransport?type=noise`, 404 elsewhere), and the header of every
//!   WebTransport stream (signal 0x41 + session id) parsed off.
//! - [`cert`]: the self-signed ECDSA P-256 certificates (at most 14 days) and their
//!   `/certhash` values.
//!
//! Everything a peer sends is bounded: header blocks, frames before the CONNECT, the number
//! of sessions (one per connection) and of unidirectional streams.

pub mod cert;
pub mod qpack;
pub mod session;
pub mod varint;

pub use cert::{certhash, certhash_digest, new_certificate, Certificate, MAX_VALIDITY_SECS};
pub use session::{
    BidiOutcome, ClientSession, Limits, ServerSession, UniOutcome, WtError, CONNECT_PATH,
    WT_STREAM_SIGNAL,
};
