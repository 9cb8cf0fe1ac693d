//! A virtual user: picks a behaviour, connects, runs the steps, closes; again and again
//! (closed model) or once (open model).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::connect::{with_query, Connecter};
use super::ctx::Ctx;
use super::delivery::Tracker;
use super::io::Io;
use super::matcher::Want;
use super::samples::{Sample, SampleLog};
use super::timer::Precise;
use crate::metrics::{ErrorKind, Recorder};
use crate::protocol::checker::{Checked, Checker, Engine, Verdict};
use crate::protocol::pointer::Shape;
use crate::protocol::tape::Tape;
use crate::protocol::Profile;
use crate::scenario::plan::{MetricId, Payload, Plan};
use crate::scenario::template::{Context, Template};

/// Result of running steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next step.
    Next,
    /// The connection is gone (and no reconnect followed); end the iteration.
    Lost,
    /// The run is stopping at once.
    Stop,
    /// A step failed (an `expect` not met, a send skipped, ...) and its `on_fail` is `stop`:
    /// the iteration ends, counted failed, and its connection is closed with 1000.
    Failed,
}

/// How an iteration's connection fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It held to the end of the iteration (or the run stopped).
    Connected,
    /// It was lost under a step that needed it.
    Lost,
    /// It could not be opened.
    Unconnected,
}

/// What every VU of a worker shares.
pub struct Shared {
    /// The plan.
    pub plan: Arc<Plan>,
    /// How frames are read.
    pub shape: Arc<Shape>,
    /// The worker's recorder.
    pub rec: Rc<RefCell<Recorder>>,
    /// Prepared connection settings.
    pub connecter: Connecter,
    /// Becomes true when the run must stop at once.
    pub hard_stop: watch::Receiver<bool>,
    /// The protocol profile every frame is checked against; `None` with `--no-check` or
    /// without `protocol:`.
    pub profile: Option<Arc<Profile>>,
    /// How frames are judged against the profile.
    pub engine: Engine,
    /// When the run started.
    pub start: Instant,
    /// How far in the future an inbound frame's timestamp may be.
    pub clock_skew: Duration,
    /// The parse buffer the worker's checked frames share.
    pub tape: Rc<RefCell<Tape>>,
    /// The worker's precise timer for schedules (`None`: tokio's millisecond timer).
    pub timer: Option<Rc<Precise>>,
    /// Where latency samples also go (`--samples`), if anywhere.
    pub samples: Option<Arc<SampleLog>>,
}

/// One virtual user.
pub struct Vu {
    pub(super) io: Io,
    pub(super) ctx: Ctx,
    pub(super) shared: Rc<Shared>,
    /// Text buffer reused for every rendered message.
    pub(super) out: String,
    /// Taken just before the last frame was written on this connection (when it opened,
    /// until the first send): what an `expect` times its latency from, and the inbox's
    /// ordering rule: an `expect` takes only frames read after it (see [`Io::take_held`]).
    pub(super) last_send_at: Option<Instant>,
    /// Errors seen in the current iteration.
    pub(super) errors: u32,
    /// Index of the behaviour the current iteration runs (its connect options apply).
    behaviour: usize,
    /// Counted as running (active VUs) and not yet as stopped.
    running: bool,
    /// An iteration has begun and not yet been counted as ok, failed or cut.
    in_iteration: bool,
    /// Connections lost (or never made) in a row: how far the next reconnect backs off.
    troubled: u32,
}

impl Drop for Vu {
    /// A VU dropped at the hard stop (its task cancelled) still accounts for itself: its
    /// iteration counts as cut and it leaves the active VUs.
    fn drop(&mut self) {
        if !(self.in_iteration || self.running) {
            return;
        }
        if let Ok(mut rec) = self.shared.rec.try_borrow_mut() {
            if self.in_iteration {
                rec.iteration_cut();
            }
            if self.running {
                rec.vu_stopped();
            }
        }
    }
}

