//! `--capacity N/s`: a fixed service budget shared by every connection, so the server has a
//! known capacity to find. Each answered client message takes `1/N` s of one service
//! clock, first come first served; its reply waits until its turn has been served. The
//! clock may run up to a slack (default [`SLACK`]) behind real time, so messages arriving
//! unevenly at a mean rate below `N` are answered at once (a token bucket holding
//! `N × slack` messages); above `N` the queue, and with it the latency, grows without bound
//! for as long as the rate lasts. With no slack every message waits its own `1/N` s: a
//! single-server queue, whose latency under random arrivals rises well before `N`.
//!
//! The queue lives on a thread of its own (the budget spans the runtime threads). A turn
//! whose connection has gone by the time it comes up is skipped without using the
//! budget, so a client that hangs up leaves no backlog behind it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How far the service clock may lag real time by default: unused budget kept for a burst.
pub const SLACK: Duration = Duration::from_millis(20);

/// One waiting batch of replies: how many messages it answers, and whom to wake.
struct Turn {
    cost: u32,
    done: oneshot::Sender<()>,
}

#[derive(Default)]
struct Queue {
    turns: VecDeque<Turn>,
    stopped: bool,
}

/// The shared service budget.
pub(crate) struct Budget {
    per_message: Duration,
    slack: Duration,
    queue: Mutex<Queue>,
    ready: Condvar,
    stopping: AtomicBool,
}

impl Budget {
    /// A budget of `per_sec` messages per second keeping `slack` of unused budget, served
    /// by its own thread (returned, to be joined after [`stop`](Self::stop)).
    pub fn start(per_sec: f64, slack: Duration) -> std::io::Result<(Arc<Budget>, JoinHandle<()>)> {
        let budget = Arc::new(Budget {
            per_message: Duration::from_secs_f64(1.0 / per_sec),
            slack,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let served = budget.clone();
        let thread = std::thread::Builder::new()
            .name("squall-server-capacity".into())
            .spawn(move || served.serve())?;
        Ok((budget, thread))
    }

    /// Queues `cost` messages' worth of service; the receiver completes when it has been
    /// served (or fails when the budget stopped). Dropping it gives the turn up.
    pub fn reserve(&self, cost: u32) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if !q.stopped {
            q.turns.push_back(Turn { cost, done });
            self.ready.notify_one();
        }
        rx
    }

    /// Ends the serving thread; waiting turns are released unserved.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.stopped = true;
        q.turns.clear();
        self.ready.notify_all();
    }

    fn next_turn(&self) -> Option<Turn> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if q.stopped {
                return None;
            }
            if let Some(t) = q.turns.pop_front() {
                return Some(t);
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The service clock: each turn ends `cost / N` after the previous turn's end, or
    /// after the slack before its arrival if the clock lags more than that (the budget
    /// left unused is kept for the slack only). The clock advances by the budget, not by
    /// when the thread woke, so a late wake-up does not lower the rate.
    fn serve(&self) {
        let mut free_at = Instant::now();
        while let Some(turn) = self.next_turn() {
            if turn.done.is_closed() {
                continue;
            }
            let now = Instant::now();
            free_at = free_at.max(now.checked_sub(self.slack).unwrap_or(now))
                + self.per_message * turn.cost;
            while !self.stopping.load(Ordering::Acquire) {
                let now = Instant::now();
                if now >= free_at {
                    break;
                }
                // Short sleeps, so a stop is seen within a few milliseconds.
                std::thread::sleep((free_at - now).min(Duration::from_millis(5)));
            }
            let _ = turn.done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_at_the_budget_and_skips_turns_given_up() {
        let (budget, thread) = Budget::start(1000.0, SLACK).unwrap();
        let start = Instant::now();
        // The thread serves this turn for 200 ms before it looks at the next one, so the
        // turn of 1000 messages queued behind it is given up before it comes up: skipped.
        let first = budget.reserve(220);
        drop(budget.reserve(1000));
        let turns: Vec<_> = (0..50).map(|_| budget.reserve(1)).collect();
        first.blocking_recv().unwrap();
        for t in turns {
            t.blocking_recv().unwrap();
        }
        let took = start.elapsed();
        // 270 messages at 1000/s: about 270 ms, and far less than the skipped turn's second.
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        budget.stop();
        thread.join().unwrap();
        // After the stop, a turn is released unserved.
        assert!(budget.reserve(1).blocking_recv().is_err());
    }
}
