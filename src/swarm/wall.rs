//! Wall-clock times for frames without a clock read per frame: checks that compare a
//! frame's timestamp with "now" ask for millions of wall-clock times a second.

use std::time::{Duration, Instant, SystemTime};

/// How long one reading serves before the wall clock is read again (NTP may step it).
const RENEW: Duration = Duration::from_secs(1);

/// The wall clock read together with the monotonic one; the wall-clock time of a nearby
/// `Instant` is the anchor shifted by their distance.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    mono: Instant,
    wall: SystemTime,
}

impl WallClock {
    /// Reads both clocks now.
    pub fn new() -> Self {
        WallClock {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The wall-clock time at `at`; reads the clocks again when the last reading is more
    /// than a second older than `at`.
    pub fn at(&mut self, at: Instant) -> SystemTime {
        if let Some(t) = self.shifted(at) {
            return t;
        }
        *self = WallClock::new();
        self.shifted(at).unwrap_or(self.wall)
    }

    fn shifted(&self, at: Instant) -> Option<SystemTime> {
        match at.checked_duration_since(self.mono) {
            Some(d) if d < RENEW => self.wall.checked_add(d),
            Some(_) => None,
            None => (self.mono.checked_duration_since(at)).and_then(|d| self.wall.checked_sub(d)),
        }
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_instants_shift_the_reading_and_old_readings_are_renewed() {
        let mono = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut clock = WallClock { mono, wall };
        let ms = Duration::from_millis(250);
        assert_eq!(clock.at(mono + ms), wall + ms);
        // A frame read just before the reading was taken.
        assert_eq!(clock.at(mono.checked_sub(ms).unwrap()), wall - ms);
        // Past the renewal interval the made-up reading above is replaced by the real
        // clock, so the answer is near the real time, nowhere near 1970 + 11 days.
        let later = clock.at(mono + 2 * RENEW);
        let real = SystemTime::now();
        let off = real.duration_since(later).unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_secs(5), "{later:?} vs {real:?}");
        assert!(clock.mono > mono, "renewed");
    }
}
