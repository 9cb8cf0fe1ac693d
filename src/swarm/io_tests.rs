//! The checker reads a frame's landmarks (kind, id, clock field) where the last frame that
//! passed in its direction had them when the frame has that one's structure: every verdict,
//! kind and id must be what looking them up gives.

use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::metrics::violations::ViolationKey;
use crate::protocol::tests::scalar_pointers;

/// Fixtures of a profile by direction (`in-*.json`, `out-*.json`), as one line each.
fn fixtures(dir: &Path) -> Vec<(Direction, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("examples/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_str()?;
            let dir = match name {
                n if n.starts_with("in-") => Direction::In,
                n if n.starts_with("out-") => Direction::Out,
                _ => return None,
            };
            let text = std::fs::read_to_string(f).ok()?;
            Some((dir, serde_json::from_str(&text).ok()?))
        })
        .collect()
}

/// `v` with each scalar in turn replaced: by other kinds' names of the same direction (the
/// same structure, another kind), ids, a stamp far in the future, other types.
fn variants(v: &Value, names: &[&str]) -> Vec<Value> {
    // Three other kinds' names: the first, one in the middle, the last.
    let pick = [0, names.len() / 2, names.len().saturating_sub(1)];
    let mut others: Vec<Value> = pick
        .iter()
        .filter_map(|&i| names.get(i))
        .map(|n| json!(n))
        .collect();
    others.extend([
        json!(7),
        json!("7"),
        json!("2999-01-01T00:00:00Z"),
        json!("not a stamp"),
        Value::Null,
    ]);
    let mut at = Vec::new();
    scalar_pointers(v, String::new(), &mut at);
    let mut out = Vec::new();
    for p in &at {
        for o in &others {
            let mut c = v.clone();
            *c.pointer_mut(p).unwrap() = o.clone();
            out.push(c);
        }
    }
    out
}

/// What checking one frame gave: its kind and id, and what the recorder counted.
type Outcome = (
    Option<String>,
    Option<Option<IdKey>>,
    u64,
    Vec<(ViolationKey, u64)>,
);

/// `rec` is the checker's own recorder, emptied of violations by each check.
fn check(
    c: &mut Checker,
    rec: &RefCell<Recorder>,
    shape: &Shape,
    dir: Direction,
    text: &str,
) -> Outcome {
    let (kind, id) = match dir {
        Direction::In => {
            let f = c.inbound(text, Instant::now(), shape, rec);
            (f.kind().map(str::to_string), Some(f.id().cloned()))
        }
        Direction::Out => (None, c.outbound(text, shape, false, rec)),
    };
    let tally = rec.borrow_mut().take_violations();
    let counts = tally.by_key.iter().map(|(k, (n, _))| (k.clone(), *n));
    (kind, id, tally.checked, counts.collect())
}

#[test]
fn landmarks_read_where_the_last_frame_had_them_agree_with_looking_them_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut likes = 0;
    for name in ["kite", "kecs", "newloom", "hexabase", "covetpy"] {
        let profile = Arc::new(Profile::load(&root.join(name)).unwrap());
        let id = profile.correlation.clone().unwrap_or_else(|| "/id".into());
        let shape = Shape::new(&profile.discriminator, &id);
        let tape = Rc::new(RefCell::new(Tape::default()));
        let skew = Duration::from_secs(5);
        let start = Instant::now();
        let mut reused = Checker::new(profile.clone(), start, 1, skew, tape.clone());
        let mut looked = Checker::new(profile.clone(), start, 1, skew, tape);
        looked.recent.blind = true;
        let (rec_reused, rec_looked) = (
            RefCell::new(Recorder::new(&[])),
            RefCell::new(Recorder::new(&[])),
        );
        let frames = fixtures(&root.join(name));
        let mut n = 0;
        for (dir, base) in &frames {
            let names = profile.kinds(*dir);
            // A frame, repeated, then changed in one scalar: the second and later frames
            // have the structure of the one before.
            for v in variants(base, &names) {
                for (dir, f) in [(dir, base), (dir, base), (dir, &v), (dir, &v), (dir, base)] {
                    let text = f.to_string();
                    let a = check(&mut reused, &rec_reused, &shape, *dir, &text);
                    let b = check(&mut looked, &rec_looked, &shape, *dir, &text);
                    assert_eq!(a, b, "{name}: {text}");
                    n += 1;
                }
            }
        }
        assert_eq!(looked.recent.likes, 0);
        // Landmarks are reused at least as often as a snapshot decides a frame (those
        // frames have the structure of an earlier one of their kind).
        let (l, r) = (reused.recent.likes, reused.recent.repeated);
        assert!(
            l >= r && l * 3 > n,
            "{name}: {l} like, {r} decided by a snapshot, of {n}"
        );
        likes += reused.recent.likes;
    }
    assert!(likes > 10_000, "{likes}");
}

