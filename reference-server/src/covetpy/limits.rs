//! The documented rate limits ("Rate Limiting") as fixed windows per connection, and the
//! `rate_limit` object a refused request carries.

use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::{Duration, Instant};

use super::wire::RateLimit;
use crate::clock::format_micros;

/// "Messages per connection: 100 per minute".
pub const MESSAGES_PER_MINUTE: u32 = 100;
/// "RPC calls: 50 per minute".
pub const RPC_CALLS_PER_MINUTE: u32 = 50;
/// "File uploads: 10 per hour".
pub const UPLOADS_PER_HOUR: u32 = 10;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// A fixed window: `limit` requests per `period`, starting at the first request after the
/// previous window ended (so `reset` is exact and tests can step over it).
pub struct Window {
    limit: u32,
    period: Duration,
    start: Option<Instant>,
    count: u32,
}

impl Window {
    pub fn new(limit: u32, period: Duration) -> Self {
        Window {
            limit,
            period,
            start: None,
            count: 0,
        }
    }

    /// Counts a request at `now`; `Err` with the `rate_limit` object when it is over.
    pub fn admit(&mut self, now: Instant) -> Result<(), RateLimit> {
        let start = match self.start {
            Some(start) if now.duration_since(start) < self.period => start,
            _ => {
                self.count = 0;
                *self.start.insert(now)
            }
        };
        self.count = self.count.saturating_add(1);
        if self.count <= self.limit {
            return Ok(());
        }
        Err(RateLimit {
            limit: self.limit,
            remaining: 0,
            reset: wall(start + self.period, now),
        })
    }
}

/// The three windows of one connection; absent when `--no-limit rate`.
pub struct Rates {
    pub messages: Window,
    pub rpc: Window,
    pub uploads: Window,
}

impl Rates {
    pub fn new() -> Self {
        Rates {
            messages: Window::new(MESSAGES_PER_MINUTE, MINUTE),
            rpc: Window::new(RPC_CALLS_PER_MINUTE, MINUTE),
            uploads: Window::new(UPLOADS_PER_HOUR, HOUR),
        }
    }
}

/// The wall-clock RFC 3339 time of `at`, given that `now` is the current instant.
pub fn wall(at: Instant, now: Instant) -> String {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64;
    format_micros(wall_micros(at, now, now_us))
}

/// Microseconds since the epoch of `at`, given `now` is `now_us` on the wall clock.
pub fn wall_micros(at: Instant, now: Instant, now_us: i64) -> i64 {
    if at >= now {
        now_us + at.duration_since(now).as_micros() as i64
    } else {
        now_us - now.duration_since(at).as_micros() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_counts_and_resets() {
        let t0 = Instant::now();
        let mut w = Window::new(2, MINUTE);
        assert!(w.admit(t0).is_ok());
        assert!(w.admit(t0 + Duration::from_secs(1)).is_ok());
        let over = w.admit(t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!((over.limit, over.remaining), (2, 0));
        assert!(over.reset.ends_with('Z'));
        assert!(w.admit(t0 + MINUTE).is_ok(), "a new window");
    }

    #[test]
    fn wall_offsets() {
        let now = Instant::now();
        let later = now + Duration::from_millis(1500);
        assert_eq!(wall_micros(later, now, 1_000_000), 2_500_000);
        assert_eq!(wall_micros(now, later, 2_500_000), 1_000_000);
    }
}
