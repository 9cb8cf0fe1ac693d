//! Protocol violations seen on the wire: counted by (direction, kind, keyword, pointer), with
//! the first few samples of each kept for the report. Recording happens only for a frame that
//! failed its check, so allocating here costs nothing on the clean path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::protocol::{Direction, Violation};

/// Samples kept per (direction, kind, keyword, pointer).
pub const SAMPLES_PER_KEY: usize = 5;
/// A sample's frame text is cut to this many bytes.
pub const SAMPLE_FRAME_BYTES: usize = 1024;

/// What a violation is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViolationKey {
    /// Direction of the frame.
    pub dir: Direction,
    /// Its kind.
    pub kind: String,
    /// The failing keyword.
    pub keyword: String,
    /// Where in the frame.
    pub pointer: String,
}

/// One offending frame, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationSample {
    /// The frame's text, cut to [`SAMPLE_FRAME_BYTES`].
    pub frame: String,
    /// What the schema said.
    pub message: String,
    /// Seconds since the start of the run.
    pub t: f64,
    /// The VU that saw it.
    pub vu: u64,
}

/// Violations and checking volume since the last take (per worker) or in all (aggregate).
#[derive(Debug, Default, Clone)]
pub struct ViolationTally {
    /// Frames checked (both directions).
    pub checked: u64,
    /// Frames with at least one violation.
    pub bad_frames: u64,
    /// Count and first samples per key.
    pub by_key: BTreeMap<ViolationKey, (u64, Vec<ViolationSample>)>,
}

impl ViolationTally {
    /// All violations.
    pub fn total(&self) -> u64 {
        self.by_key.values().map(|(n, _)| n).sum()
    }

    /// Records one failed frame's violations.
    pub fn record(&mut self, found: &[Violation], frame: &str, t: f64, vu: u64) {
        self.bad_frames += 1;
        for v in found {
            let key = ViolationKey {
                dir: v.dir,
                kind: v.kind.clone(),
                keyword: v.keyword.clone(),
                pointer: v.pointer.clone(),
            };
            let (n, samples) = self.by_key.entry(key).or_default();
            *n += 1;
            if samples.len() < SAMPLES_PER_KEY {
                samples.push(ViolationSample {
                    frame: cut(frame, SAMPLE_FRAME_BYTES),
                    message: v.message.clone(),
                    t,
                    vu,
                });
            }
        }
    }

    /// Adds `other` in, keeping the earliest samples up to the limit.
    pub fn merge(&mut self, other: ViolationTally) {
        self.checked += other.checked;
        self.bad_frames += other.bad_frames;
        for (key, (n, samples)) in other.by_key {
            let (total, kept) = self.by_key.entry(key).or_default();
            *total += n;
            let room = SAMPLES_PER_KEY.saturating_sub(kept.len());
            kept.extend(samples.into_iter().take(room));
        }
    }

    /// Whether nothing was checked or found.
    pub fn is_empty(&self) -> bool {
        self.checked == 0 && self.by_key.is_empty()
    }
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(kind: &str, keyword: &str) -> Violation {
        Violation {
            dir: Direction::In,
            kind: kind.into(),
            keyword: keyword.into(),
            pointer: "/x".into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn counts_by_key_and_keeps_the_first_samples() {
        let mut a = ViolationTally::default();
        for i in 0..7 {
            a.record(
                &[v("pong", "type"), v("pong", "required")],
                &format!("f{i}"),
                i as f64,
                1,
            );
        }
        assert_eq!(a.total(), 14);
        assert_eq!(a.bad_frames, 7);
        let (n, samples) = &a.by_key.values().next().unwrap();
        assert_eq!(*n, 7);
        assert_eq!(samples.len(), SAMPLES_PER_KEY);
        assert_eq!(samples[0].frame, "f0");
        let mut b = ViolationTally::default();
        b.record(&[v("event", "enum")], "g", 9.0, 2);
        a.merge(b);
        assert_eq!(a.total(), 15);
        assert_eq!(a.by_key.len(), 3);
    }

    #[test]
    fn long_frames_are_cut_on_a_char_boundary() {
        let s = "é".repeat(600);
        let c = cut(&s, SAMPLE_FRAME_BYTES);
        assert!(c.len() <= SAMPLE_FRAME_BYTES + "…".len());
        assert!(c.ends_with('…'));
    }
}
