//! The per-worker [`Recorder`] VU tasks write into, and the [`Snapshot`] it hands over each tick.

pub use super::snapshot::{ERROR_SAMPLES, FAIL_DETAIL_MAX, FAIL_SAMPLES};

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use super::flows::{DeliveryTally, Seen, UploadEvent, UploadTally};
use super::health::thread_cpu_ns;
use super::kinds::KindCounts;
use super::snapshot::{note_sample, Snapshot, Tally};
use super::violations::ViolationTally;
use super::{new_histogram, ErrorKind, FailCause};
use crate::results::ErrorSample;
use crate::scenario::plan::MetricId;

/// Worker ids handed out by [`Recorder::new`]. They start high so they never collide with
/// explicit indices from [`Recorder::with_worker`].
static NEXT_AUTO_WORKER: AtomicU64 = AtomicU64::new(1 << 32);

/// Everything one worker thread measures between two ticks.
///
/// Owned by one thread (share it between that thread's VU tasks with `Rc<RefCell<_>>`,
/// never borrowed across an await). Recording a latency or a frame never locks and never
/// allocates, except the first time a message kind is seen.
#[derive(Debug)]
pub struct Recorder {
    worker: u64,
    latency: Vec<Histogram<u64>>,
    service: Vec<Histogram<u64>>,
    connect: Histogram<u64>,
    lag: Histogram<u64>,
    /// How late scheduled sends went out (intended → actual), µs; late ones only.
    send_late: Histogram<u64>,
    tally: Tally,
    /// The series bucket (tick index since the run start) events go to now.
    second: u32,
    /// This thread's CPU time at the previous roll, ns.
    cpu_at_roll: Option<u64>,
    frames_in: KindCounts,
    frames_out: KindCounts,
    active_connections: i64,
    active_vus: i64,
    /// Error samples noted so far per kind, over the whole run: past
    /// [`ERROR_SAMPLES`] none is even formatted.
    error_samples_noted: [u8; ErrorKind::ALL.len()],
    violations: ViolationTally,
    delivery: DeliveryTally,
    /// Upload counters per metric (indexed by [`MetricId`]).
    uploads: Vec<UploadTally>,
}

/// Moves a non-empty histogram out, leaving a fresh one; an empty one stays put.
fn take_hist(h: &mut Histogram<u64>) -> Option<Histogram<u64>> {
    if h.is_empty() {
        None
    } else {
        Some(std::mem::replace(h, new_histogram()))
    }
}

impl Recorder {
    /// A recorder for the metrics named in `metric_names` (indexed by [`MetricId`]), with a
    /// process-unique worker id.
    pub fn new(metric_names: &[String]) -> Self {
        Self::with_id(
            NEXT_AUTO_WORKER.fetch_add(1, Ordering::Relaxed),
            metric_names,
        )
    }

    /// A recorder for worker `idx` (the worker thread's index). Use one recorder per index:
    /// the aggregator keeps the latest gauges per worker id.
    pub fn with_worker(idx: usize, metric_names: &[String]) -> Self {
        Self::with_id(idx as u64, metric_names)
    }

    fn with_id(worker: u64, metric_names: &[String]) -> Self {
        let n = metric_names.len();
        Recorder {
            worker,
            latency: (0..n).map(|_| new_histogram()).collect(),
            service: (0..n).map(|_| new_histogram()).collect(),
            connect: new_histogram(),
            lag: new_histogram(),
            send_late: new_histogram(),
            tally: Tally::default(),
            second: 0,
            cpu_at_roll: None,
            frames_in: KindCounts::new(),
            frames_out: KindCounts::new(),
            active_connections: 0,
            active_vus: 0,
            error_samples_noted: [0; ErrorKind::ALL.len()],
            violations: ViolationTally::default(),
            delivery: DeliveryTally::default(),
            uploads: vec![UploadTally::default(); n],
        }
    }

    /// This recorder's worker id.
    pub fn worker(&self) -> u64 {
        self.worker
    }

    /// A reply for metric `m`: `intended_us` from the time the request should have been sent
    /// (what a user would see), `service_us` from when it actually was. An unknown id is
    /// ignored rather than panicking mid-run.
    pub fn latency(&mut self, m: MetricId, intended_us: u64, service_us: u64) {
        let i = m.0 as usize;
        if let (Some(l), Some(s)) = (self.latency.get_mut(i), self.service.get_mut(i)) {
            l.saturating_record(intended_us);
            s.saturating_record(service_us);
            // The gap is how late the request left: the generator's own lateness, shown
            // beside latency rather than only inside it.
            if intended_us > service_us {
                self.send_late.saturating_record(intended_us - service_us);
            }
        }
    }

