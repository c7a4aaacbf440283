//! Wall-clock time from the caller (sans-IO): certificate validity is checked against the
//! Unix time the caller last set, never the system clock. rustls asks for the time through
//! its `TimeProvider`, which a [`Clock`] is; every configuration of one handshake or one QUIC
//! endpoint shares one clock, so a single `set` reaches the verifier and rustls together.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

/// Unix seconds set by the caller (cheap to clone: clones share the value).
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// A clock reading `now` (Unix seconds) until set again.
    pub fn at(now: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now)))
    }

    /// The time passes: `now` in Unix seconds.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::Relaxed);
    }

    /// The last time set, Unix seconds.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        // Before 1970 is no time rustls can hold: 0 (every libp2p certificate of ours starts
        // in 1975, so such a clock still refuses them as not yet valid).
        let secs = u64::try_from(self.now()).unwrap_or(0);
        Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
    }
}
