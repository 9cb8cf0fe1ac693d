//! The report's view model: every figure the terminal summary, the HTML report and the
//! comparison show, computed and formatted once from [`Results`], so that all of them print
//! the same numbers.

use super::fmt::{fmt_bytes, fmt_us, ranked, rate};
use crate::results::{Results, Status, Summary};

/// Column headings of a latency row, in the order of [`LatencyRow::cells`].
pub const LATENCY_COLUMNS: [&str; 6] = ["count", "p50", "p90", "p99", "p99.9", "max"];

/// Everything a report shows, formatted.
#[derive(Debug, Clone)]
pub struct Model {
    /// Scenario name.
    pub scenario: String,
    /// Target URL.
    pub target: String,
    /// `running`, `complete`, `interrupted` or `aborted`.
    pub status: &'static str,
    /// The answer to "did it pass?", first thing in the summary and the report.
    pub verdict: Verdict,
    /// Why the run stopped early, when it did.
    pub reason: Option<String>,
    /// Messages that must not be missed: an unfinished run, a saturated generator.
    pub banners: Vec<String>,
    /// Run metadata as (label, value).
    pub meta: Vec<(&'static str, String)>,
    /// `10.0s`: how long the run lasted.
    pub duration: String,
    /// `10.0s`: how long it was planned to last.
    pub planned: String,
    /// Most VUs at once.
    pub peak_vus: u64,
    /// Most connections at once.
    pub peak_connections: u64,
    /// Iterations that ended well.
    pub iterations_ok: u64,
    /// Iterations that failed.
    pub iterations_failed: u64,
    /// Iterations the hard stop cut.
    pub iterations_cut: u64,
    /// What became of the requests waited on.
    pub requests: crate::results::RequestCounts,
    /// Connection attempts and ends.
    pub connections: Connections,
    /// Inbound then outbound traffic.
    pub traffic: [Traffic; 2],
    /// Frames by direction and kind (inbound first, most frequent first).
    pub kinds: Vec<KindRow>,
    /// Per metric a latency row, then its service row; the connect row last.
    pub latency: Vec<LatencyRow>,
    /// The metrics measured closed loop (send, then wait), with samples.
    pub closed_loop: Vec<String>,
    /// Errors over operations.
    pub errors: Errors,
    /// Protocol checking.
    pub violations: ViolationsView,
    /// Threshold outcomes, in scenario order.
    pub thresholds: Vec<ThresholdRow>,
    /// Generator health.
    pub health: HealthView,
    /// Fan-out delivery, when the scenario tracked it.
    pub delivery: Option<super::flows::DeliveryView>,
    /// Upload steps, by metric.
    pub uploads: Vec<super::flows::UploadView>,
}

/// The run's verdict in a word, and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `PASS`, `FAIL`, `INTERRUPTED`, `ABORTED` or `RUNNING` (the exit code's meaning).
    pub word: &'static str,
    /// E.g. `6 of 6 thresholds held; 3175 frames checked, no violations`.
    pub detail: String,
}

/// Connection counters.
#[derive(Debug, Clone)]
pub struct Connections {
    /// Established.
    pub opened: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failed attempts by cause, largest first.
    pub failed_by_cause: Vec<(String, u64)>,
    /// Connections that ended.
    pub closed: u64,
    /// Ends by close code (`none`: no close frame), largest first.
    pub closed_by_code: Vec<(String, u64)>,
    /// Still open when the run ended.
    pub open_at_stop: u64,
    /// Per failure cause, the first detail recorded: (cause, detail).
    pub failed_samples: Vec<(String, String)>,
}

/// Frames and bytes in one direction.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// `in` or `out`.
    pub dir: &'static str,
    /// Frames.
    pub frames: u64,
    /// `12.5/s`.
    pub frame_rate: String,
    /// `1.5MB`.
    pub bytes: String,
    /// `150.0kB/s`.
    pub byte_rate: String,
}

