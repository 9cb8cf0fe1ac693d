//! Running a VU's steps: in order, each by its kind; a step that may fail and did ends the
//! iteration.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rand::RngExt;

use super::vu::{pick_weighted, Flow, Vu};
use crate::scenario::plan::{Step, Think};

impl Vu {
    /// Runs a list of steps in order.
    pub fn run_steps<'a>(
        &'a mut self,
        steps: &'a [Step],
    ) -> Pin<Box<dyn Future<Output = Flow> + 'a>> {
        Box::pin(async move {
            for step in steps {
                if self.io.stopping() {
                    return Flow::Stop;
                }
                let flow = self.step(step).await;
                if flow != Flow::Next {
                    return flow;
                }
            }
            Flow::Next
        })
    }

    /// Runs one step; one that may fail and did (it counted an error) ends the iteration.
    async fn step(&mut self, step: &Step) -> Flow {
        let before = self.errors;
        let flow = self.run_step(step).await;
        if flow == Flow::Next && self.errors > before && step.may_fail() {
            return Flow::Failed;
        }
        flow
    }

    async fn run_step(&mut self, step: &Step) -> Flow {
        match step {
            Step::Continue(step) => match Box::pin(self.step(step)).await {
                Flow::Failed => Flow::Next,
                flow => flow,
            },
            Step::Send { payload, unchecked } => Box::pin(self.send(payload, *unchecked)).await,
            Step::Expect(e) => Box::pin(self.expect(e)).await,
            Step::Listen { duration } => self.wait(*duration).await,
            Step::Think(t) => {
                let d = self.think_time(*t);
                self.wait(d).await
            }
            Step::Repeat {
                count,
                duration,
                steps,
            } => self.repeat(*count, *duration, steps).await,
            Step::Choose { branches } => {
                let i = pick_weighted(branches.iter().map(|b| b.0), &mut self.ctx.rng);
                self.run_steps(&branches[i].1).await
            }
            // Boxed so that an idle VU's future is only as large as its current step needs.
            Step::Pace(p) => Box::pin(self.pace(p)).await,
            Step::Burst {
                payload,
                count,
                rate,
                unchecked,
                rejected,
            } => {
                let b = super::burst::Burst {
                    payload,
                    count: *count,
                    rate: *rate,
                    unchecked: *unchecked,
                    rejected: rejected.as_ref(),
                };
                Box::pin(self.burst(b)).await
            }
            Step::Upload(u) => Box::pin(self.upload(u)).await,
            Step::ExpectClose { code, within } => Box::pin(self.expect_close(*code, *within)).await,
            Step::Reconnect(b) => Box::pin(self.reconnect(b)).await,
            Step::Close { code } => {
                Box::pin(self.io.close(*code)).await;
                Flow::Next
            }
        }
    }

    /// A `think` step's pause: fixed, or drawn uniformly from its range.
    fn think_time(&mut self, t: Think) -> Duration {
        match t {
            Think::Fixed(d) => d,
            Think::Range(a, b) => {
                let (a, b) = (a.as_micros() as u64, b.as_micros() as u64);
                Duration::from_micros(self.ctx.rng.random_range(a..=b.max(a)))
            }
        }
    }

    /// A `repeat` step: its steps `count` times, or for `duration`, whichever ends first.
    async fn repeat(
        &mut self,
        count: Option<u64>,
        duration: Option<Duration>,
        steps: &[Step],
    ) -> Flow {
        let until = duration.map(|d| Instant::now() + d);
        let mut i = 0u64;
        while count.is_none_or(|c| i < c) && until.is_none_or(|u| Instant::now() < u) {
            let flow = self.run_steps(steps).await;
            if flow != Flow::Next {
                return flow;
            }
            i += 1;
        }
        Flow::Next
    }
}
