//! Sleeps that end within tens of microseconds of their deadline, for schedules (`pace`,
//! paced `burst`).
//!
//! tokio's timer wheel ticks in whole milliseconds: a send due at 10.3 ms went out at 11 ms
//! (or, with the old 1 ms slack, up to 1 ms early), and that lateness was the generator's,
//! not the target's. Here one Linux timerfd per worker thread, armed for the earliest
//! deadline of that thread's sleeps, wakes the thread's reactor (kernel high-resolution
//! timers, no slack); the sleeps wait in an ordered map and a driver task on the worker wakes
//! those that are due. Where the timerfd cannot be made, sleeps fall back to tokio's timer.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One worker thread's precise timer.
pub struct Precise {
    fd: AsyncFd<OwnedFd>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The pending sleeps by (deadline, id): only live ones (a dropped sleep removes itself),
    /// so the map is as large as the sleeps waiting right now.
    sleeps: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// The deadline the timerfd is armed for.
    armed: Option<Instant>,
}

impl Precise {
    /// A timer for the current thread's runtime; `None` where the timerfd cannot be made
    /// (not Linux, or no file descriptor left): callers then use tokio's timer.
    pub fn new() -> Option<Rc<Self>> {
        let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
        let fd = timerfd_create(TimerfdClockId::Monotonic, flags).ok()?;
        // SAFETY: the `OwnedFd` moves into the `AsyncFd` and is closed only when it drops,
        // so the descriptor stays open and the same for the `AsyncFd`'s whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
        Some(Rc::new(Precise {
            fd,
            state: RefCell::default(),
        }))
    }

    /// Wakes the sleeps that are due, for as long as the worker runs (spawn it on the
    /// worker's `LocalSet`).
    pub async fn drive(self: Rc<Self>) {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return;
            };
            // Reading the expiration count clears the readiness; nothing to read is fine.
            let mut count = [0u8; 8];
            let _ = rustix::io::read(self.fd.get_ref(), &mut count);
            ready.clear_ready();
            self.fire();
        }
    }

    /// A sleep until `deadline` on this timer.
    pub fn sleep_until(self: &Rc<Self>, deadline: Instant) -> Sleep {
        Sleep::Precise {
            timer: self.clone(),
            deadline,
            id: None,
        }
    }

    /// Wakes every sleep that is due and arms the timerfd for the next one.
    fn fire(&self) {
        let now = Instant::now();
        let mut s = self.state.borrow_mut();
        s.armed = None;
        while let Some(entry) = s.sleeps.first_entry() {
            let at = entry.key().0;
            if at > now {
                self.arm(&mut s, at, now);
                break;
            }
            entry.remove().wake();
        }
    }

    fn arm(&self, s: &mut State, at: Instant, now: Instant) {
        // Relative to now; a zero value would disarm the timer, so at least 1 ns.
        let wait = at
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let value = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: wait.as_secs() as _,
                tv_nsec: wait.subsec_nanos() as _,
            },
        };
        if timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &value).is_ok() {
            s.armed = Some(at);
        }
    }

    /// Registers (or refreshes) sleep `id` until `at`; arms the timerfd when it is the
    /// earliest.
    fn register(&self, id: Option<u64>, at: Instant, waker: &Waker) -> u64 {
        let mut s = self.state.borrow_mut();
        let id = id.unwrap_or_else(|| {
            s.next_id += 1;
            s.next_id
        });
        match s.sleeps.get_mut(&(at, id)) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => w.clone_from(waker),
            None => {
                s.sleeps.insert((at, id), waker.clone());
            }
        }
        if s.armed.is_none_or(|a| at < a) {
            self.arm(&mut s, at, Instant::now());
        }
        id
    }

    fn forget(&self, at: Instant, id: u64) {
        self.state.borrow_mut().sleeps.remove(&(at, id));
    }
}

/// A sleep that ends at its deadline to within the kernel's wake-up latency.
pub enum Sleep {
    /// On a worker's precise timer; `id` once registered there.
    Precise {
        timer: Rc<Precise>,
        deadline: Instant,
        id: Option<u64>,
    },
    /// On tokio's timer, where there is no precise one.
    Coarse(Pin<Box<tokio::time::Sleep>>),
}

impl Sleep {
    /// A sleep on `timer`, or on tokio's timer when there is none.
    pub fn until(timer: Option<&Rc<Precise>>, deadline: Instant) -> Sleep {
        match timer {
            Some(t) => t.sleep_until(deadline),
            None => Sleep::Coarse(Box::pin(tokio::time::sleep_until(deadline.into()))),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Unpin: a boxed tokio sleep, or plain fields.
        match self.get_mut() {
            Sleep::Coarse(c) => c.as_mut().poll(cx),
            Sleep::Precise {
                timer,
                deadline,
                id,
            } => {
                if Instant::now() >= *deadline {
                    if let Some(id) = id.take() {
                        timer.forget(*deadline, id);
                    }
                    return Poll::Ready(());
                }
                *id = Some(timer.register(*id, *deadline, cx.waker()));
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Sleep::Precise {
            timer,
            deadline,
            id: Some(id),
        } = self
        {
            timer.forget(*deadline, *id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (rt, tokio::task::LocalSet::new())
    }

    #[test]
    fn sleeps_end_in_deadline_order_and_never_before_their_deadline() {
        let (rt, set) = local();
        set.block_on(&rt, async {
            let t = Precise::new().expect("a timerfd on Linux");
            tokio::task::spawn_local(t.clone().drive());
            let start = Instant::now();
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            // Registered out of order, so a later registration re-arms for an earlier one.
            for ms in [9u64, 3, 6, 1] {
                let (t, order) = (t.clone(), order.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let at = start + Duration::from_millis(ms);
                    t.sleep_until(at).await;
                    assert!(Instant::now() >= at, "woke before its deadline");
                    order.borrow_mut().push(ms);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(*order.borrow(), vec![1, 3, 6, 9]);
        });
    }

    #[test]
    fn a_dropped_sleep_leaves_no_waker_behind() {
        let (rt, set) = local();
        set.block_on(&rt, async {
            let t = Precise::new().expect("a timerfd on Linux");
            tokio::task::spawn_local(t.clone().drive());
            // Each polled once (registered), then dropped: nothing stays behind, however many
            // (a reply that comes first drops its pace's sleep on every round trip).
            for i in 0..100u64 {
                let far = Instant::now() + Duration::from_secs(60 + i);
                let sleep = t.sleep_until(far);
                let _ = tokio::time::timeout(Duration::from_micros(1), sleep).await;
            }
            assert!(t.state.borrow().sleeps.is_empty());
            t.sleep_until(Instant::now() + Duration::from_millis(1))
                .await;
        });
    }
}
