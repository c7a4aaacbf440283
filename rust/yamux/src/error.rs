//! Errors: the peer's violations (fatal, GoAway queued) and local API misuse.

/// A rule the peer broke; the session queues GoAway(protocol error) and stops.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Header(#[from] crate::frame::HeaderError),
    #[error("SYN for stream ID 0")]
    SynStreamZero,
    #[error("SYN for stream {0} with our ID parity")]
    SynWrongParity(u32),
    #[error("SYN for stream {0} which is already open")]
    SynLiveStream(u32),
    #[error("SYN on stream {0} carries {1} bytes, over the 256 KiB initial window")]
    SynBodyTooLarge(u32, u32),
    #[error("{1} bytes of DATA on stream {0} exceed its receive window of {2}")]
    WindowExceeded(u32, u32, u32),
    #[error("window update on stream {0} overflows the send window")]
    WindowOverflow(u32),
    #[error("DATA on stream {0} after the peer's FIN")]
    DataAfterFin(u32),
}

/// Everything a session call can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer broke the protocol; GoAway(1) is queued and the session is dead.
    #[error("yamux protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// `max_streams` streams are live.
    #[error("stream limit reached ({0} streams)")]
    StreamLimit(usize),
    /// `ack_backlog` outbound streams wait for the peer's ACK; wait for EV_STREAM_ACKED.
    #[error("ack backlog full ({0} unacknowledged outbound streams); wait for an ACK")]
    AckBacklogFull(usize),
    /// GoAway was sent or received: no new streams.
    #[error("session is going away (code {0})")]
    GoAway(u32),
    /// The local side already half-closed this stream.
    #[error("stream {0} is closed for writing")]
    StreamClosed(u32),
    /// The stream was reset by either side.
    #[error("stream {0} was reset")]
    StreamReset(u32),
    /// No such stream was ever open here.
    #[error("unknown stream {0}")]
    UnknownStream(u32),
    /// The session failed (protocol error or keep-alive timeout) and takes no more work.
    #[error("session is closed")]
    SessionClosed,
    /// The previous keep-alive ping got no answer within one interval.
    #[error("keep-alive ping got no answer")]
    KeepAliveTimeout,
    /// A local argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}
