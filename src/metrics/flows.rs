//! Counters of flows that span many frames: fan-out delivery (sequence numbers per stream)
//! and uploads (per upload step metric). Plain sums, so workers and shards merge by adding.

use crate::results::{DeliveryResult, UploadResult};

/// Largest forward or backward jump of a stream's sequence number read as loss or
/// reordering; a larger one is a [`Seen::Reset`]. Numbers come from the target, so one frame
/// must not be able to claim 2^64 lost messages.
pub const MAX_JUMP: u64 = 1 << 20;

/// What one tracked inbound frame was to its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The stream's first frame on this connection: its baseline (joining mid-stream is
    /// not a gap).
    First,
    /// The number after the highest so far.
    Next,
    /// A number past the next: this many numbers were skipped (gaps until they arrive).
    Skipped(u64),
    /// A skipped number arriving late: it fills its gap and counts as reordered.
    Late,
    /// A number below the stream's baseline, first seen now: reordered, but never a gap.
    Early,
    /// A number too far below the highest to tell whether it was seen (beyond the window):
    /// reordered; a gap it may fill stays counted.
    Stale,
    /// A number already received.
    Duplicate,
    /// A number more than [`MAX_JUMP`] away from the stream's highest: the sender restarted
    /// or mangled its counter. The stream starts over from it; nothing is counted as gaps.
    Reset,
    /// A frame with a sequence number that could not be tracked (not an unsigned integer,
    /// no stream key, or too many streams on the connection).
    Untracked,
}

/// Delivery counters since the last take.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryTally {
    /// Distinct sequence numbers received.
    pub received: u64,
    /// Numbers skipped when a higher one arrived.
    pub skipped: u64,
    /// Skipped numbers that arrived later (subtracted from `skipped` to give the gaps).
    pub filled: u64,
    /// Frames after a higher number of their stream.
    pub reordered: u64,
    /// Repeats of numbers already received.
    pub duplicates: u64,
    /// Frames with a sequence number that could not be tracked.
    pub untracked: u64,
    /// Streams whose baseline was set (one per stream and connection).
    pub streams: u64,
    /// Streams that started over after a jump of more than [`MAX_JUMP`].
    pub resets: u64,
}

impl DeliveryTally {
    /// Counts one frame. Sums saturate: the numbers come from the wire.
    pub fn count(&mut self, seen: Seen) {
        let inc = |n: &mut u64| *n = n.saturating_add(1);
        match seen {
            Seen::First => {
                inc(&mut self.streams);
                inc(&mut self.received);
            }
            Seen::Next => inc(&mut self.received),
            Seen::Skipped(n) => {
                inc(&mut self.received);
                self.skipped = self.skipped.saturating_add(n);
            }
            Seen::Late => {
                inc(&mut self.received);
                inc(&mut self.filled);
                inc(&mut self.reordered);
            }
            Seen::Early | Seen::Stale => {
                inc(&mut self.received);
                inc(&mut self.reordered);
            }
            Seen::Reset => {
                inc(&mut self.received);
                inc(&mut self.resets);
            }
            Seen::Duplicate => inc(&mut self.duplicates),
            Seen::Untracked => inc(&mut self.untracked),
        }
    }

    /// Adds `o` into `self`, saturating.
    pub fn add(&mut self, o: &DeliveryTally) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.received, o.received);
        add(&mut self.skipped, o.skipped);
        add(&mut self.filled, o.filled);
        add(&mut self.reordered, o.reordered);
        add(&mut self.duplicates, o.duplicates);
        add(&mut self.untracked, o.untracked);
        add(&mut self.streams, o.streams);
        add(&mut self.resets, o.resets);
    }

    /// Numbers skipped and never received.
    pub fn gaps(&self) -> u64 {
        self.skipped.saturating_sub(self.filled)
    }

    /// received / (received + gaps), in 0..=1 (computed in floating point so the sum
    /// cannot wrap); `None` before anything was received.
    pub fn completeness(&self) -> Option<f64> {
        let all = self.received as f64 + self.gaps() as f64;
        (self.received > 0).then(|| (self.received as f64 / all).clamp(0.0, 1.0))
    }
}