impl Vu {
    /// A VU numbered `vu` (1-based), its randomness derived from the run seed.
    pub fn new(vu: u64, shared: Rc<Shared>) -> Self {
        let seed = shared.plan.seed ^ vu.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let vars = shared.plan.vars.iter().cloned().collect();
        let (shape, tape) = (shared.shape.clone(), shared.tape.clone());
        let checker = match shared.profile.clone() {
            Some(p) => Checker::checking(shape, tape, p, shared.engine, shared.clock_skew),
            None => Checker::reading(shape, tape),
        };
        let mut io = Io::new(
            shared.rec.clone(),
            shared.hard_stop.clone(),
            checker,
            shared.plan.delivery.clone().map(Tracker::new),
            (shared.start, vu),
        );
        io.timer = shared.timer.clone();
        Vu {
            io,
            ctx: Ctx::new(vu, SmallRng::seed_from_u64(seed), vars),
            shared,
            out: String::new(),
            last_send_at: None,
            errors: 0,
            behaviour: 0,
            running: false,
            in_iteration: false,
            troubled: 0,
        }
    }

    /// Runs one iteration (`once`: open model) or iterations until `stop` is set (checked
    /// between iterations) or the run stops.
    pub async fn run(mut self, stop: Rc<Cell<bool>>, once: bool) {
        self.shared.rec.borrow_mut().vu_started();
        self.running = true;
        loop {
            let ended = self.iteration().await;
            self.ctx.iter += 1;
            if once || stop.get() || self.io.stopping() {
                break;
            }
            let troubled = ended != Ended::Connected;
            self.troubled = if troubled { self.troubled + 1 } else { 0 };
            if troubled {
                let mut pause = self.backoff();
                if ended == Ended::Unconnected {
                    // A target that refuses gets at least this long between attempts.
                    let floor = self
                        .shared
                        .connecter
                        .timeout()
                        .min(Duration::from_millis(500));
                    pause = pause.max(floor);
                }
                // `wait` sleeps when there is no socket (`pump` would return at once).
                if self.wait(pause).await == Flow::Stop {
                    break;
                }
            }
        }
        self.shared.rec.borrow_mut().vu_stopped();
        self.running = false;
    }

    /// How long to pause before the next iteration after `troubled` ones in a row could not
    /// connect or lost their connection: the scenario's `connect.backoff`, exponential with
    /// jitter, so a target that drops every connection is not hammered in a tight loop.
    fn backoff(&mut self) -> Duration {
        let b = self.shared.plan.connect.backoff;
        let exp = self.troubled.saturating_sub(1).min(30) as i32;
        let base = (b.initial.as_secs_f64() * b.factor.powi(exp)).min(b.max.as_secs_f64());
        let spread = 1.0 + b.jitter * (self.ctx.rng.random::<f64>() * 2.0 - 1.0);
        Duration::try_from_secs_f64((base * spread).max(0.0)).unwrap_or(b.max)
    }

    /// One iteration; how its connection fared (the next one backs off unless it held).
    pub async fn iteration(&mut self) -> Ended {
        self.errors = 0;
        self.in_iteration = true;
        let plan = self.shared.plan.clone();
        self.behaviour = pick_weighted(plan.behaviours.iter().map(|b| b.weight), &mut self.ctx.rng);
        self.shared
            .rec
            .borrow_mut()
            .iteration_started(self.behaviour);
        let behaviour = &plan.behaviours[self.behaviour];
        // Boxed: the handshake's state machine (TLS included) is large, and inline it would
        // sit in every VU's future for the whole connection's life.
        if !Box::pin(self.connect()).await {
            self.end_iteration(self.io.stopping());
            return Ended::Unconnected;
        }
        let flow = self.run_steps(&behaviour.steps).await;
        if flow == Flow::Lost {
            self.errors += 1;
        }
        let code = if flow == Flow::Stop { 1001 } else { 1000 };
        Box::pin(self.io.close(code)).await;
        self.end_iteration(flow == Flow::Stop);
        if flow == Flow::Lost {
            Ended::Lost
        } else {
            Ended::Connected
        }
    }

    /// Counts the iteration as cut (the hard stop ended it), else ok or failed.
    fn end_iteration(&mut self, cut: bool) {
        let mut rec = self.shared.rec.borrow_mut();
        if cut {
            rec.iteration_cut();
        } else {
            rec.iteration(self.errors == 0);
        }
        self.in_iteration = false;
    }