#[test]
fn the_mailbox_is_bounded_by_bytes_as_well_as_frames() {
    let shape = Arc::new(Shape::new(&["/type".to_string()], "/id"));
    let rec = Rc::new(RefCell::new(Recorder::new(&[])));
    let (_stop_tx, stop) = watch::channel(false);
    let mut io = Io::new(shape, rec.clone(), stop, None, None);
    let start = Instant::now();
    let big = |n: usize| Utf8Bytes::from(json!({"type": "big", "pad": "x".repeat(n)}).to_string());
    let mut nobody = |_: &Frame| false;
    for _ in 0..MAILBOX {
        io.on_text(big(300 << 10), Instant::now(), &mut nobody);
    }
    let held: usize = io.mailbox.iter().map(|h| h.text.len()).sum();
    assert!(held <= MAILBOX_BYTES, "{held} bytes held");
    assert_eq!(io.mailbox.len(), 3, "the newest frames that fit");
    // Larger than the cap alone: counted, not held; what was held stays.
    io.on_text(big(MAILBOX_BYTES), Instant::now(), &mut nobody);
    assert_eq!(io.mailbox.len(), 3);
    // Taking a frame frees its bytes: small frames fill up to the frame cap again.
    assert!(io.take_held(start, &mut |_: &Frame| true).is_some());
    for _ in 0..MAILBOX {
        io.on_text(big(10), Instant::now(), &mut nobody);
    }
    assert_eq!(io.mailbox.len(), MAILBOX);
    let kinds = rec.borrow_mut().take().kinds_in;
    assert_eq!(
        kinds[0].frames,
        MAILBOX as u64 * 2 + 1,
        "every frame counted"
    );
}

#[test]
fn a_held_frame_read_before_the_send_is_never_offered() {
    let shape = Arc::new(Shape::new(&["/type".to_string()], "/id"));
    let rec = Rc::new(RefCell::new(Recorder::new(&[])));
    let (_stop_tx, stop) = watch::channel(false);
    let mut io = Io::new(shape, rec, stop, None, None);
    let frame = |kind: &str| Utf8Bytes::from(json!({ "type": kind }).to_string());
    let mut nobody = |_: &Frame| false;
    let t0 = Instant::now();
    io.on_text(frame("ack"), t0, &mut nobody);
    let sent = t0 + Duration::from_millis(1);
    io.on_text(frame("ack"), sent + Duration::from_millis(1), &mut nobody);
    let mut seen = Vec::new();
    let held = io.take_held(sent, &mut |f: &Frame| {
        seen.push(f.at);
        true
    });
    assert_eq!(
        seen,
        [sent + Duration::from_millis(1)],
        "only the later frame is offered"
    );
    assert!(held.is_some());
    // The earlier one stays, but no wait after the send can take it.
    assert_eq!(io.mailbox.len(), 1);
    assert!(io.take_held(sent, &mut |_: &Frame| true).is_none());
    assert!(io.take_held(t0, &mut |_: &Frame| true).is_some());
}
