//! The clock check's shortcut: most frames are stamped well before "now plus the allowed
//! skew", and for a stamp in the usual UTC form that shows in its first 19 bytes, which sort
//! as the times they spell. Only a stamp that does not clearly sort earlier is parsed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The whole second at or before a limit, spelled `YYYY-MM-DDTHH:MM:SS`, renewed when the
/// limit reaches the next second (so once a second while frames flow).
#[derive(Debug, Default)]
pub struct Horizon {
    secs: Option<u64>,
    text: [u8; 19],
}

impl Horizon {
    /// Whether `stamp` (RFC 3339 text) is surely no later than `limit`: true only for a stamp
    /// of the form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` whose seconds sort before the limit's
    /// whole second. False says nothing: parse the stamp then.
    pub fn surely_within(&mut self, stamp: &str, limit: SystemTime) -> bool {
        let b = stamp.as_bytes();
        let utc = b.len() >= 20
            && matches!(b[b.len() - 1], b'Z' | b'z')
            && matches!(b[19], b'.' | b'Z' | b'z')
            && spelled(&b[..19]);
        if !utc {
            return false;
        }
        let Ok(since) = limit.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let secs = since.as_secs();
        if self.secs != Some(secs) {
            let whole = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
            let whole = whole.to_string();
            // Years past 9999 spell longer: no shortcut there.
            if whole.len() != 20 {
                self.secs = None;
                return false;
            }
            self.text.copy_from_slice(&whole.as_bytes()[..19]);
            self.secs = Some(secs);
        }
        b[..19] < self.text[..]
    }
}

/// Digits where `YYYY-MM-DDTHH:MM:SS` has them, and its separators (an upper-case `T`).
fn spelled(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339_weak(s).unwrap()
    }

    #[test]
    fn ordinary_stamps_before_the_limit_are_told_without_parsing() {
        let mut h = Horizon::default();
        let limit = at("2026-11-22T10:00:01.250Z");
        assert!(h.surely_within("2026-11-22T10:00:00.999999Z", limit));
        assert!(h.surely_within("2026-11-22T09:59:59Z", limit));
        assert!(h.surely_within("2025-12-31T23:59:59.5z", limit));
        // The limit's own second, later ones, offsets and other spellings: parse them.
        assert!(!h.surely_within("2026-11-22T10:00:01.000Z", limit));
        assert!(!h.surely_within("2026-11-22T10:00:02Z", limit));
        assert!(!h.surely_within("2026-11-22T09:00:00+05:00", limit));
        assert!(!h.surely_within("2026-11-22t09:00:00Z", limit));
        assert!(!h.surely_within("2026-11-22 09:00:00Z", limit));
        assert!(!h.surely_within("2026-11-22T09:00Z", limit));
        assert!(!h.surely_within("", limit));
    }

    #[test]
    fn the_shortcut_never_passes_a_stamp_beyond_the_limit() {
        // Every stamp it passes parses (if at all) to no later than the limit, across second,
        // minute, day and year boundaries, with the horizon renewed as the limit moves.
        let mut h = Horizon::default();
        for base in [
            "2026-11-22T10:00:00Z",
            "2026-12-31T23:59:59Z",
            "2024-02-29T23:59:58Z",
        ] {
            let base = at(base);
            for step in 0..400u64 {
                let limit = base + Duration::from_millis(step * 7);
                for off_ms in (0..3000u64).step_by(37) {
                    for stamp in [
                        limit + Duration::from_millis(off_ms),
                        limit - Duration::from_millis(off_ms),
                    ] {
                        let text = humantime::format_rfc3339_micros(stamp).to_string();
                        let passed = h.surely_within(&text, limit);
                        assert!(!passed || at(&text) <= limit, "{text} passed for {limit:?}");
                        // Far enough before the limit, the shortcut does decide.
                        if stamp + Duration::from_secs(1) < limit {
                            assert!(passed, "{text} not passed for {limit:?}");
                        }
                    }
                }
            }
        }
    }
}