/// Frames of one kind in one direction.
#[derive(Debug, Clone)]
pub struct KindRow {
    /// `in` or `out`.
    pub dir: &'static str,
    /// The kind (`(other)` past the cap, `(auto-reply)`, `(non-json)`...).
    pub kind: String,
    /// Frames.
    pub frames: u64,
    /// `12.5/s`.
    pub frame_rate: String,
    /// `1.5MB`.
    pub bytes: String,
    /// `42.0%`: share of the direction's frames.
    pub share: String,
}

/// Which histogram a latency row summarises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// From the intended send time.
    Latency,
    /// From the actual send time.
    Service,
    /// Connection setup.
    Connect,
}

/// One histogram's figures.
#[derive(Debug, Clone)]
pub struct LatencyRow {
    /// Metric name (`connect` for the connect row).
    pub metric: String,
    /// Which histogram.
    pub kind: RowKind,
    /// `latency rtt`, `service rtt` or `connect`.
    pub label: String,
    /// Samples.
    pub count: u64,
    /// p50, p90, p99, p99.9 and max, formatted; `None` without samples.
    pub cells: Option<[String; 5]>,
    /// A service row identical to its latency row (nothing was paced): the terminal
    /// summary leaves it out.
    pub same_as_latency: bool,
}

/// What the summary and report say under the latency table when some metrics were
/// measured closed loop.
pub const CLOSED_LOOP_NOTE: &str = "sent, then waited for: a stalled server also holds back \
     the requests behind the slow one, so each stall counts once, not for every request it \
     delayed (coordinated omission); `pace: { rate: ... }` sends on a schedule and charges \
     every delayed request";

/// Errors over operations.
#[derive(Debug, Clone)]
pub struct Errors {
    /// All errors.
    pub count: u64,
    /// Operations (the denominator).
    pub ops: u64,
    /// `0.25%`.
    pub rate: String,
    /// By kind, largest first.
    pub by_kind: Vec<(String, u64)>,
    /// Sends that could not happen at their intended time.
    pub missed: u64,
    /// The first occurrences of each kind (kinds largest first): (kind, `12.3s`, VU,
    /// detail).
    pub samples: Vec<(String, String, u64, String)>,
}

/// Protocol checking.
#[derive(Debug, Clone)]
pub struct ViolationsView {
    /// Frames checked.
    pub checked: u64,
    /// Violations in all.
    pub total: u64,
    /// Frames with at least one.
    pub frames: u64,
    /// Grouped, most frequent first.
    pub groups: Vec<GroupView>,
    /// Violations past the group cap, in no group.
    pub folded: u64,
    /// Why nothing was checked, when `checked` is 0.
    pub unchecked_why: &'static str,
}

/// One kind of violation.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// How many.
    pub count: u64,
    /// `in` or `out`.
    pub dir: &'static str,
    /// Frame kind.
    pub kind: String,
    /// JSON Schema keyword (or squall's own: `unknown_kind`, `json`...).
    pub keyword: String,
    /// JSON pointer into the frame; `/` for the whole frame.
    pub pointer: String,
    /// Whose rule was broken: `document`, or `squall's decision` where the document is silent.
    pub rule: &'static str,
    /// (message, frame text, seconds since start, VU) of the first offending frames.
    pub samples: Vec<(String, String, f64, u64)>,
}

/// A threshold's outcome.
#[derive(Debug, Clone)]
pub struct ThresholdRow {
    /// Held?
    pub pass: bool,
    /// Neither held nor broken: what it reads was never measured in a shortened run.
    pub not_measured: bool,
    /// As written.
    pub expr: String,
    /// E.g. `p99 12.3ms < 50ms`.
    pub message: String,
}

/// Generator health.
#[derive(Debug, Clone)]
pub struct HealthView {
    /// The generator was the bottleneck.
    pub saturated: bool,
    /// `CPU mean 0.40 / peak 0.90 of 2 cores` or `CPU not sampled`.
    pub cpu: String,
    /// Scheduling lag p99.
    pub lag_p99: String,
    /// Largest scheduling lag.
    pub lag_max: String,
    /// The rest of what was measured: stalls, late sends, missed sends, open files.
    pub measured: String,
    /// Why it counts as saturated (empty when it kept up).
    pub reasons: Vec<String>,
    /// Warnings raised during the run.
    pub warnings: Vec<String>,
}