/// How an upload ended (or that it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadEvent {
    /// Its start message was sent.
    Started,
    /// `complete` matched: `bytes` of file in `us` from start sent to complete received.
    Completed {
        /// File size.
        bytes: u64,
        /// Completion time, µs.
        us: u64,
    },
    /// The expected error (`expect_error`) matched.
    Rejected,
    /// Timed out, lost the connection, or ended the other way than expected.
    Failed,
    /// Still under way when the hard stop came.
    Cut,
}

/// Upload counters of one metric since the last take.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UploadTally {
    /// Uploads started.
    pub started: u64,
    /// Uploads completed.
    pub completed: u64,
    /// Uploads that ended in their expected error.
    pub rejected: u64,
    /// Uploads that failed.
    pub failed: u64,
    /// Uploads the hard stop cut.
    pub cut: u64,
    /// File bytes of completed uploads.
    pub bytes: u64,
    /// Summed completion time of completed uploads, µs.
    pub micros: u64,
}

impl UploadTally {
    /// Counts one event.
    pub fn count(&mut self, e: UploadEvent) {
        match e {
            UploadEvent::Started => self.started += 1,
            UploadEvent::Completed { bytes, us } => {
                self.completed += 1;
                self.bytes += bytes;
                self.micros += us;
            }
            UploadEvent::Rejected => self.rejected += 1,
            UploadEvent::Failed => self.failed += 1,
            UploadEvent::Cut => self.cut += 1,
        }
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &UploadTally) {
        self.started += o.started;
        self.completed += o.completed;
        self.rejected += o.rejected;
        self.failed += o.failed;
        self.cut += o.cut;
        self.bytes += o.bytes;
        self.micros += o.micros;
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == UploadTally::default()
    }
}

impl DeliveryResult {
    /// The results view of merged counters.
    pub fn from_tally(t: &DeliveryTally, metric: Option<String>) -> DeliveryResult {
        DeliveryResult {
            metric,
            received: t.received,
            gaps: t.gaps(),
            reordered: t.reordered,
            duplicates: t.duplicates,
            untracked: t.untracked,
            streams: t.streams,
            resets: t.resets,
            completeness: t.completeness(),
        }
    }
}

impl UploadResult {
    /// The results view of merged counters.
    pub fn from_tally(t: &UploadTally) -> UploadResult {
        let seconds = t.micros as f64 / 1e6;
        UploadResult {
            started: t.started,
            completed: t.completed,
            rejected: t.rejected,
            failed: t.failed,
            cut: t.cut,
            bytes: t.bytes,
            seconds,
            mbps: (t.completed > 0 && seconds > 0.0).then(|| t.bytes as f64 / 1e6 / seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_frames_fill_their_gaps() {
        let mut t = DeliveryTally::default();
        for s in [Seen::First, Seen::Skipped(2), Seen::Late, Seen::Duplicate] {
            t.count(s);
        }
        assert_eq!(
            (t.received, t.gaps(), t.reordered, t.duplicates),
            (3, 1, 1, 1)
        );
        assert_eq!(t.completeness(), Some(0.75));
        assert_eq!(DeliveryTally::default().completeness(), None);
    }

    #[test]
    fn sums_saturate_and_completeness_stays_a_fraction() {
        let mut t = DeliveryTally::default();
        for s in [Seen::First, Seen::Skipped(u64::MAX - 1), Seen::Skipped(7)] {
            t.count(s);
        }
        let mut all = t;
        all.add(&t);
        assert_eq!(all.gaps(), u64::MAX);
        let c = all.completeness().unwrap();
        assert!((0.0..=1.0).contains(&c) && c < 1e-12, "completeness {c}");
        t.count(Seen::Reset);
        assert_eq!((t.received, t.resets), (4, 1));
    }
}
