//! `stream_logs`: per-connection simulated log streams, each a backlog of `tail_lines` lines
//! sent in bounded bursts, then (with `follow`) new lines at the event rate until
//! `stop_stream`. Driven by the session's timer; nothing here grows without a cap.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use tokio::time::{Duration, Instant};

use super::wire::{
    dns_label_ok, dns_subdomain_ok, id_ok, to_string, Code, DataFrame, Details, Failure,
    StreamLogsData,
};
use crate::clock::now_rfc3339;

/// Log streams one connection may run at once.
pub const MAX_STREAMS: usize = 8;

/// Backlog lines one stream sends at most (a larger `tail_lines` is clamped).
pub const MAX_TAIL: u64 = 1_000;

/// Backlog when `tail_lines` is absent (what `kubectl logs --tail` shows with a selector).
pub const DEFAULT_TAIL: u64 = 10;

/// Backlog lines sent per timer call, so the writes of other frames interleave.
const TAIL_BURST: u64 = 100;

/// Follow lines per second per stream at most, whatever `--events` says.
pub const MAX_RATE: f64 = 1_000.0;

/// Shortest gap between two timer calls of one followed stream: high rates send several
/// lines per call rather than waking once per line.
const MIN_TICK: Duration = Duration::from_millis(10);

const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
const MESSAGES: [&str; 4] = [
    "Request processed successfully",
    "GET /api/v1/health 200",
    "Slow response from upstream: 812ms",
    "Connection reset by peer",
];

struct Stream {
    /// The `stream_logs` request id, echoed as `data.stream_id`.
    id: String,
    pod: String,
    container: Option<String>,
    /// Backlog lines still to send.
    tail: u64,
    follow: bool,
    /// Lines sent so far, the last one's `seq`.
    seq: u64,
    /// Whether lines carry `seq` (an extension; not under `--strict-doc`).
    show_seq: bool,
    /// When following began, and follow lines sent since.
    followed: Option<(Instant, u64)>,
    next: Option<Instant>,
}

#[derive(Serialize)]
struct Line<'a> {
    stream_id: &'a str,
    timestamp: &'a str,
    level: &'a str,
    message: &'a str,
    pod: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a str>,
}

impl Stream {
    fn line(&mut self, rng: &mut ThreadRng) -> String {
        self.seq += 1;
        let timestamp = now_rfc3339();
        let line = Line {
            stream_id: &self.id,
            timestamp: &timestamp,
            level: LEVELS[rng.random_range(0..LEVELS.len())],
            message: MESSAGES[rng.random_range(0..MESSAGES.len())],
            pod: &self.pod,
            container: self.container.as_deref(),
        };
        to_string(&DataFrame {
            kind: "log_entry",
            id: None,
            timestamp: &timestamp,
            data: line,
            seq: Some(self.seq).filter(|_| self.show_seq),
        })
    }

    /// Sends what is due at `now`; false once the stream has nothing more to send.
    fn run(&mut self, now: Instant, rate: f64, out: &mut impl FnMut(String)) -> bool {
        let mut rng = rand::rng();
        if self.tail > 0 {
            let n = self.tail.min(TAIL_BURST);
            for _ in 0..n {
                out(self.line(&mut rng));
            }
            self.tail -= n;
            self.next = Some(now);
            if self.tail > 0 {
                return true;
            }
        }
        if !self.follow {
            return false;
        }
        if rate <= 0.0 {
            self.next = None;
            return true;
        }
        let (start, sent) = self.followed.get_or_insert((now, 0));
        let due = (now.duration_since(*start).as_secs_f64() * rate) as u64;
        // After a stall, send at most a second's worth.
        let n = due.saturating_sub(*sent).min(rate.ceil() as u64);
        *sent = due.max(*sent);
        let next = *start + Duration::from_secs_f64((*sent + 1) as f64 / rate);
        self.next = Some(next.max(now + MIN_TICK));
        for _ in 0..n {
            out(self.line(&mut rng));
        }
        true
    }
}

/// One connection's log streams.
pub(crate) struct Streams {
    list: Vec<Stream>,
    /// Follow lines per second per stream; 0 sends the backlog only.
    rate: f64,
    /// Whether lines carry `seq`.
    show_seq: bool,
}

impl Streams {
    /// No streams; followed ones send `rate` lines per second (capped at [`MAX_RATE`]).
    pub fn new(rate: f64) -> Self {
        Streams {
            list: Vec::new(),
            rate: rate.clamp(0.0, MAX_RATE),
            show_seq: true,
        }
    }

    /// Whether log lines carry their number in the stream, `seq` (a reference-server
    /// extension: `--strict-doc` leaves it out).
    pub fn with_seq(mut self, shown: bool) -> Self {
        self.show_seq = shown;
        self
    }