    /// A connection came up after `us`: opened +1, active connections +1, one operation.
    pub fn connect_ok(&mut self, us: u64) {
        self.connect.saturating_record(us);
        self.tally.opened += 1;
        self.tally.ops += 1;
        self.active_connections += 1;
    }

    /// A connection attempt failed: failed by cause, one error, one operation.
    pub fn connect_failed(&mut self, cause: FailCause) {
        *self.tally.failed.entry(cause).or_default() += 1;
        self.tally.ops += 1;
    }

    /// A connection attempt failed, and why in one line for people: as
    /// [`Recorder::connect_failed`], and the first [`FAIL_SAMPLES`] distinct details of each
    /// cause are kept (cut to [`FAIL_DETAIL_MAX`] bytes).
    pub fn connect_failed_because(&mut self, cause: FailCause, detail: &str) {
        self.connect_failed(cause);
        note_sample(self.tally.failed_samples.entry(cause).or_default(), detail);
    }

    /// A connection ended with close `code` (`None`: dropped without a close frame).
    /// Active connections −1.
    pub fn closed(&mut self, code: Option<u16>) {
        *self.tally.closed.entry(code).or_default() += 1;
        self.active_connections -= 1;
    }

    /// An inbound frame of message kind `kind` with `bytes` of payload.
    pub fn frame_in(&mut self, kind: Option<&str>, bytes: usize) {
        self.frames_in.count(kind, bytes);
    }

    /// An outbound frame of message kind `kind` with `bytes` of payload.
    pub fn frame_out(&mut self, kind: Option<&str>, bytes: usize) {
        self.frames_out.count(kind, bytes);
    }

    /// One operation (an `expect` or a paced request): the denominator of `errors.rate`.
    /// Connection attempts count themselves; call this once per expect/request whatever
    /// its outcome, including timeouts.
    pub fn op(&mut self) {
        self.tally.ops += 1;
    }

    /// One error of `kind`.
    pub fn error(&mut self, kind: ErrorKind) {
        self.tally.errors[kind.index()] += 1;
    }

    /// Keeps one occurrence of an error of `kind` (counted on its own by [`error`] or
    /// [`timeout`]): `t` seconds since the start, to VU `vu`, what happened. Only the first
    /// [`ERROR_SAMPLES`] of each kind on this worker are kept, and `detail` is only called
    /// for those.
    ///
    /// [`error`]: Recorder::error
    /// [`timeout`]: Recorder::timeout
    pub fn error_sample(
        &mut self,
        kind: ErrorKind,
        t: f64,
        vu: u64,
        detail: impl FnOnce() -> String,
    ) {
        let noted = &mut self.error_samples_noted[kind.index()];
        if usize::from(*noted) >= ERROR_SAMPLES {
            return;
        }
        *noted += 1;
        let mut detail = detail();
        let mut end = detail.len().min(FAIL_DETAIL_MAX);
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        self.tally
            .error_samples
            .push((kind, ErrorSample { t, vu, detail }));
    }

    /// A deadline passed: a [`ErrorKind::Timeout`] error and, when the wait belongs to
    /// metric `m`, `waited_us` recorded as both its latency and service time, so the tail
    /// shows the timeouts instead of hiding them. Does not count an operation (see [`op`]).
    ///
    /// [`op`]: Recorder::op
    pub fn timeout(&mut self, m: Option<MetricId>, waited_us: u64) {
        self.error(ErrorKind::Timeout);
        if let Some(m) = m {
            self.latency(m, waited_us, waited_us);
        }
    }

    /// `n` sends that could not happen at their intended time (the generator fell behind
    /// or the in-flight window was full).
    pub fn missed(&mut self, n: u64) {
        self.tally.missed += n;
    }

    /// A request went out (or an `expect` began waiting): it must end as a reply, a
    /// timeout or unanswered.
    pub fn request(&mut self) {
        self.tally.requests.sent += 1;
    }

    /// A request's reply arrived.
    pub fn replied(&mut self) {
        self.tally.requests.replies += 1;
    }

    /// A request's deadline passed: [`Recorder::timeout`], and the request ends as a timeout.
    pub fn request_timed_out(&mut self, m: Option<MetricId>, waited_us: u64) {
        self.tally.requests.timeouts += 1;
        self.timeout(m, waited_us);
    }

    /// `n` requests whose connection died before their reply or deadline: `n`
    /// [`ErrorKind::Unanswered`] errors.
    pub fn unanswered(&mut self, n: u64) {
        self.tally.requests.unanswered += n;
        self.tally.errors[ErrorKind::Unanswered.index()] += n;
    }

