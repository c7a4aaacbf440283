//! Session limits and tuning knobs, with rust-yamux's defaults.

use crate::frame::DEFAULT_WINDOW;

/// Largest DATA body we emit: 65519 (Noise's largest plaintext) minus the 12-byte header, so a
/// bulk transfer on one stream maps one yamux frame onto exactly one Noise frame and the peer
/// parses one header per 64 KiB; fewer headers than rust-yamux's 16 KiB split with no extra
/// buffering on any receiver (they all accept bodies up to the stream window).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 65519 - crate::frame::HEADER_LEN;

/// Configuration of one session. Use `Config::default()` and override fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// Live streams (both directions) at most; inbound SYNs above it are answered with RST.
    pub max_streams: usize,
    /// Receive window granted to every new stream (at least 256 KiB, the spec's default).
    pub initial_window: u32,
    /// Auto-tuning doubles a stream's receive window up to this.
    pub max_window: u32,
    /// Outbound streams whose SYN the peer has not acknowledged, at most.
    pub ack_backlog: usize,
    /// Seconds between keep-alive pings; `None` disables them.
    pub keepalive_interval: Option<f64>,
    /// Largest DATA body we send.
    pub max_frame_size: usize,
    /// Pong replies queued since the last output drain, at most (ping floods are dropped).
    pub max_pending_pongs: usize,
    /// RSTs answering refused SYNs queued since the last drain, at most.
    pub max_pending_refusals: usize,
    /// How many closed or reset stream IDs are remembered (for error kinds and for ignoring
    /// late frames).
    pub recently_closed: usize,
    /// Sum of all streams' window growth beyond `initial_window`, at most: auto-tuning grows
    /// no window past it (the owner raises it as it reserves memory for the growth).
    pub max_window_growth: u64,
    /// Smallest round-trip time auto-tuning assumes (seconds). A ping on an idle connection
    /// measures the wire RTT (tens of microseconds on loopback), but under load the time to
    /// consume half a window is dominated by processing and scheduling delays, so judging
    /// against the idle RTT would keep a fast stream stuck at its initial window.
    pub min_autotune_rtt: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_streams: 512,
            initial_window: DEFAULT_WINDOW,
            max_window: 16 * 1024 * 1024,
            ack_backlog: 256,
            keepalive_interval: Some(10.0),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_pending_pongs: 16,
            max_pending_refusals: 1024,
            recently_closed: 4096,
            max_window_growth: 1 << 30,
            min_autotune_rtt: 0.01,
        }
    }
}

impl Config {
    /// Checks that the values can work together; the message names the bad one.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.initial_window < DEFAULT_WINDOW {
            return Err("initial_window must be at least 262144 (the yamux default)");
        }
        if self.max_window < self.initial_window {
            return Err("max_window must be at least initial_window");
        }
        if self.max_streams == 0 {
            return Err("max_streams must be positive");
        }
        if self.ack_backlog == 0 {
            return Err("ack_backlog must be positive");
        }
        if self.max_frame_size == 0 || self.max_frame_size > 16 * 1024 * 1024 {
            return Err("max_frame_size must be in 1..=16 MiB");
        }
        if !(self.min_autotune_rtt.is_finite() && self.min_autotune_rtt >= 0.0) {
            return Err("min_autotune_rtt must be a non-negative number of seconds");
        }
        if let Some(i) = self.keepalive_interval {
            if !(i.is_finite() && i > 0.0) {
                return Err("keepalive_interval must be a positive number of seconds");
            }
        }
        Ok(())
    }
}
