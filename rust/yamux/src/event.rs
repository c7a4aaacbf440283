//! What `Session::receive` reports to the application.

/// One happening on the session; DATA and WINDOW are coalesced per stream per receive call.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The peer opened a stream (already ACKed by us).
    StreamOpened(u32),
    /// Bytes for a stream, in order; call `ack` when the application consumed them.
    Data(u32, Vec<u8>),
    /// The peer half-closed the stream: no more data after this.
    Fin(u32),
    /// The peer reset the stream; it is gone.
    Reset(u32),
    /// The send window of a stream grew; the value is the window now.
    Window(u32, u32),
    /// The peer acknowledged a stream we opened.
    StreamAcked(u32),
    /// A ping we sent came back after this many seconds.
    PingRtt(f64),
    /// The peer sent GoAway with this code.
    GoAway(u32),
}
