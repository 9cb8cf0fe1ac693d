//! The checker reads a frame's landmarks (kind, id, clock field) where the last frame that
//! passed in its direction had them when the frame has that one's structure: every verdict,
//! kind and id must be what looking them up gives. And the tape engine judges every frame as
//! the reference engine does.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use super::*;
use crate::protocol::engine::Recent;
use crate::protocol::tests::{each_scalar_replaced, scalar_pointers};

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
    each_scalar_replaced(v, &others)
}

/// What checking one frame gave: its kind, id and verdict.
type Outcome = (Option<String>, Option<IdKey>, Verdict);

fn check(c: &mut Checker, dir: Direction, text: &str) -> Outcome {
    let r = match dir {
        // One arrival time for both checkers: the clock check's message says how far ahead.
        Direction::In => c.inbound(text, || {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 31)
        }),
        Direction::Out => c.outbound(text, false),
    };
    (r.kind.map(Cow::into_owned), r.id, r.verdict)
}

fn recent(c: &mut Checker) -> &mut Recent {
    c.rules.as_mut().expect("checking").memory.recent()
}

#[test]
fn landmarks_read_where_the_last_frame_had_them_agree_with_looking_them_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut likes = 0;
    for name in ["kite", "kecs", "newloom", "hexabase", "covetpy"] {
        let profile = Arc::new(Profile::load(&root.join(name)).unwrap());
        let id = profile.correlation.clone().unwrap_or_else(|| "/id".into());
        let shape = Arc::new(Shape::new(&profile.discriminator, &id));
        let tape = Rc::new(RefCell::new(Tape::default()));
        let skew = Duration::from_secs(5);
        let checker = |tape| {
            let p = profile.clone();
            Checker::checking(shape.clone(), tape, p, Engine::Tape, skew)
        };
        let mut reused = checker(tape.clone());
        let mut looked = checker(tape);
        recent(&mut looked).blind = true;
        let frames = fixtures(&root.join(name));
        let mut n = 0;
        for (dir, base) in &frames {
            let names = profile.kinds(*dir);
            // A frame, repeated, then changed in one scalar: the second and later frames
            // have the structure of the one before.
            for v in variants(base, &names) {
                for (dir, f) in [(dir, base), (dir, base), (dir, &v), (dir, &v), (dir, base)] {
                    let text = f.to_string();
                    let a = check(&mut reused, *dir, &text);
                    let b = check(&mut looked, *dir, &text);
                    assert_eq!(a, b, "{name}: {text}");
                    n += 1;
                }
            }
        }
        assert_eq!(recent(&mut looked).likes, 0);
        // Landmarks are reused at least as often as a snapshot decides a frame (those
        // frames have the structure of an earlier one of their kind).
        let r = recent(&mut reused);
        let (l, r) = (r.likes, r.repeated);
        assert!(
            l >= r && l * 3 > n,
            "{name}: {l} like, {r} decided by a snapshot, of {n}"
        );
        likes += l;
    }
    assert!(likes > 10_000, "{likes}");
}

/// Replacements worth trying beside generated ones: stamps, kinds' names, types.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[0-9T:.Z+-]{0,28}".prop_map(Value::from),
        Just(json!("2999-01-01T00:00:00Z")),
        Just(json!("2024-05-01T10:00:00.123456Z")),
        Just(json!("ping")),
        Just(json!("event")),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// A profile with its valid examples.
type Examples = (Arc<Profile>, Vec<(Direction, Value)>);

/// Every shipped profile with its valid examples.
fn shipped() -> &'static [Examples] {
    static SHIPPED: std::sync::OnceLock<Vec<Examples>> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        ["kite", "kecs", "newloom", "hexabase", "covetpy"]
            .iter()
            .map(|n| {
                let p = Arc::new(Profile::load(&root.join(n)).unwrap());
                (p, fixtures(&root.join(n)))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// A connection's frames, each a valid example with one scalar replaced (or none),
    /// judged by the tape engine and by the reference engine: the same kind, id and verdict
    /// frame after frame, so the tape engine's memory of the last frames is exercised too.
    #[test]
    fn the_tape_engine_judges_frames_as_the_reference_does(
        p in 0usize..5,
        edits in prop::collection::vec(
            (any::<Index>(), any::<Index>(), prop::option::of(replacement())),
            1..12,
        ),
    ) {
        let (profile, frames) = &shipped()[p];
        let id = profile.correlation.clone().unwrap_or_else(|| "/id".into());
        let shape = Arc::new(Shape::new(&profile.discriminator, &id));
        let skew = Duration::from_secs(1);
        let checker = |engine| {
            let tape = Rc::new(RefCell::new(Tape::default()));
            Checker::checking(shape.clone(), tape, profile.clone(), engine, skew)
        };
        let (mut tape, mut reference) = (checker(Engine::Tape), checker(Engine::Reference));
        for (f, at, with) in edits {
            let (dir, base) = &frames[f.index(frames.len())];
            let mut v = base.clone();
            let mut scalars = Vec::new();
            scalar_pointers(&v, String::new(), &mut scalars);
            if let (Some(with), false) = (with, scalars.is_empty()) {
                *v.pointer_mut(&scalars[at.index(scalars.len())]).unwrap() = with;
            }
            let text = v.to_string();
            let a = check(&mut tape, *dir, &text);
            let b = check(&mut reference, *dir, &text);
            prop_assert_eq!(a, b, "{}", text);
        }
    }
}
