//! The waiting steps of a VU: `expect`, `listen`/`think`, `expect_close` and `reconnect`.

use std::time::{Duration, Instant};

use rand::RngExt;
use serde_json::Value;

use super::frame::Frame;
use super::io::Woke;
use super::matcher::Want;
use super::samples::Sample;
use super::vu::{Flow, Vu};
use crate::metrics::ErrorKind;
use crate::protocol::pointer::lookup;
use crate::scenario::plan::{Backoff, Expect};

/// The frame an `expect` took: when it was read, the values it captures (`None`: a field
/// it lacks) and its text, kept only for the samples file.
struct Got {
    at: Instant,
    values: Vec<Option<Value>>,
    text: Option<String>,
}

impl Vu {
    /// Runs an `expect` step: waits for a frame that matches, read after the last send.
    pub(super) async fn expect(&mut self, e: &Expect) -> Flow {
        let want = Want::render(&e.matcher, &mut self.ctx);
        let start = Instant::now();
        {
            let mut rec = self.shared.rec.borrow_mut();
            rec.op();
            rec.request();
        }
        // The inbox's ordering rule: an `expect` takes only a frame read after the send it
        // follows (or, before the connection's first send, after it opened), and its latency
        // counts from that send. A frame read earlier answers something else.
        let since = self.last_send_at.unwrap_or(start);
        // Captures are read while the matched frame is at hand, from its JSON value; its
        // text is kept only for the samples file.
        let keep_text = self.shared.samples.is_some();
        let mut got: Option<Got> = None;
        let mut accept = |f: &Frame| {
            if !want.matches(f) {
                return false;
            }
            // A field the frame lacks is no value: the variable is unset, not `null`.
            let values = e
                .capture
                .iter()
                .map(|(_, p)| f.value().and_then(|v| lookup(v, p)).cloned())
                .collect();
            let text = keep_text.then(|| f.text().to_owned());
            got = Some(Got {
                at: f.at,
                values,
                text,
            });
            true
        };
        if self.io.take_held(since, &mut accept).is_none() {
            match self.io.pump(start + e.within, &mut accept).await {
                Woke::Matched => {}
                missed => return self.expect_missed(e, missed),
            }
        }
        self.shared.rec.borrow_mut().replied();
        match got {
            Some(got) => self.expect_met(e, since, got),
            None => Flow::Next,
        }
    }

    /// An `expect` whose frame did not come: its deadline passed, the connection went, or
    /// the run stops.
    fn expect_missed(&mut self, e: &Expect, woke: Woke) -> Flow {
        match woke {
            Woke::Matched => Flow::Next,
            Woke::Deadline => {
                let waited = e.within.as_micros() as u64;
                let mut rec = self.shared.rec.borrow_mut();
                rec.request_timed_out(e.metric, waited);
                drop(rec);
                let note = self.metric_note(e.metric);
                self.sample_error(ErrorKind::Timeout, || {
                    format!("expect: no matching frame within {:?}{note}", e.within)
                });
                self.errors += 1;
                self.uncapture(e);
                Flow::Next
            }
            Woke::Closed(_) => {
                self.shared.rec.borrow_mut().unanswered(1);
                self.uncapture(e);
                self.lost()
            }
            Woke::Stop => {
                self.shared.rec.borrow_mut().cut_at_stop(1);
                Flow::Stop
            }
        }
    }

    /// An `expect` met by a frame read at `got.at`: its latency from the send `since`, and
    /// its captures set.
    fn expect_met(&mut self, e: &Expect, since: Instant, got: Got) -> Flow {
        let Got { at, values, text } = got;
        if let Some(m) = e.metric {
            let us = at.duration_since(since).as_micros() as u64;
            let s = Sample {
                intended: since,
                sent: since,
                received: at,
                latency_us: us,
                service_us: us,
            };
            self.latency(m, s, text.as_deref().unwrap_or(""));
        }
        for ((name, _), v) in e.capture.iter().zip(values) {
            match v {
                Some(v) => {
                    self.ctx.vars.insert(name.clone(), v);
                }
                None => {
                    self.ctx.vars.remove(name);
                }
            }
        }
        Flow::Next
    }

    /// Unsets what a failed `expect` would have captured: a later frame naming it is not sent
    /// with a value from an earlier reply.
    fn uncapture(&mut self, e: &Expect) {
        for (name, _) in &e.capture {
            self.ctx.vars.remove(name);
        }
    }

    /// Waits (reading, counting, auto-replying) for `d`.
    pub(super) async fn wait(&mut self, d: Duration) -> Flow {
        if self.io.ws.is_none() {
            // Nothing to read: a plain pause that still honours a hard stop.
            let mut stop = self.io.hard_stop.clone();
            return tokio::select! {
                _ = tokio::time::sleep(d) => Flow::Next,
                _ = stop.wait_for(|s| *s) => Flow::Stop,
            };
        }
        let mut never = |_: &Frame| false;
        match self.io.pump(Instant::now() + d, &mut never).await {
            Woke::Deadline | Woke::Matched => Flow::Next,
            Woke::Closed(_) => self.lost(),
            Woke::Stop => Flow::Stop,
        }
    }

    pub(super) async fn expect_close(&mut self, code: Option<u16>, within: Duration) -> Flow {
        self.shared.rec.borrow_mut().op();
        if self.io.ws.is_none() {
            return self.lost();
        }
        let mut never = |_: &Frame| false;
        match self.io.pump(Instant::now() + within, &mut never).await {
            Woke::Closed(got) => {
                if code.is_some() && got != code {
                    self.shared
                        .rec
                        .borrow_mut()
                        .error(ErrorKind::UnexpectedClose);
                    self.sample_error(ErrorKind::UnexpectedClose, || {
                        format!("expect_close: wanted close {code:?}, got {got:?}")
                    });
                    self.errors += 1;
                }
                Flow::Next
            }
            Woke::Deadline | Woke::Matched => {
                self.shared
                    .rec
                    .borrow_mut()
                    .timeout(None, within.as_micros() as u64);
                self.sample_error(ErrorKind::Timeout, || {
                    format!("expect_close: the connection stayed open for {within:?}")
                });
                self.errors += 1;
                Flow::Next
            }
            Woke::Stop => Flow::Stop,
        }
    }

    pub(super) async fn reconnect(&mut self, b: &Backoff) -> Flow {
        self.io.close(1000).await;
        for attempt in 0..b.max_tries {
            if Box::pin(self.connect()).await {
                return Flow::Next;
            }
            let base = b.initial.as_secs_f64() * b.factor.powi(attempt as i32);
            let spread = 1.0 + b.jitter * (self.ctx.rng.random::<f64>() * 2.0 - 1.0);
            let delay = Duration::from_secs_f64((base.min(b.max.as_secs_f64()) * spread).max(0.0));
            if self.wait(delay).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        self.shared
            .rec
            .borrow_mut()
            .error(ErrorKind::ReconnectExhausted);
        self.sample_error(ErrorKind::ReconnectExhausted, || {
            format!("reconnect: {} attempts failed", b.max_tries)
        });
        self.errors += 1;
        Flow::Lost
    }
}