impl Model {
    /// The view of `r`. Cheap: reads the stored summaries, decodes no histogram.
    pub fn new(r: &Results) -> Model {
        let m = &r.meta;
        let secs = |s: f64| format!("{s:.1}s");
        Model {
            scenario: m.scenario_name.clone(),
            target: m.target.clone(),
            status: status_label(r.status),
            verdict: verdict(r),
            reason: r.status_reason.clone(),
            banners: banners(r),
            meta: meta(r),
            duration: secs(m.duration_s),
            planned: secs(m.planned_duration_s),
            peak_vus: r.load.peak_vus,
            peak_connections: r.load.peak_connections,
            iterations_ok: r.load.iterations_ok,
            iterations_failed: r.load.iterations_failed,
            iterations_cut: r.load.iterations_cut,
            requests: r.counters.requests,
            connections: Connections {
                opened: r.counters.connections.opened,
                failed: r.counters.connections.failed,
                failed_by_cause: ranked(&r.counters.connections.failed_by_cause),
                closed: r.counters.connections.closed,
                closed_by_code: ranked(&r.counters.connections.closed_by_code),
                open_at_stop: r.counters.connections.open_at_stop,
                failed_samples: r
                    .counters
                    .connections
                    .failed_samples
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.first()?.clone())))
                    .collect(),
            },
            traffic: traffic(r),
            kinds: kinds(r),
            latency: latency_rows(r),
            closed_loop: r
                .metrics
                .iter()
                .filter(|(_, m)| m.timing.closed_loop() && m.latency.count > 0)
                .map(|(name, _)| name.clone())
                .collect(),
            errors: errors(r),
            violations: violations(r),
            thresholds: r
                .thresholds
                .iter()
                .map(|t| ThresholdRow {
                    pass: t.pass,
                    not_measured: t.not_measured,
                    expr: t.expr.clone(),
                    message: t.message.clone(),
                })
                .collect(),
            health: health(r),
            delivery: super::flows::delivery(r),
            uploads: super::flows::uploads(r),
        }
    }
}

/// `complete`, `interrupted`...
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Complete => "complete",
        Status::Interrupted => "interrupted",
        Status::Aborted => "aborted",
    }
}

/// PASS or FAIL for a run that ran its course (as the exit code: thresholds and schema
/// violations), else how it ended; with the thresholds and checking behind it.
fn verdict(r: &Results) -> Verdict {
    let word = match r.status {
        Status::Complete if r.passed() => "PASS",
        Status::Complete => "FAIL",
        Status::Interrupted => "INTERRUPTED",
        Status::Aborted => "ABORTED",
        Status::Running => "RUNNING",
    };
    let mut parts = Vec::new();
    let t = &r.thresholds;
    let failed: Vec<&str> = t
        .iter()
        .filter(|t| !t.pass && !t.not_measured)
        .map(|t| t.expr.as_str())
        .collect();
    let unmeasured = t.iter().filter(|t| t.not_measured).count();
    let held = t.iter().filter(|t| t.pass).count();
    if t.is_empty() {
        parts.push("no thresholds".to_string());
    } else if failed.is_empty() {
        parts.push(format!("{held} of {} thresholds held", t.len()));
    } else {
        parts.push(format!(
            "{} of {} thresholds failed: {}",
            failed.len(),
            t.len(),
            failed.join(", ")
        ));
    }
    if unmeasured > 0 {
        parts.push(format!(
            "{unmeasured} not measured (a behaviour never ran in this shortened run)"
        ));
    }
    let v = &r.violations;
    parts.push(match (v.checked, v.total) {
        (0, _) => r.unchecked_why().to_string(),
        (n, 0) => format!("{n} frames checked, no violations"),
        (n, total) => format!("{total} violations in {} of {n} frames checked", v.frames),
    });
    if r.status != Status::Complete {
        parts.insert(0, "no verdict on a run that did not finish".into());
    }
    Verdict {
        word,
        detail: parts.join("; "),
    }
}

