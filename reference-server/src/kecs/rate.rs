//! The message rate limit with the document's escalation ("Rate Limiting"): a warning for
//! the first violation, temporary throttling for the second, termination for the third.

use tokio::time::{Duration, Instant};

/// Messages per second one connection may send ("Message Rate").
pub const MAX_RATE: u32 = 100;

/// How long a throttled connection has every message dropped.
pub const THROTTLE: Duration = Duration::from_secs(5);

/// How long a violation is remembered: a connection that keeps to the limit this long
/// starts again from a warning.
pub const STRIKE_MEMORY: Duration = Duration::from_secs(60);

const WINDOW: Duration = Duration::from_secs(1);

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handle it.
    Pass,
    /// Drop it silently (over the limit after the frame saying so, or throttled).
    Drop,
    /// First violation: drop it and send a warning.
    Warn,
    /// Second violation: drop it, say so, and drop everything for [`THROTTLE`].
    Throttle,
    /// Persistent violation: close the connection.
    Terminate,
}

/// A fixed one-second window counting messages, and the violations so far.
#[derive(Default)]
pub(crate) struct Limiter {
    window: Option<Instant>,
    count: u32,
    strikes: u8,
    last_strike: Option<Instant>,
    throttled_until: Option<Instant>,
}

impl Limiter {
    /// Counts one message at `now`. A violation is a window's first message over the
    /// limit; later ones in that window are dropped without another frame.
    pub fn admit(&mut self, now: Instant) -> Verdict {
        if self.window.is_none_or(|w| now.duration_since(w) >= WINDOW) {
            self.window = Some(now);
            self.count = 0;
        }
        if self
            .last_strike
            .is_some_and(|t| now.duration_since(t) >= STRIKE_MEMORY)
        {
            self.strikes = 0;
            self.last_strike = None;
        }
        self.count = self.count.saturating_add(1);
        if self.count == MAX_RATE + 1 {
            self.strikes = self.strikes.saturating_add(1);
            self.last_strike = Some(now);
            return match self.strikes {
                1 => Verdict::Warn,
                2 => {
                    self.throttled_until = Some(now + THROTTLE);
                    Verdict::Throttle
                }
                _ => Verdict::Terminate,
            };
        }
        let throttled = self.throttled_until.is_some_and(|t| now < t);
        if self.count > MAX_RATE || throttled {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(l: &mut Limiter, now: Instant, n: u32) -> Vec<Verdict> {
        let mut seen: Vec<Verdict> = (0..n).map(|_| l.admit(now)).collect();
        seen.dedup();
        seen
    }

    #[test]
    fn escalates_warning_throttle_termination() {
        use Verdict::*;
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(burst(&mut l, t0, 100), [Pass]);
        assert_eq!(burst(&mut l, t0, 3), [Warn, Drop]);
        let t1 = t0 + WINDOW;
        assert_eq!(burst(&mut l, t1, 1), [Pass], "a new window after a warning");
        assert_eq!(burst(&mut l, t1, 100), [Pass, Throttle]);
        // Throttled: everything is dropped, even within the limit.
        let t2 = t1 + WINDOW;
        assert_eq!(burst(&mut l, t2, 100), [Drop]);
        assert_eq!(burst(&mut l, t2, 1), [Terminate]);
    }

    #[test]
    fn throttling_ends_and_strikes_are_forgotten() {
        use Verdict::*;
        let mut l = Limiter::default();
        let t0 = Instant::now();
        burst(&mut l, t0, 101);
        burst(&mut l, t0 + WINDOW, 101);
        assert_eq!(burst(&mut l, t0 + WINDOW + THROTTLE, 1), [Pass]);
        let later = t0 + WINDOW + STRIKE_MEMORY;
        assert_eq!(burst(&mut l, later, 101), [Pass, Warn], "back to a warning");
    }
}