    /// `n` requests still waiting, before their deadline, when the run's hard stop came:
    /// unanswered, but no error. Nothing says the reply would not have come, and a soak cut
    /// short by `--duration` must not fail `errors.rate == 0` on the requests its own stop
    /// cut off.
    pub fn cut_at_stop(&mut self, n: u64) {
        self.tally.requests.unanswered += n;
    }

    /// An open-model arrival started an iteration (its rate per tick is the load reached).
    pub fn arrival(&mut self) {
        self.tally.arrivals += 1;
    }

    /// An iteration ended, `ok` when it saw no error.
    pub fn iteration(&mut self, ok: bool) {
        if ok {
            self.tally.iterations_ok += 1;
        } else {
            self.tally.iterations_failed += 1;
        }
    }

    /// An iteration of the plan's behaviour number `behaviour` began; it ends as ok,
    /// failed or cut.
    pub fn iteration_started(&mut self, behaviour: usize) {
        self.tally.iterations_started += 1;
        let by = &mut self.tally.started_by_behaviour;
        if by.len() <= behaviour {
            by.resize(behaviour + 1, 0);
        }
        by[behaviour] += 1;
    }

    /// An iteration was cut by the hard stop before it could end on its own.
    pub fn iteration_cut(&mut self) {
        self.tally.iterations_cut += 1;
    }

    /// A connection was still open when its VU was dropped at the hard stop: active
    /// connections −1, counted as open at the stop rather than closed.
    pub fn abandoned(&mut self) {
        self.tally.abandoned += 1;
        self.active_connections -= 1;
    }

    /// A VU started: active VUs +1.
    pub fn vu_started(&mut self) {
        self.active_vus += 1;
    }

    /// A VU stopped: active VUs −1.
    pub fn vu_stopped(&mut self) {
        self.active_vus -= 1;
    }

    /// A scheduling-lag probe: a timer meant to fire now fired `us` late.
    pub fn lag(&mut self, us: u64) {
        self.lag.saturating_record(us);
    }

    /// A lateness probe fired `late_us` late, of which the thread spent `runqueue_us`
    /// runnable but waiting for a CPU (other work on the machine; `None`: not known).
    /// Records the lateness, and a stall when the rest — stopped, blocked, or busy with
    /// its own work — is at least [`STALL_US`].
    ///
    /// [`STALL_US`]: super::health::STALL_US
    pub fn probe(&mut self, late_us: u64, runqueue_us: Option<u64>) {
        self.lag(late_us);
        let own = late_us.saturating_sub(runqueue_us.unwrap_or(0));
        if own >= super::health::STALL_US {
            self.tally.stalls += 1;
            self.tally.longest_stall_us = self.tally.longest_stall_us.max(own);
        }
    }

    /// A frame was checked against its schema.
    pub fn checked(&mut self) {
        self.violations.checked += 1;
    }

    /// A checked frame broke its protocol; `t` is seconds since the run started.
    pub fn violations(
        &mut self,
        found: &[crate::protocol::Violation],
        frame: &str,
        t: f64,
        vu: u64,
    ) {
        self.violations.record(found, frame, t, vu);
    }

    /// A tracked inbound frame of a delivery stream.
    pub fn delivered(&mut self, seen: Seen) {
        self.delivery.count(seen);
    }

    /// An upload of metric `m` started or ended. An unknown id is ignored.
    pub fn upload(&mut self, m: MetricId, e: UploadEvent) {
        if let Some(u) = self.uploads.get_mut(m.0 as usize) {
            u.count(e);
        }
    }

    /// Everything since the previous take, as a [`Snapshot`]; counters and histograms
    /// restart from zero, gauges carry on. The snapshot has no series bucket: the
    /// aggregator counts it in the interval its next tick closes (see [`roll`](Self::roll)).
    pub fn take(&mut self) -> Snapshot {
        self.snapshot(None, 0, None)
    }

    /// Closes the current series bucket at a tick boundary: a snapshot of everything
    /// since the previous roll, tagged with that bucket, with this thread's CPU time
    /// over it. Events go to bucket `next` from now on (`next` > the current bucket; a
    /// worker that slept through boundaries skips the buckets it had nothing in).
    /// Call it on the thread that records, so the CPU time is that thread's.
    pub fn roll(&mut self, next: u32) -> Snapshot {
        let second = self.second;
        self.second = next.max(second.saturating_add(1));
        let cpu = thread_cpu_ns();
        let prev = std::mem::replace(&mut self.cpu_at_roll, cpu);
        let cpu_us = cpu.zip(prev).map(|(c, p)| c.saturating_sub(p) / 1_000);
        self.snapshot(Some(second), self.second, cpu_us)
    }

