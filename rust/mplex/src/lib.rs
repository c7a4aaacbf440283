//! Sans-IO mplex (libp2p `/mplex/6.7.0`), kept for peers that speak no yamux (py-libp2p's
//! demos, older js-libp2p and go-libp2p nodes). Bytes in, events out, frames appended to an
//! output buffer; no sockets and no clock (mplex has no timers).
//!
//! mplex has no flow control, so this session bounds what a peer can make us hold: frames
//! larger than [`Config::max_frame`] kill the session, inbound streams above
//! [`Config::max_streams`] are reset, and a stream whose unread bytes would pass
//! [`Config::max_buffered`] is reset (the spec's "resetting the offending stream").
//!
//! Stream keys: mplex numbers each side's streams independently (the frame's flag tells
//! whose stream it is), so the session names streams with one `u32` key: `2 * id + 1` for
//! streams we opened, `2 * id + 2` for the peer's. Keys are never 0.

pub mod config;
pub mod error;
pub mod event;
pub mod frame;
mod session;

pub use config::Config;
pub use error::{Error, ProtocolError};
pub use event::Event;
pub use frame::{Flag, FrameHeader, MAX_HEADER_LEN};
pub use session::{DataSink, Session};

/// The protocol id negotiated with multistream-select.
pub const PROTOCOL_ID: &str = "/mplex/6.7.0";
