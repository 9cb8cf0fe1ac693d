//! Fan-out delivery tracking on one connection: each inbound frame that carries a sequence
//! number is placed in its stream (the values at the `key` pointers), and classified against
//! the numbers that stream has seen: next, skipped, late, early, duplicate.
//!
//! Per frame this costs a pointer lookup or two in the frame's already-parsed value, one hash
//! lookup by borrowed text, and a few bit operations; a new stream allocates its key once.

use std::sync::Arc;
use std::time::SystemTime;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::frame::Frame;
use crate::metrics::flows::MAX_JUMP;
use crate::metrics::Seen;
use crate::protocol::pointer::lookup;
use crate::scenario::plan::Delivery;

/// How far below a stream's highest number a late frame is still told from a duplicate.
const WINDOW: u64 = 128;
/// Most streams tracked per connection; frames of further streams are counted untracked.
const MAX_STREAMS: usize = 4096;
/// Streams a connection's map is sized for at first.
const INITIAL_STREAMS: usize = 16;
/// Separates the parts of a key made of several pointers.
const KEY_SEP: char = '\u{1f}';
/// Longest stream key stored, in bytes. Keys come from the target: a longer one is stored as
/// its first bytes, `#` and a 64-bit hash of the whole key, so 4096 streams of 1 MB keys cost
/// 256 KiB, not 4 GiB, and keys differing only at the end stay apart.
pub const MAX_KEY_BYTES: usize = 64;

/// One stream's numbers: the highest so far and which of the [`WINDOW`] below it arrived.
#[derive(Debug, Clone, Copy)]
struct Stream {
    /// First number seen on this connection.
    base: u64,
    /// Highest number seen.
    high: u64,
    /// Bit `i` set: number `high - i` arrived.
    seen: u128,
}

impl Stream {
    fn new(seq: u64) -> Stream {
        Stream {
            base: seq,
            high: seq,
            seen: 1,
        }
    }

    fn observe(&mut self, seq: u64) -> Seen {
        if seq.abs_diff(self.high) > MAX_JUMP {
            *self = Stream::new(seq);
            return Seen::Reset;
        }
        if seq > self.high {
            let step = seq - self.high;
            self.seen = if step >= WINDOW {
                1
            } else {
                (self.seen << step) | 1
            };
            self.high = seq;
            return if step == 1 {
                Seen::Next
            } else {
                Seen::Skipped(step - 1)
            };
        }
        let back = self.high - seq;
        if back >= WINDOW {
            return Seen::Stale;
        }
        let bit = 1u128 << back;
        if self.seen & bit != 0 {
            return Seen::Duplicate;
        }
        self.seen |= bit;
        if seq < self.base {
            Seen::Early
        } else {
            Seen::Late
        }
    }
}

/// A connection's delivery streams.
#[derive(Debug)]
pub struct Tracker {
    plan: Arc<Delivery>,
    streams: FxHashMap<Box<str>, Stream>,
    /// Reused for keys that are not a single string value.
    key: String,
    /// Reused for the stored form of keys longer than [`MAX_KEY_BYTES`].
    long_key: String,
}

/// What a tracked frame was, and its delivery latency (µs) when it carries a send time.
pub type Tracked = (Seen, Option<u64>);

impl Tracker {
    /// A tracker for `plan`'s `delivery:` block.
    pub fn new(plan: Arc<Delivery>) -> Self {
        Tracker {
            plan,
            streams: FxHashMap::default(),
            key: String::new(),
            long_key: String::new(),
        }
    }

    /// The histogram delivery latencies go to.
    pub fn metric(&self) -> Option<crate::scenario::plan::MetricId> {
        self.plan.metric
    }

    /// Forgets every stream (the connection ended); the map keeps its memory.
    pub fn clear(&mut self) {
        self.streams.clear();
    }

    /// Classifies a frame received at `now()` (read only for frames with a send time); `None`
    /// when it is not a delivery frame (another kind, or no sequence number).
    pub fn observe(&mut self, f: &Frame, now: impl FnOnce() -> SystemTime) -> Option<Tracked> {
        if !self.plan.kinds.is_empty()
            && !self.plan.kinds.iter().any(|k| Some(k.as_str()) == f.kind())
        {
            return None;
        }
        let v = f.value()?;
        let seq = lookup(v, &self.plan.seq)?;
        let Some(seq) = seq.as_u64() else {
            return Some((Seen::Untracked, None));
        };
        let Some(key) = stream_key(&self.plan.key, v, &mut self.key) else {
            return Some((Seen::Untracked, None));
        };
        let key = bounded_key(key, &mut self.long_key);
        let full = self.streams.len() >= MAX_STREAMS;
        let seen = match self.streams.get_mut(key) {
            Some(s) => s.observe(seq),
            None if full => return Some((Seen::Untracked, None)),
            None => {
                if self.streams.capacity() == 0 {
                    self.streams.reserve(INITIAL_STREAMS);
                }
                self.streams.insert(key.into(), Stream::new(seq));
                Seen::First
            }
        };
        let latency = match (seen, &self.plan.sent_at) {
            (Seen::Duplicate, _) | (_, None) => None,
            (_, Some(p)) => lookup(v, p)
                .and_then(Value::as_str)
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                // A send time a little ahead of our clock (stamp precision) counts as 0.
                .map(|sent| {
                    now()
                        .duration_since(sent)
                        .map_or(0, |d| d.as_micros() as u64)
                }),
        };
        Some((seen, latency))
    }
}

