//! The inbox: what it holds, and what it offers a waiting step.

use serde_json::json;

use super::*;
use crate::protocol::pointer::Shape;
use std::sync::Arc;

/// A VU's connection side reading frames by `/type` and `/id`, checking nothing.
fn io(rec: Rc<RefCell<Recorder>>) -> Io {
    let shape = Arc::new(Shape::new(&["/type".to_string()], "/id"));
    let (_stop_tx, stop) = watch::channel(false);
    let checker = Checker::reading(shape, Default::default());
    Io::new(rec, stop, checker, None, (Instant::now(), 1))
}

#[test]
fn the_mailbox_is_bounded_by_bytes_as_well_as_frames() {
    let rec = Rc::new(RefCell::new(Recorder::new(&[])));
    let mut io = io(rec.clone());
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
    let mut io = io(Rc::new(RefCell::new(Recorder::new(&[]))));
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
