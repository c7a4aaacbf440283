//! Session limits. mplex cannot ask a peer to slow down, so these are the only bounds.

/// Largest frame body we accept: go-mplex's and js-mplex's 1 MiB message limit.
pub const MAX_FRAME: usize = 1 << 20;
/// Largest DATA body we send: one Noise frame's plaintext (65519) minus the longest header we
/// emit for a body of this size, so one mplex frame fits one Noise frame.
pub const DEFAULT_SEND_FRAME: usize = 65519 - 16;

/// Configuration of one session. Use `Config::default()` and override fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// Live streams (both directions) at most; inbound NewStream above it is reset.
    pub max_streams: usize,
    /// Largest frame body accepted; a larger one is a protocol violation.
    pub max_frame: usize,
    /// Bytes delivered to a stream and not yet acknowledged (read by the application), at
    /// most; a frame that would pass it resets the stream.
    pub max_buffered: usize,
    /// Largest DATA body we send.
    pub send_frame: usize,
    /// Resets (refused or overflowing streams) queued since the last output drain, at most;
    /// beyond it the refusal is silent (the stream is still forgotten).
    pub max_pending_resets: usize,
    /// How many closed or reset stream keys are remembered (for error kinds).
    pub recently_closed: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_streams: 512,
            max_frame: MAX_FRAME,
            max_buffered: 4 * 1024 * 1024,
            send_frame: DEFAULT_SEND_FRAME,
            max_pending_resets: 1024,
            recently_closed: 4096,
        }
    }
}

impl Config {
    /// Checks that the values can work together; the message names the bad one.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.max_streams == 0 {
            return Err("max_streams must be positive");
        }
        if self.max_frame == 0 || self.max_frame > 16 * 1024 * 1024 {
            return Err("max_frame must be in 1..=16 MiB");
        }
        if self.send_frame == 0 || self.send_frame > MAX_FRAME {
            return Err("send_frame must be in 1..=1 MiB (what peers accept)");
        }
        if self.max_buffered == 0 {
            return Err("max_buffered must be positive");
        }
        Ok(())
    }
}
