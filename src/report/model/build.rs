//! Building the [`Model`] from [`Results`]: each section's rows, formatted once.

use super::{
    rule_text, status_label, Connections, Errors, GroupView, HealthView, KindRow, LatencyRow,
    Model, RowKind, ThresholdRow, Traffic, Verdict, ViolationsView,
};
use crate::report::fmt::{fmt_bytes, fmt_us, ranked, rate};
use crate::results::{Results, Status, Summary};

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
            connections: connections(r),
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
            thresholds: threshold_rows(r),
            health: health(r),
            delivery: crate::report::flows::delivery(r),
            uploads: crate::report::flows::uploads(r),
        }
    }
}

/// Connection attempts, failures and closes, causes and codes ranked.
fn connections(r: &Results) -> Connections {
    let c = &r.counters.connections;
    Connections {
        opened: c.opened,
        failed: c.failed,
        failed_by_cause: ranked(&c.failed_by_cause),
        closed: c.closed,
        closed_by_code: ranked(&c.closed_by_code),
        open_at_stop: c.open_at_stop,
        failed_samples: c
            .failed_samples
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.first()?.clone())))
            .collect(),
    }
}

/// The thresholds, in scenario order.
fn threshold_rows(r: &Results) -> Vec<ThresholdRow> {
    r.thresholds
        .iter()
        .map(|t| ThresholdRow {
            pass: t.pass,
            not_measured: t.not_measured,
            expr: t.expr.clone(),
            message: t.message.clone(),
        })
        .collect()
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