    /// Starts stream `id`; its first lines go out at the next timer call (now).
    pub fn start(
        &mut self,
        id: &str,
        data: &StreamLogsData<'_>,
        now: Instant,
    ) -> Result<(), Failure> {
        check(data)?;
        if self.list.iter().any(|s| s.id == id) {
            return Err(Failure::format(format!(
                "stream '{id}' is already running; stop it or use another id"
            )));
        }
        if self.list.len() >= MAX_STREAMS {
            let message =
                format!("Maximum number of concurrent log streams ({MAX_STREAMS}) exceeded");
            let failure = Failure::new(Code::SubscriptionLimitExceeded, "stream_limit", message);
            return Err(failure.with(Details::Streams {
                current_streams: self.list.len(),
                requested_stream: id.to_owned(),
            }));
        }
        self.list.push(Stream {
            id: id.to_owned(),
            pod: data.pod.clone().into_owned(),
            container: data.container.as_ref().map(|c| c.clone().into_owned()),
            tail: data.tail_lines.unwrap_or(DEFAULT_TAIL).min(MAX_TAIL),
            follow: data.follow.unwrap_or(true),
            seq: 0,
            show_seq: self.show_seq,
            followed: None,
            next: Some(now),
        });
        Ok(())
    }

    /// Stops stream `id`; false when no such stream runs.
    pub fn stop(&mut self, id: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.id != id);
        self.list.len() < before
    }

    /// Streams running.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// When the next line is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.list.iter().filter_map(|s| s.next).min()
    }

    /// Sends every line due at `now`; a stream without `follow` ends after its backlog.
    pub fn run(&mut self, now: Instant, mut out: impl FnMut(String)) {
        let rate = self.rate;
        self.list.retain_mut(|s| match s.next {
            Some(at) if at <= now => s.run(now, rate, &mut out),
            _ => true,
        });
    }
}

/// The request's fields must be what its schema accepts (they are echoed in every line).
fn check(data: &StreamLogsData<'_>) -> Result<(), Failure> {
    if !id_ok(&data.workspace_id) {
        return Err(Failure::format(
            "'workspace_id' must have 1 to 256 characters",
        ));
    }
    if !dns_label_ok(&data.namespace) {
        return Err(Failure::format("'namespace' must be a DNS label"));
    }
    if !dns_subdomain_ok(&data.pod) {
        return Err(Failure::format("'pod' must be a DNS subdomain"));
    }
    if data.container.as_deref().is_some_and(|c| !dns_label_ok(c)) {
        return Err(Failure::format("'container' must be a DNS label"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn data(tail: Option<u64>, follow: Option<bool>) -> StreamLogsData<'static> {
        StreamLogsData {
            workspace_id: Cow::Borrowed("ws-1"),
            namespace: Cow::Borrowed("frontend"),
            pod: Cow::Borrowed("api-server-abc123"),
            container: Some(Cow::Borrowed("api")),
            follow,
            tail_lines: tail,
        }
    }

    fn run(streams: &mut Streams, now: Instant) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        streams.run(now, |l| out.push(serde_json::from_str(&l).unwrap()));
        out
    }

    #[test]
    fn backlog_in_bursts_then_follow_at_the_rate() {
        let t0 = Instant::now();
        let mut s = Streams::new(100.0);
        s.start("cmd-1", &data(Some(150), None), t0).unwrap();
        assert_eq!(s.deadline(), Some(t0));
        let first = run(&mut s, t0);
        assert_eq!(first.len(), 100);
        assert_eq!(first[0]["data"]["stream_id"], "cmd-1");
        assert_eq!(first[99]["seq"], 100);
        assert_eq!(
            run(&mut s, t0).len(),
            50,
            "rest of the backlog, then following starts"
        );
        let t1 = t0 + Duration::from_millis(100);
        let lines = run(&mut s, t1);
        assert_eq!(lines.len(), 10, "100 lines/s for 100 ms");
        assert_eq!(lines[9]["seq"], 160);
        assert!(s.deadline().unwrap() > t1);
        assert!(s.stop("cmd-1") && !s.stop("cmd-1"));
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn without_follow_the_stream_ends_after_its_backlog() {
        let t0 = Instant::now();
        let mut s = Streams::new(10.0);
        s.start("a", &data(Some(3), Some(false)), t0).unwrap();
        assert_eq!(run(&mut s, t0).len(), 3);
        assert_eq!(s.len(), 0);
        let mut quiet = Streams::new(0.0);
        quiet.start("b", &data(Some(0), None), t0).unwrap();
        assert!(run(&mut quiet, t0).is_empty());
        assert_eq!(
            (quiet.len(), quiet.deadline()),
            (1, None),
            "rate 0: follows silently"
        );
    }

    #[test]
    fn limits_and_checks() {
        let t0 = Instant::now();
        let mut s = Streams::new(10.0);
        for i in 0..MAX_STREAMS {
            s.start(&format!("s{i}"), &data(None, None), t0).unwrap();
        }
        let f = s.start("one-more", &data(None, None), t0).unwrap_err();
        assert_eq!(f.code, Code::SubscriptionLimitExceeded);
        let f = s.start("s0", &data(None, None), t0).unwrap_err();
        assert_eq!(f.code, Code::InvalidMessageFormat, "duplicate id");
        let mut bad = data(None, None);
        bad.pod = Cow::Borrowed("Not_A_Pod");
        assert!(Streams::new(1.0).start("x", &bad, t0).is_err());
        let mut s = Streams::new(1.0);
        s.start("big", &data(Some(u64::MAX), Some(false)), t0)
            .unwrap();
        let total: usize = (0..20).map(|_| run(&mut s, t0).len()).sum();
        assert_eq!(total as u64, MAX_TAIL);
    }
}
