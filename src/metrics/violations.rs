//! Protocol violations seen on the wire: counted by (direction, kind, keyword, pointer,
//! whose rule), with
//! the first few samples of each kept for the report. Recording happens only for a frame that
//! failed its check, so allocating here costs nothing on the clean path.
//!
//! Kinds and pointers come from the target, so everything kept is bounded: at most
//! [`MAX_GROUPS`] groups (later new ones are folded into one count), names and texts cut.

use std::collections::BTreeMap;

use super::kinds::MAX_NAME_BYTES;
use crate::protocol::{Direction, RuleSource, Violation};
use crate::results::{ViolationGroup, ViolationSample, Violations};

/// Samples kept per (direction, kind, keyword, pointer).
pub const SAMPLES_PER_KEY: usize = 5;
/// A sample's frame text is cut to this many bytes.
pub const SAMPLE_FRAME_BYTES: usize = 1024;
/// A sample's message is cut to this many bytes (schema messages quote the bad value).
pub const SAMPLE_MESSAGE_BYTES: usize = 512;
/// Most distinct groups kept; violations of any further group only count in
/// [`ViolationTally::folded`]. A target that puts a new kind in every frame would otherwise
/// make a group per frame.
pub const MAX_GROUPS: usize = 128;
/// A group's JSON pointer is cut to this many bytes.
pub const POINTER_BYTES: usize = 256;

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
    /// Whose rule it broke.
    pub source: RuleSource,
}

/// Violations and checking volume since the last take (per worker) or in all (aggregate).
#[derive(Debug, Default, Clone)]
pub struct ViolationTally {
    /// Frames checked (both directions).
    pub checked: u64,
    /// Frames with at least one violation.
    pub bad_frames: u64,
    /// Count and first samples per key, at most [`MAX_GROUPS`] keys.
    pub by_key: BTreeMap<ViolationKey, (u64, Vec<ViolationSample>)>,
    /// Violations whose group was new when [`MAX_GROUPS`] were already kept.
    pub folded: u64,
}

impl ViolationTally {
    /// All violations, folded ones included.
    pub fn total(&self) -> u64 {
        let grouped = self
            .by_key
            .values()
            .fold(0u64, |a, (n, _)| a.saturating_add(*n));
        grouped.saturating_add(self.folded)
    }

    /// Records one failed frame's violations.
    pub fn record(&mut self, found: &[Violation], frame: &str, t: f64, vu: u64) {
        self.bad_frames += 1;
        for v in found {
            let key = ViolationKey {
                dir: v.dir,
                kind: cut(&v.kind, MAX_NAME_BYTES),
                keyword: cut(&v.keyword, MAX_NAME_BYTES),
                pointer: cut(&v.pointer, POINTER_BYTES),
                source: v.source,
            };
            let Some((n, samples)) = self.group(key, 1) else {
                continue;
            };
            *n += 1;
            if samples.len() < SAMPLES_PER_KEY {
                samples.push(ViolationSample {
                    frame: cut(frame, SAMPLE_FRAME_BYTES),
                    message: cut(&v.message, SAMPLE_MESSAGE_BYTES),
                    t,
                    vu,
                });
            }
        }
    }

    /// The group of `key`, made when there is room; `None` (and `n` violations folded)
    /// when [`MAX_GROUPS`] groups are kept already.
    fn group(&mut self, key: ViolationKey, n: u64) -> Option<&mut (u64, Vec<ViolationSample>)> {
        if self.by_key.len() >= MAX_GROUPS && !self.by_key.contains_key(&key) {
            self.folded = self.folded.saturating_add(n);
            return None;
        }
        Some(self.by_key.entry(key).or_default())
    }

    /// Adds `other` in, keeping the earliest samples up to the limit.
    pub fn merge(&mut self, other: ViolationTally) {
        self.checked += other.checked;
        self.bad_frames += other.bad_frames;
        self.folded = self.folded.saturating_add(other.folded);
        for (key, (n, samples)) in other.by_key {
            let Some((total, kept)) = self.group(key, n) else {
                continue;
            };
            *total = total.saturating_add(n);
            let room = SAMPLES_PER_KEY.saturating_sub(kept.len());
            kept.extend(samples.into_iter().take(room));
        }
    }

    /// Whether nothing was checked or found.
    pub fn is_empty(&self) -> bool {
        self.checked == 0 && self.by_key.is_empty() && self.folded == 0
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

impl Violations {
    /// The results view of a tally.
    pub fn from_tally(t: &ViolationTally) -> Violations {
        let mut groups: Vec<ViolationGroup> = t
            .by_key
            .iter()
            .map(|(k, (count, samples))| ViolationGroup {
                dir: k.dir,
                kind: k.kind.clone(),
                keyword: k.keyword.clone(),
                pointer: k.pointer.clone(),
                source: k.source,
                count: *count,
                samples: samples.clone(),
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        Violations {
            checked: t.checked,
            frames: t.bad_frames,
            total: t.total(),
            groups,
            folded: t.folded,
        }
    }
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
            source: crate::protocol::RuleSource::Document,
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
    fn groups_are_capped_and_the_rest_folded() {
        let mut a = ViolationTally::default();
        for i in 0..(MAX_GROUPS + 10) {
            a.record(&[v(&format!("k{i}"), "unknown_kind")], "f", 0.0, 1);
        }
        a.record(&[v("k0", "unknown_kind")], "f", 0.0, 1);
        assert_eq!(a.by_key.len(), MAX_GROUPS);
        assert_eq!((a.folded, a.total()), (10, MAX_GROUPS as u64 + 11));
        // Merging keeps the cap: another worker's new groups fold, known ones add up.
        let mut b = ViolationTally::default();
        b.record(&[v("k0", "unknown_kind"), v("new", "x")], "g", 1.0, 2);
        a.merge(b);
        assert_eq!((a.by_key.len(), a.folded), (MAX_GROUPS, 11));
        assert_eq!(a.total(), MAX_GROUPS as u64 + 13);
    }

    #[test]
    fn kinds_pointers_and_messages_from_the_wire_are_cut() {
        let mut a = ViolationTally::default();
        let mut bad = v(&"k".repeat(1 << 20), "enum");
        bad.pointer = format!("/{}", "p".repeat(1 << 20));
        bad.message = "m".repeat(1 << 20);
        a.record(&[bad], "f", 0.0, 1);
        let (key, (_, samples)) = a.by_key.iter().next().unwrap();
        assert_eq!(key.kind, format!("{}…", "k".repeat(MAX_NAME_BYTES)));
        assert!(key.pointer.len() <= POINTER_BYTES + "…".len());
        assert!(samples[0].message.len() <= SAMPLE_MESSAGE_BYTES + "…".len());
    }

    #[test]
    fn long_frames_are_cut_on_a_char_boundary() {
        let s = "é".repeat(600);
        let c = cut(&s, SAMPLE_FRAME_BYTES);
        assert!(c.len() <= SAMPLE_FRAME_BYTES + "…".len());
        assert!(c.ends_with('…'));
    }
}