    /// Opens the connection; records the outcome.
    pub(super) async fn connect(&mut self) -> bool {
        let plan = self.shared.plan.clone();
        let b = &plan.behaviours[self.behaviour];
        // Header names compare without case (RFC 9110); query names exactly.
        let headers = self.render_pairs(&plan.connect.headers, &b.headers, |a, b| {
            a.eq_ignore_ascii_case(b)
        });
        let query = self.render_pairs(&plan.connect.query, &b.query, |a, b| a == b);
        let url = with_query(&plan.target, &query);
        let started = Instant::now();
        let mut stop = self.shared.hard_stop.clone();
        let connecting = self
            .shared
            .connecter
            .connect(&url, &headers, &plan.connect.subprotocols);
        // An attempt still under way at the hard stop is abandoned, neither opened nor failed.
        let result = tokio::select! {
            r = connecting => r,
            _ = stop.wait_for(|s| *s) => return false,
        };
        match result {
            Ok(ws) => {
                let us = started.elapsed().as_micros() as u64;
                self.shared.rec.borrow_mut().connect_ok(us);
                self.io.ws = Some(ws);
                self.io.take_failure();
                self.io.take_peer_close();
                // A new connection's first wait counts from its opening, not from the last
                // send on the previous connection.
                self.last_send_at = Some(Instant::now());
                self.io.replies = plan
                    .replies
                    .iter()
                    .map(|r| {
                        let want = Want::render(&r.on, &mut self.ctx);
                        let mut text = String::new();
                        render_payload(&r.reply, &mut self.ctx, &mut text);
                        (want, text)
                    })
                    .collect();
                true
            }
            Err(e) => {
                let mut rec = self.shared.rec.borrow_mut();
                rec.connect_failed_because(e.cause, &e.detail);
                drop(rec);
                self.errors += 1;
                false
            }
        }
    }

    /// The scenario's pairs, less those the behaviour replaces, then the behaviour's; rendered.
    fn render_pairs(
        &mut self,
        base: &[(String, Template)],
        over: &[(String, Template)],
        same: fn(&str, &str) -> bool,
    ) -> Vec<(String, String)> {
        let kept = base
            .iter()
            .filter(|(n, _)| !over.iter().any(|(o, _)| same(n, o)));
        let mut out = Vec::with_capacity(base.len() + over.len());
        for (name, t) in kept.chain(over) {
            let mut v = String::new();
            t.render(&mut self.ctx, &mut v);
            out.push((name.clone(), v));
        }
        out
    }

    /// Renders a payload into `self.out`; `false` when it read a capture that is unset.
    pub(super) fn render(&mut self, payload: &Payload) -> bool {
        self.out.clear();
        self.ctx.missing.set(false);
        render_payload(payload, &mut self.ctx, &mut self.out);
        !self.ctx.missing.get()
    }

    /// Counts a frame not sent because it would carry `null` where a capture belongs: the
    /// fault is the missing reply's, not the frame's, so it is neither sent nor checked.
    pub(super) fn skipped_send(&mut self) {
        self.shared.rec.borrow_mut().error(ErrorKind::SkippedSend);
        self.errors += 1;
    }

    pub(super) async fn send(&mut self, payload: &Payload, unchecked: bool) -> Flow {
        if !self.render(payload) {
            self.skipped_send();
            return Flow::Next;
        }
        // One read of what we send serves the kind count, the check and `sent.` templates.
        let sent = check_out(&mut self.io, payload, &self.out, unchecked);
        let len = payload_len(payload, &self.out);
        // Read before the write: the peer may receive, answer, and have its answer read here
        // before the write call returns (this thread preempted in between), so an instant
        // taken after it could follow the reply it is meant to precede.
        let at = Instant::now();
        if !self.io.feed(text_message(payload, &self.out)).await || !self.io.flush().await {
            return self.lost();
        }
        self.last_send_at = Some(at);
        self.shared
            .rec
            .borrow_mut()
            .frame_out(sent.kind.as_deref(), len);
        self.ctx.remember_sent(&self.out, sent.value);
        Flow::Next
    }

    /// Records a latency sample of metric `m`, and writes it to the samples file when there
    /// is one. `frame`: the text of the frame that ended it (`""` for a close).
    pub(super) fn latency(&self, m: MetricId, s: Sample, frame: &str) {
        record_latency(&self.shared, self.ctx.vu, m, s, frame);
    }