fn banners(r: &Results) -> Vec<String> {
    let mut b = Vec::new();
    let why = r
        .status_reason
        .as_deref()
        .map_or(String::new(), |w| format!(" ({w})"));
    match r.status {
        Status::Interrupted => b.push(format!(
            "The run was interrupted{why}: the figures cover {:.1}s of the planned {:.1}s.",
            r.meta.duration_s, r.meta.planned_duration_s
        )),
        Status::Aborted => b.push(format!("The run was aborted{why}.")),
        Status::Running => b.push(
            "The run never finished writing this file (it is still going, or it crashed).".into(),
        ),
        Status::Complete => {}
    }
    if r.health.generator_saturated {
        // Files from before `reasons` existed say only that it was saturated.
        let why = if r.health.reasons.is_empty() {
            "its CPU or scheduling lag was saturated".to_string()
        } else {
            r.health.reasons.join("; ")
        };
        b.push(format!(
            "The generator was the bottleneck ({why}), so latencies partly measure squall \
                 rather than the target."
        ));
    }
    b
}

fn meta(r: &Results) -> Vec<(&'static str, String)> {
    let m = &r.meta;
    vec![
        ("scenario", m.scenario_name.clone()),
        ("scenario file", m.scenario_file.clone()),
        ("scenario sha256", m.scenario_sha256.clone()),
        ("protocol", m.protocol.clone().unwrap_or_else(|| "-".into())),
        ("target", m.target.clone()),
        ("status", status_label(r.status).into()),
        ("seed", m.seed.to_string()),
        ("load model", m.load_model.clone()),
        ("started", m.started_at.clone()),
        ("ended", m.ended_at.clone().unwrap_or_else(|| "-".into())),
        (
            "duration",
            format!("{:.1}s of {:.1}s", m.duration_s, m.planned_duration_s),
        ),
        ("tool version", format!("squall {}", m.tool_version)),
        (
            "machine",
            format!("{}, {} worker threads", m.host, m.threads),
        ),
    ]
}

fn traffic(r: &Results) -> [Traffic; 2] {
    let c = &r.counters;
    let d = r.meta.duration_s;
    let one = |dir, frames, bytes| Traffic {
        dir,
        frames,
        frame_rate: format!("{:.1}/s", rate(frames, d)),
        bytes: fmt_bytes(bytes as f64),
        byte_rate: format!("{}/s", fmt_bytes(rate(bytes, d))),
    };
    [
        one("in", c.frames_in, c.bytes_in),
        one("out", c.frames_out, c.bytes_out),
    ]
}

fn kinds(r: &Results) -> Vec<KindRow> {
    let c = &r.counters;
    let mut rows = Vec::new();
    for (dir, kinds, total) in [
        ("in", &c.kinds_in, c.frames_in),
        ("out", &c.kinds_out, c.frames_out),
    ] {
        let mut v: Vec<_> = kinds.iter().collect();
        v.sort_by(|a, b| b.1.frames.cmp(&a.1.frames).then(a.0.cmp(b.0)));
        rows.extend(v.into_iter().map(|(kind, k)| KindRow {
            dir,
            kind: kind.clone(),
            frames: k.frames,
            frame_rate: format!("{:.1}/s", rate(k.frames, r.meta.duration_s)),
            bytes: fmt_bytes(k.bytes as f64),
            share: format!("{:.1}%", 100.0 * k.frames as f64 / total.max(1) as f64),
        }));
    }
    rows
}

fn row(metric: &str, kind: RowKind, label: String, s: &Summary) -> LatencyRow {
    let t = |v: u64| fmt_us(v as f64);
    LatencyRow {
        metric: metric.into(),
        kind,
        label,
        count: s.count,
        cells: (s.count > 0).then(|| [t(s.p50), t(s.p90), t(s.p99), t(s.p99_9), t(s.max)]),
        same_as_latency: false,
    }
}

