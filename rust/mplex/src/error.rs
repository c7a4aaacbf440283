//! Errors: the peer's violations (fatal to the session) and local API misuse.

use rapidp2p_wire::varint::VarintError;

/// A rule the peer broke; the session stops (mplex has no GoAway: the caller closes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("bad frame header varint: {0}")]
    Header(VarintError),
    #[error("bad frame length varint: {0}")]
    Length(VarintError),
    #[error("unknown frame flag 7 on stream {0}")]
    BadFlag(u64),
    #[error("frame of {0} bytes on stream {1} exceeds the {2}-byte limit")]
    FrameTooLarge(u64, u64, usize),
    #[error("stream id {0} is beyond what this session numbers")]
    StreamIdTooLarge(u64),
    #[error("NewStream for stream {0}, which is already open")]
    DuplicateStream(u64),
}

/// Everything a session call can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer broke the protocol; the session is dead.
    #[error("mplex protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// `max_streams` streams are live (or the stream ids are exhausted).
    #[error("stream limit reached ({0} streams)")]
    StreamLimit(usize),
    /// `go_away` was called: no new streams.
    #[error("session is going away")]
    GoingAway,
    /// The local side already closed this stream for writing.
    #[error("stream {0} is closed for writing")]
    StreamClosed(u32),
    /// The stream was reset by either side.
    #[error("stream {0} was reset")]
    StreamReset(u32),
    /// No such stream was ever open here.
    #[error("unknown stream {0}")]
    UnknownStream(u32),
    /// The session failed and takes no more work.
    #[error("session is closed")]
    SessionClosed,
    /// mplex has no such thing (ping, keep-alive).
    #[error("mplex does not support {0}")]
    Unsupported(&'static str),
    /// A local argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}
