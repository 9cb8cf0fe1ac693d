//! The hot path allocates nothing: `Recorder::latency` and `frame_in`/`frame_out` only
//! allocate the first time a message kind is seen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use squall::metrics::Recorder;
use squall::scenario::plan::MetricId;

/// Counts allocations made by the current thread while counting is on; other test
/// threads allocate freely without disturbing the count.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // try_with: thread-locals may already be gone while a thread shuts down.
        if ON.try_with(Cell::get).unwrap_or(false) {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    f();
    ON.with(|on| on.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn recording_does_not_allocate() {
    let names = vec!["ack".to_string(), "rpc".to_string()];
    let mut r = Recorder::with_worker(0, &names);
    let kinds: Vec<String> = (0..8).map(|i| format!("kind{i}")).collect();

    let first = allocations(|| {
        for k in &kinds {
            r.frame_in(Some(k), 10);
            r.frame_out(Some(k), 10);
        }
    });
    assert!(first > 0, "first sight of a kind allocates its slot");

    let steady = allocations(|| {
        for i in 0..100_000u64 {
            r.latency(MetricId((i % 2) as u16), 100 + i, 50 + i);
            r.frame_in(Some(&kinds[(i % 8) as usize]), 64);
            r.frame_out(Some(&kinds[(i % 3) as usize]), 32);
            r.frame_in(None, 16);
            r.op();
            r.lag(i % 1_000);
        }
    });
    assert_eq!(steady, 0, "hot path allocated {steady} times");

    // A new kind later on allocates again, but only once.
    let late = allocations(|| r.frame_in(Some("late"), 1));
    let again = allocations(|| r.frame_in(Some("late"), 1));
    assert!(late > 0);
    assert_eq!(again, 0);
}

#[test]
fn delivery_tracking_does_not_allocate_per_frame() {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use squall::metrics::Seen;
    use squall::protocol::checker::Checker;
    use squall::protocol::pointer::Shape;
    use squall::scenario::plan::Delivery;
    use squall::swarm::delivery::Tracker;
    use squall::swarm::frame::Frame;

    // Frames as the inbox holds them: read once when they arrived.
    let shape = Arc::new(Shape::new(&["/type".to_string()], "/id"));
    let reader = Checker::reading(shape, Default::default());
    let at = Instant::now();
    let stamp = "2026-01-01T00:00:00.000001Z";
    let texts: Vec<String> = (1..=2_000u64)
        .map(|seq| {
            let room = if seq.is_multiple_of(2) { "\"a\"" } else { "7" };
            format!(r#"{{"type":"event","room":{room},"n":1,"seq":{seq},"ts":"{stamp}"}}"#)
        })
        .collect();
    let frames: Vec<Frame> = texts
        .iter()
        .map(|t| Frame::new(t, at, reader.read(t)))
        .collect();
    // Their values built on first use, as the inbox builds them for the tracker.
    for f in &frames {
        assert!(f.value().is_some());
    }
    for key in [vec!["/room"], vec!["/room", "/n"]] {
        let mut t = Tracker::new(Arc::new(Delivery {
            seq: "/seq".into(),
            sent_at: Some("/ts".into()),
            key: key.iter().map(|k| k.to_string()).collect(),
            kinds: vec!["event".into()],
            metric: Some(MetricId(0)),
        }));
        let mut r = Recorder::with_worker(0, &["delivery".to_string()]);
        let now = SystemTime::now();
        let first = allocations(|| {
            for f in &frames[..2] {
                assert_eq!(t.observe(f, || now).map(|o| o.0), Some(Seen::First));
            }
        });
        assert!(first > 0, "a new stream allocates its key");
        let steady = allocations(|| {
            for f in &frames[2..] {
                let (seen, lat) = t.observe(f, || now).expect("tracked");
                r.delivered(seen);
                r.latency(MetricId(0), lat.unwrap_or(0), 0);
            }
        });
        assert_eq!(steady, 0, "{key:?}: tracking allocated {steady} times");
    }
}

#[test]
fn checking_a_clean_frame_on_a_warm_tape_does_not_allocate() {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use squall::protocol::checker::{Checker, Engine, Verdict};
    use squall::protocol::pointer::Shape;
    use squall::protocol::Profile;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
    let profile = Arc::new(Profile::load(&dir).expect("kite loads"));
    // Pings out, their pongs in, through the front door: checked on the worker's tape by the
    // compiled checks, with the connection's memory of its last frames, and paired.
    let shape = Arc::new(Shape::new(&profile.discriminator, "/id"));
    let skew = Duration::from_secs(1);
    let mut checker = Checker::checking(shape, Default::default(), profile, Engine::Tape, skew);
    let frames: Vec<(String, String)> = (0..1_000u64)
        .map(|i| {
            (
                format!(r#"{{"type":"ping","id":{i}}}"#),
                format!(
                    r#"{{"type":"pong","data":{{"client_id":"3f2b8c4e-9a1d-4e6f-8b2a-5c7d9e0f1a2b"}},"timestamp":"2026-11-22T03:41:07.{:06}Z","id":{i}}}"#,
                    i
                ),
            )
        })
        .collect();
    let mut check = |(ping, pong): &(String, String)| {
        let out = checker.outbound(ping, false).verdict;
        assert_eq!(out, Verdict::Clean, "{ping}");
        let read = checker.inbound(pong, SystemTime::now).verdict;
        assert_eq!(read, Verdict::Clean, "{pong}");
    };
    // The first frames size the tape, the pattern walks and the pending requests, and (from
    // a kind's second frame) the copy of the kind's last valid frame that later frames are
    // compared with.
    for f in &frames[..4] {
        check(f);
    }
    let steady = allocations(|| {
        for f in &frames[4..] {
            check(f);
        }
    });
    assert_eq!(steady, 0, "checking allocated {steady} times");
}
