//! Frame and byte counts by message kind, looked up by `&str` without allocating.
//!
//! Kind names come from the target: at most [`MAX_KINDS`] are kept, each cut to
//! [`MAX_NAME_BYTES`].

use rustc_hash::FxHashMap;

/// Most distinct kind names counted per recorder and direction; later ones go to [`OTHER_KIND`].
pub const MAX_KINDS: usize = 256;
/// Bucket for kinds seen after [`MAX_KINDS`] distinct ones: a misbehaving peer that puts
/// random strings in its discriminator must not grow memory without bound.
pub const OTHER_KIND: &str = "(other)";
/// Bucket for frames without a kind (binary, unparsable, no discriminator).
pub const NONE_KIND: &str = "(none)";
/// Longest kind name kept, in bytes; a longer one is cut on a character boundary and marked
/// with `…` (so a 1 MB discriminator costs 67 bytes, not 1 MB per kind).
pub const MAX_NAME_BYTES: usize = 64;
/// Room for a cut name: [`MAX_NAME_BYTES`] and the 3-byte `…`.
const CLIPPED_BYTES: usize = MAX_NAME_BYTES + 3;

/// `name`, or when longer than [`MAX_NAME_BYTES`] its cut form written into `buf` (no heap
/// allocation: this runs per frame).
pub(crate) fn clip<'a>(name: &'a str, buf: &'a mut [u8; CLIPPED_BYTES]) -> &'a str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    buf[..end].copy_from_slice(&name.as_bytes()[..end]);
    buf[end..end + 3].copy_from_slice("…".as_bytes());
    // A prefix cut on a char boundary plus `…` is UTF-8.
    std::str::from_utf8(&buf[..end + 3]).unwrap_or("…")
}

/// Frames and bytes of one kind since the last take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindDelta {
    /// Kind name, or [`OTHER_KIND`] / [`NONE_KIND`].
    pub name: String,
    /// Frames.
    pub frames: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// Counts for one direction. Slots stay allocated across takes so a kind costs one
/// allocation for the life of the recorder.
#[derive(Debug, Default)]
pub(crate) struct KindCounts {
    // Fx rather than SipHash: kinds come from the tested server, not an attacker choosing
    // collisions, and this lookup runs for every frame.
    index: FxHashMap<Box<str>, usize>,
    /// (name, frames, bytes); slot 0 is `(none)`, slot 1 is `(other)`.
    slots: Vec<(Box<str>, u64, u64)>,
}

impl KindCounts {
    pub(crate) fn new() -> Self {
        KindCounts {
            index: FxHashMap::default(),
            slots: vec![(NONE_KIND.into(), 0, 0), (OTHER_KIND.into(), 0, 0)],
        }
    }

    /// Counts one frame of `bytes` under `kind` (cut to [`MAX_NAME_BYTES`]).
    pub(crate) fn count(&mut self, kind: Option<&str>, bytes: usize) {
        let slot = match kind {
            None => 0,
            Some(k) if k.len() <= MAX_NAME_BYTES => self.slot(k),
            // Only a long name pays for the buffer (a zeroed array on every frame showed in
            // the instructions per round trip).
            Some(k) => {
                let mut buf = [0u8; CLIPPED_BYTES];
                self.slot(clip(k, &mut buf))
            }
        };
        let s = &mut self.slots[slot];
        s.1 += 1;
        s.2 += bytes as u64;
    }

    /// The slot of kind `k` (a name within [`MAX_NAME_BYTES`]): its own, a new one while
    /// fewer than [`MAX_KINDS`] are known, else the overflow slot.
    fn slot(&mut self, k: &str) -> usize {
        match self.index.get(k) {
            Some(&i) => i,
            None if self.index.len() < MAX_KINDS => {
                let i = self.slots.len();
                self.slots.push((k.into(), 0, 0));
                self.index.insert(k.into(), i);
                i
            }
            None => 1,
        }
    }

    /// Non-zero counts since the last take, then zero them.
    pub(crate) fn take(&mut self) -> Vec<KindDelta> {
        let mut out = Vec::new();
        for (name, frames, bytes) in &mut self.slots {
            if *frames > 0 {
                out.push(KindDelta {
                    name: name.to_string(),
                    frames: std::mem::take(frames),
                    bytes: std::mem::take(bytes),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_distinct_kinds_and_buckets_the_rest() {
        let mut k = KindCounts::new();
        for i in 0..(MAX_KINDS + 10) {
            k.count(Some(&format!("k{i}")), 3);
        }
        k.count(Some("k0"), 1);
        k.count(None, 5);
        let d = k.take();
        let named = d.iter().filter(|d| d.name.starts_with('k')).count();
        assert_eq!(named, MAX_KINDS);
        let other = d.iter().find(|d| d.name == OTHER_KIND).unwrap();
        assert_eq!((other.frames, other.bytes), (10, 30));
        let none = d.iter().find(|d| d.name == NONE_KIND).unwrap();
        assert_eq!((none.frames, none.bytes), (1, 5));
        let k0 = d.iter().find(|d| d.name == "k0").unwrap();
        assert_eq!((k0.frames, k0.bytes), (2, 4));
        // A take resets the deltas but keeps the slots.
        assert!(k.take().is_empty());
    }

    #[test]
    fn long_kind_names_are_cut_and_share_a_slot() {
        let mut k = KindCounts::new();
        let long = "é".repeat(1 << 19); // 1 MiB
        k.count(Some(&long), 1);
        k.count(Some(&format!("{long}x")), 1);
        let d = k.take();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, format!("{}…", "é".repeat(MAX_NAME_BYTES / 2)));
        assert_eq!(d[0].frames, 2);
        let mut buf = [0u8; CLIPPED_BYTES];
        assert_eq!(clip("short", &mut buf), "short");
    }
}