/// The stream key of `v`: borrowed from the frame when it is one string value, else written
/// into `buf`. `None` when a key pointer is missing.
fn stream_key<'a>(pointers: &[String], v: &'a Value, buf: &'a mut String) -> Option<&'a str> {
    match pointers {
        [] => Some(""),
        [one] => match lookup(v, one)? {
            Value::String(s) => Some(s),
            other => {
                buf.clear();
                push_value(other, buf);
                Some(buf)
            }
        },
        many => {
            buf.clear();
            for (i, p) in many.iter().enumerate() {
                if i > 0 {
                    buf.push(KEY_SEP);
                }
                push_value(lookup(v, p)?, buf);
            }
            Some(buf)
        }
    }
}

/// `key`, or when longer than [`MAX_KEY_BYTES`] its stored form written into `buf`: a prefix
/// cut on a character boundary, `#`, and 16 hex digits of the whole key's hash.
fn bounded_key<'a>(key: &'a str, buf: &'a mut String) -> &'a str {
    use std::fmt::Write as _;
    use std::hash::{Hash, Hasher};
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let mut end = MAX_KEY_BYTES - 17;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    buf.clear();
    buf.push_str(&key[..end]);
    let _ = write!(buf, "#{:016x}", h.finish());
    buf
}

fn push_value(v: &Value, buf: &mut String) {
    use std::fmt::Write as _;
    match v {
        Value::String(s) => buf.push_str(s),
        other => {
            let _ = write!(buf, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::protocol::checker::Checker;
    use crate::protocol::pointer::Shape;

    /// Frames read as the inbox reads them.
    fn reader() -> Checker {
        let shape = Shape::new(&["/type".to_string()], "/id");
        Checker::reading(Arc::new(shape), Default::default())
    }

    fn seen(seqs: &[u64]) -> Vec<Seen> {
        let mut it = seqs.iter();
        let mut s = Stream::new(*it.next().unwrap());
        let mut out = vec![Seen::First];
        out.extend(it.map(|&q| s.observe(q)));
        out
    }

    #[test]
    fn streams_classify_each_number() {
        use Seen::*;
        assert_eq!(
            seen(&[5, 6, 9, 8, 8, 3, 3, 10, 7]),
            vec![
                First,
                Next,
                Skipped(2),
                Late,
                Duplicate,
                Early,
                Duplicate,
                Next,
                Late
            ]
        );
        // Far below the window: cannot be told apart, so it is only reordered.
        assert_eq!(seen(&[1, 500, 2]), vec![First, Skipped(498), Stale]);
        assert_eq!(seen(&[1, 129, 2]), vec![First, Skipped(127), Late]);
    }

    #[test]
    fn long_stream_keys_are_stored_short_and_kept_apart() {
        let r = reader();
        let mut t = Tracker::new(delivery(&["/room"]));
        let at = Instant::now();
        let long = "r".repeat(1 << 20);
        for (room, seq) in [(format!("{long}a"), 1), (format!("{long}b"), 1)] {
            let ev = json!({"type": "event", "room": room, "seq": seq}).to_string();
            let seen = t.observe(&Frame::new(&ev, at, r.read(&ev)), SystemTime::now);
            assert_eq!(seen.map(|s| s.0), Some(Seen::First));
        }
        assert_eq!(t.streams.len(), 2);
        assert!(t.streams.keys().all(|k| k.len() <= MAX_KEY_BYTES));
    }

    #[test]
    fn a_jump_past_the_window_starts_the_stream_over() {
        use Seen::*;
        // A counter from the wire: 0 then 2^64-1 is not 2^64-2 lost messages.
        assert_eq!(
            seen(&[0, u64::MAX, u64::MAX - 1, 3, 4]),
            vec![First, Reset, Early, Reset, Next]
        );
        let edge = MAX_JUMP + 1;
        assert_eq!(seen(&[1, edge]), vec![First, Skipped(MAX_JUMP - 1)]);
        assert_eq!(seen(&[1, edge + 1]), vec![First, Reset]);
    }

    fn delivery(key: &[&str]) -> Arc<Delivery> {
        Arc::new(Delivery {
            seq: "/seq".into(),
            sent_at: Some("/ts".into()),
            key: key.iter().map(|k| k.to_string()).collect(),
            kinds: vec!["event".into()],
            metric: None,
        })
    }

    #[test]
    fn frames_are_keyed_filtered_and_timed() {
        let r = reader();
        let mut t = Tracker::new(delivery(&["/room", "/n"]));
        let at = Instant::now();
        let now = humantime::parse_rfc3339("2026-01-01T00:00:01Z").unwrap();
        let mut obs = |text: &str| t.observe(&Frame::new(text, at, r.read(text)), || now);
        let ev = r#"{"type":"event","room":"a","n":1,"seq":4,"ts":"2026-01-01T00:00:00.75Z"}"#;
        assert_eq!(obs(ev), Some((Seen::First, Some(250_000))));
        let other_room = r#"{"type":"event","room":"b","n":1,"seq":9}"#;
        assert_eq!(obs(other_room), Some((Seen::First, None)));
        assert_eq!(obs(ev).map(|o| o.0), Some(Seen::Duplicate));
        assert_eq!(obs(r#"{"type":"ack","seq":1}"#), None);
        assert_eq!(obs(r#"{"type":"event","room":"a"}"#), None);
        let no_key = r#"{"type":"event","room":"a","seq":5}"#;
        assert_eq!(obs(no_key), Some((Seen::Untracked, None)));
        let future = r#"{"type":"event","room":"a","n":1,"seq":5,"ts":"2026-01-01T00:00:02Z"}"#;
        assert_eq!(obs(future), Some((Seen::Next, Some(0))));
        t.clear();
        let again = t.observe(&Frame::new(ev, at, r.read(ev)), || now);
        assert_eq!(
            again.map(|o| o.0),
            Some(Seen::First),
            "a new connection starts over"
        );
    }
}
