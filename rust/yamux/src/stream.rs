//! Per-stream state: half-close flags and both flow-control windows.

/// Receive-side accounting. Invariant: `credit + buffered + unreturned == window`, where
/// `unreturned` is consumed data whose credit has not been sent back yet.
#[derive(Debug)]
pub(crate) struct Stream {
    /// We opened it (our parity).
    pub outbound: bool,
    /// For outbound streams: the peer's ACK arrived.
    pub acked: bool,
    /// We sent FIN (or RST).
    pub write_closed: bool,
    /// The peer sent FIN.
    pub read_closed: bool,
    /// Bytes we may still send.
    pub send_window: u32,
    /// Bytes the peer may still send (credit we granted and it has not used).
    pub credit: u32,
    /// Current receive window size (grows by auto-tuning).
    pub window: u32,
    /// Bytes delivered to the application and not yet acknowledged by it.
    pub buffered: u32,
    /// When the last window update was sent (start of the auto-tuning epoch).
    pub epoch: f64,
    /// Growth the last window update wanted and `max_window_growth` held back (granted by
    /// `Session::grow_window` once the owner reserved memory for it).
    pub wanted: u32,
}

impl Stream {
    pub fn new(outbound: bool, send_window: u32, window: u32, now: f64) -> Self {
        Self {
            outbound,
            acked: !outbound,
            write_closed: false,
            read_closed: false,
            send_window,
            credit: window,
            window,
            buffered: 0,
            epoch: now,
            wanted: 0,
        }
    }

    /// Consumed bytes whose credit the peer has not been given back yet.
    pub fn unreturned(&self) -> u32 {
        self.window - self.credit - self.buffered
    }
}
