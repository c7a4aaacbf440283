//! What `Session::receive_part` reports to the application.

/// One happening on the session; DATA is coalesced per stream per receive call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer opened a stream (key `2 * id + 2`).
    StreamOpened(u32),
    /// Bytes for a stream, in order; call `ack` when the application consumed them.
    Data(u32, Vec<u8>),
    /// The peer closed its writing side: no more data after this.
    Fin(u32),
    /// The stream is gone: the peer reset it, or we reset it because its unread bytes passed
    /// `max_buffered` or it broke the stream's rules.
    Reset(u32),
}