fn latency_rows(r: &Results) -> Vec<LatencyRow> {
    let mut rows = Vec::new();
    for (name, m) in &r.metrics {
        rows.push(row(
            name,
            RowKind::Latency,
            format!("latency {name}"),
            &m.latency,
        ));
        let mut service = row(
            name,
            RowKind::Service,
            format!("service {name}"),
            &m.service,
        );
        service.same_as_latency = m.service == m.latency;
        rows.push(service);
    }
    rows.push(row(
        "connect",
        RowKind::Connect,
        "connect".into(),
        &r.connect,
    ));
    rows
}

fn errors(r: &Results) -> Errors {
    let c = &r.counters;
    let pct = if c.ops > 0 {
        100.0 * c.errors as f64 / c.ops as f64
    } else {
        0.0
    };
    Errors {
        count: c.errors,
        ops: c.ops,
        rate: format!("{pct:.2}%"),
        by_kind: ranked(&c.errors_by_kind),
        missed: c.missed,
        samples: ranked(&c.errors_by_kind)
            .iter()
            .flat_map(|(kind, _)| {
                c.error_samples
                    .get(kind)
                    .into_iter()
                    .flatten()
                    .map(move |s| (kind, s))
            })
            .map(|(kind, s)| (kind.clone(), format!("{:.1}s", s.t), s.vu, s.detail.clone()))
            .collect(),
    }
}

fn violations(r: &Results) -> ViolationsView {
    let v = &r.violations;
    ViolationsView {
        checked: v.checked,
        total: v.total,
        frames: v.frames,
        folded: v.folded,
        unchecked_why: r.unchecked_why(),
        groups: v
            .groups
            .iter()
            .map(|g| GroupView {
                count: g.count,
                dir: g.dir.as_str(),
                kind: g.kind.clone(),
                keyword: g.keyword.clone(),
                pointer: if g.pointer.is_empty() {
                    "/".into()
                } else {
                    g.pointer.clone()
                },
                rule: rule_text(g.source),
                samples: g
                    .samples
                    .iter()
                    .map(|s| (s.message.clone(), s.frame.clone(), s.t, s.vu))
                    .collect(),
            })
            .collect(),
    }
}

/// `stalls none, sends late max 1.2ms, missed sends 0, open files 38 of 1024`.
fn health_measured(h: &crate::results::Health) -> String {
    let stalls = match (h.stalls, h.longest_stall_at_s) {
        (0, _) => "stalls none".to_string(),
        (n, at) => format!(
            "stalls {n}, longest {}{}",
            fmt_us(h.longest_stall_us as f64),
            at.map_or(String::new(), |t| format!(" (t={t:.0}s)"))
        ),
    };
    let files = match (h.fd_peak, h.fd_limit) {
        (Some(p), Some(l)) => format!(", open files {p} of {l}"),
        _ => String::new(),
    };
    format!(
        "{stalls}, sends late max {}, missed sends {}{files}",
        fmt_us(h.send_late_max_us as f64),
        h.missed_sends
    )
}

fn health(r: &Results) -> HealthView {
    let h = &r.health;
    HealthView {
        saturated: h.generator_saturated,
        cpu: match (h.cpu_mean, h.cpu_peak) {
            (Some(m), Some(p)) => {
                format!("own CPU mean {m:.2} / peak {p:.2} of {:.0} cores", h.cores)
            }
            _ => "CPU not sampled".into(),
        },
        lag_p99: fmt_us(h.lag_p99_us as f64),
        lag_max: fmt_us(h.lag_max_us as f64),
        measured: health_measured(h),
        reasons: h.reasons.clone(),
        warnings: h.warnings.clone(),
    }
}

/// How a violation's source reads in the report, the summary and JUnit.
pub fn rule_text(source: crate::protocol::RuleSource) -> &'static str {
    match source {
        crate::protocol::RuleSource::Document => "document",
        crate::protocol::RuleSource::Squall => "squall's decision",
    }
}