    /// The worker's last snapshot: the open bucket, marked final, so the aggregator
    /// stops waiting for this worker.
    pub fn last(&mut self) -> Snapshot {
        let mut s = self.roll(u32::MAX);
        s.upto = u32::MAX;
        s
    }

    /// Starts this thread's CPU accounting (call on the recording thread at its start).
    pub fn start_cpu(&mut self) {
        self.cpu_at_roll = thread_cpu_ns();
    }

    fn snapshot(&mut self, second: Option<u32>, upto: u32, cpu_us: Option<u64>) -> Snapshot {
        Snapshot {
            worker: self.worker,
            latency: self.latency.iter_mut().map(take_hist).collect(),
            service: self.service.iter_mut().map(take_hist).collect(),
            connect: take_hist(&mut self.connect),
            lag: take_hist(&mut self.lag),
            send_late: take_hist(&mut self.send_late),
            second,
            upto,
            cpu_us,
            tally: std::mem::take(&mut self.tally),
            violations: std::mem::take(&mut self.violations),
            kinds_in: self.frames_in.take(),
            kinds_out: self.frames_out.take(),
            active_connections: self.active_connections,
            active_vus: self.active_vus,
            delivery: std::mem::take(&mut self.delivery),
            uploads: if self.uploads.iter().all(UploadTally::is_empty) {
                Vec::new()
            } else {
                let fresh = vec![UploadTally::default(); self.uploads.len()];
                std::mem::replace(&mut self.uploads, fresh)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["ack".into(), "rpc".into()]
    }

    #[test]
    fn timeout_records_at_the_deadline() {
        let mut r = Recorder::with_worker(0, &names());
        r.timeout(Some(MetricId(1)), 2_000_000);
        r.timeout(None, 5_000_000);
        let s = r.take();
        assert_eq!(s.tally.errors[ErrorKind::Timeout.index()], 2);
        let h = s.latency[1].as_ref().unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.equivalent(h.max(), 2_000_000));
        assert!(s.service[1]
            .as_ref()
            .unwrap()
            .equivalent(h.max(), 2_000_000));
        assert!(s.latency[0].is_none());
    }

    #[test]
    fn take_returns_deltas_and_keeps_gauges() {
        let mut r = Recorder::with_worker(3, &names());
        r.connect_ok(1500);
        r.connect_ok(1500);
        r.vu_started();
        r.closed(Some(1000));
        r.frame_in(Some("welcome"), 10);
        let s = r.take();
        assert_eq!(s.worker(), 3);
        assert_eq!((s.tally.opened, s.tally.ops), (2, 2));
        assert_eq!((s.active_connections, s.active_vus), (1, 1));
        assert_eq!(s.kinds_in.len(), 1);
        let s2 = r.take();
        assert_eq!(s2.tally.opened, 0);
        assert!(s2.kinds_in.is_empty() && s2.connect.is_none());
        assert_eq!((s2.active_connections, s2.active_vus), (1, 1));
    }

    #[test]
    fn roll_tags_buckets_and_skips_slept_ones() {
        let mut r = Recorder::with_worker(0, &names());
        r.start_cpu();
        r.frame_in(None, 1);
        let a = r.roll(1);
        assert_eq!((a.second, a.upto), (Some(0), 1));
        assert!(a.cpu_us.is_some());
        r.frame_in(None, 1);
        let b = r.roll(4);
        assert_eq!((b.second, b.upto), (Some(1), 4));
        let c = r.roll(2);
        assert_eq!((c.second, c.upto), (Some(4), 5), "never goes back");
        let d = r.last();
        assert_eq!((d.second, d.upto), (Some(5), u32::MAX));
        assert_eq!(r.take().second, None);
    }

    #[test]
    fn a_stall_is_lateness_not_spent_waiting_for_a_cpu() {
        let mut r = Recorder::with_worker(0, &names());
        r.probe(500_000, Some(2_000));
        r.probe(90_000, None);
        r.probe(300_000, Some(290_000));
        let s = r.take();
        assert_eq!((s.tally.stalls, s.tally.longest_stall_us), (1, 498_000));
        assert_eq!(s.lag.unwrap().len(), 3);
    }

    #[test]
    fn late_sends_are_kept_apart() {
        let mut r = Recorder::with_worker(0, &names());
        r.latency(MetricId(0), 1_500, 1_000);
        r.latency(MetricId(0), 800, 800);
        let s = r.take();
        let late = s.send_late.unwrap();
        assert_eq!(late.len(), 1);
        assert!(late.equivalent(late.max(), 500));
    }

    #[test]
    fn snapshot_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Snapshot>();
    }
}
