//! The event generator: `--events RATE` frames per second into every room with members,
//! for every protocol that generates events, serialized once per room.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

use crate::hub::Hub;
use crate::proto::{Proto, Seq};
use crate::protocols;
use crate::stats::Stats;

/// Publishes generated events through the hub until the server stops.
pub(crate) struct Generator {
    pub rate: f64,
    /// `--strict-doc`: no `seq`, and no events for protocols whose document defines none.
    pub strict_doc: bool,
    pub hub: Arc<Hub>,
    pub stats: Arc<Stats>,
}

impl Generator {
    /// Runs until the task is dropped (at shutdown).
    pub async fn run(self) {
        if self.rate <= 0.0 {
            return;
        }
        // Tick at the event period, but no faster than every 10 ms: high rates publish several
        // per tick, so each subscriber gets them in one write (one wake-up and one syscall
        // per connection per tick, instead of per event) for at most 10 ms of added latency.
        let period = Duration::from_secs_f64((1.0 / self.rate).max(0.010));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let start = Instant::now();
        let mut emitted = 0u64;
        let mut rng = rand::rng();
        loop {
            ticker.tick().await;
            let due = (start.elapsed().as_secs_f64() * self.rate) as u64;
            // After a stall, do not burst more than a second's worth.
            let n = (due - emitted).min(self.rate.ceil() as u64);
            emitted = due;
            if n == 0 {
                continue;
            }
            let shown = !self.strict_doc;
            for proto in Proto::ALL {
                if let Some(event) = protocols::events(proto, self.strict_doc) {
                    let published = self
                        .hub
                        .generate(proto, n, |room, n| event(room, Seq { n, shown }, &mut rng));
                    self.stats.events(0, published as u64);
                }
            }
        }
    }
}
