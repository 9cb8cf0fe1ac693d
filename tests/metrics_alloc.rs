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