    /// The connection went away under a step that needed it.
    pub(super) fn lost(&mut self) -> Flow {
        if self.io.stopping() {
            return Flow::Stop;
        }
        if !self.io.take_failure() {
            // The server closed with a reason (1011, 1008, ...) while a step needed the
            // connection: that is its close, counted as such (the code is in the closes by
            // code); a normal closure or a dropped socket is a disconnect.
            let kind = match self.io.take_peer_close() {
                Some(code) if code != 1000 => ErrorKind::UnexpectedClose,
                _ => ErrorKind::Disconnected,
            };
            self.shared.rec.borrow_mut().error(kind);
            self.sample_error(kind, || match kind {
                ErrorKind::UnexpectedClose => {
                    "the server closed the connection (see closes by code) while a step needed it"
                        .into()
                }
                _ => "the connection ended while a step needed it".into(),
            });
        }
        self.errors += 1;
        Flow::Lost
    }

    /// Keeps one of the first occurrences of an error of `kind` (counted apart): now, to
    /// this VU, `detail`.
    pub(super) fn sample_error(&self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let t = self.shared.start.elapsed().as_secs_f64();
        self.shared
            .rec
            .borrow_mut()
            .error_sample(kind, t, self.ctx.vu, detail);
    }

    /// `metric rtt`, for an error's detail; empty without a metric.
    pub(super) fn metric_note(&self, m: Option<crate::scenario::plan::MetricId>) -> String {
        m.and_then(|m| self.shared.plan.metrics.get(m.0 as usize))
            .map_or(String::new(), |n| format!(" (metric {n})"))
    }
}

/// [`Vu::latency`] for callers that hold parts of the VU borrowed.
pub(super) fn record_latency(shared: &Shared, vu: u64, m: MetricId, s: Sample, frame: &str) {
    shared
        .rec
        .borrow_mut()
        .latency(m, s.latency_us, s.service_us);
    write_sample(shared, vu, m, s, frame);
}

/// Writes a sample to the samples file, when there is one (the latency recorded apart).
pub(super) fn write_sample(shared: &Shared, vu: u64, m: MetricId, s: Sample, frame: &str) {
    if let Some(log) = &shared.samples {
        log.write(&shared.plan.metrics[m.0 as usize], vu, s, frame);
    }
}

/// Renders a payload's text (binary payloads render nothing).
pub fn render_payload<C: Context>(payload: &Payload, ctx: &mut C, out: &mut String) {
    match payload {
        Payload::Json(t) => t.render(ctx, out),
        Payload::Text(t) => t.render(ctx, out),
        Payload::Binary(_) => {}
    }
}

/// Hands a rendered outbound frame to the connection's checker (read, noted, and checked
/// unless `unchecked`), the same for every sending step. A binary payload is not read: its
/// kind is `(binary)`.
pub(super) fn check_out<'t>(
    io: &mut Io,
    payload: &Payload,
    text: &'t str,
    unchecked: bool,
) -> Checked<'t> {
    match payload {
        Payload::Binary(_) => Checked {
            json: false,
            kind: Some(Cow::Borrowed("(binary)")),
            id: None,
            value: None,
            verdict: Verdict::Unchecked,
        },
        Payload::Json(_) | Payload::Text(_) => io.check_out(text, unchecked),
    }
}

/// Index of an item drawn with probability proportional to its weight (all > 0, as the
/// plan guarantees). A single item costs no random draw, so adding a behaviour later does not
/// change the draws of a one-behaviour scenario.
pub(super) fn pick_weighted(
    weights: impl Iterator<Item = f64> + Clone,
    rng: &mut SmallRng,
) -> usize {
    let total: f64 = weights.clone().sum();
    let n = weights.clone().count();
    if n <= 1 {
        return 0;
    }
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    n - 1
}

/// Bytes a payload puts on the wire.
pub fn payload_len(payload: &Payload, text: &str) -> usize {
    match payload {
        Payload::Binary(b) => b.len(),
        _ => text.len(),
    }
}

/// The message for a payload whose text is already rendered.
pub fn text_message(payload: &Payload, text: &str) -> Message {
    match payload {
        Payload::Binary(b) => Message::binary(b.clone()),
        _ => Message::text(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_picks_follow_the_weights() {
        let mut rng = SmallRng::seed_from_u64(5);
        let w = [3.0, 1.0];
        let first = (0..10_000)
            .filter(|_| pick_weighted(w.iter().copied(), &mut rng) == 0)
            .count();
        assert!((7_200..7_800).contains(&first), "{first}");
        assert_eq!(pick_weighted([2.0].into_iter(), &mut rng), 0);
    }
}
