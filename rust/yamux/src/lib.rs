//! Sans-IO yamux (libp2p `/yamux/1.0.0`): a session that turns plaintext bytes into stream
//! events and local calls into frames. No sockets, no clock: time is passed in as `now`.

mod closed;
pub mod config;
pub mod error;
pub mod event;
pub mod frame;
mod session;
mod stream;

pub use closed::Ended;
pub use config::{Config, DEFAULT_MAX_FRAME_SIZE};
pub use error::{Error, ProtocolError};
pub use event::Event;
pub use frame::{FrameType, Header, HeaderError};
pub use session::{DataSink, Role, Session};
