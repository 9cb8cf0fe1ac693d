//! The end-of-run terminal summary: a plain-text renderer of the report [`Model`].

use std::fmt::Write as _;

use super::model::{GroupView, LatencyRow, Model, RowKind, CLOSED_LOOP_NOTE, LATENCY_COLUMNS};
use crate::results::Results;

/// Violation groups listed before the rest are only counted.
const GROUPS_SHOWN: usize = 8;

/// `{open}key ×n, key ×n{close}`, each key named by `name`; nothing when empty.
fn fmt_counts(
    v: &[(String, u64)],
    (open, close): (&str, &str),
    name: impl Fn(&str) -> String,
) -> String {
    if v.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = v.iter().map(|(k, n)| format!("{} ×{n}", name(k))).collect();
    format!("{open}{}{close}", parts.join(", "))
}

const PARENS: (&str, &str) = (" (", ")");

/// `close 1000`, or `no close frame` for a connection that ended without one.
fn close_code(code: &str) -> String {
    match code {
        "none" => "no close frame".into(),
        c => format!("close {c}"),
    }
}

/// Width of the label column: the longest label, 24 at least.
const LABEL_MIN: usize = 24;

fn hist_row(out: &mut String, label: &str, w: usize, r: &LatencyRow) {
    let Some(c) = &r.cells else {
        let _ = writeln!(out, "  {label:<w$} {:>8}  no samples", 0);
        return;
    };
    let _ = writeln!(
        out,
        "  {label:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        r.count, c[0], c[1], c[2], c[3], c[4]
    );
}

fn latencies(out: &mut String, m: &Model) {
    let h = LATENCY_COLUMNS;
    // The service row only earns its line when it tells something new; it is indented.
    let rows: Vec<(String, &LatencyRow)> = m
        .latency
        .iter()
        .filter(|r| !r.same_as_latency)
        .map(|r| match r.kind {
            RowKind::Service => (format!("  {}", r.label), r),
            _ => (r.label.clone(), r),
        })
        .collect();
    let w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .fold(LABEL_MIN, usize::max);
    let _ = writeln!(
        out,
        "  {:<w$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", h[0], h[1], h[2], h[3], h[4], h[5]
    );
    for (label, r) in rows {
        hist_row(out, &label, w, r);
    }
    if !m.closed_loop.is_empty() {
        let names = m.closed_loop.join(", ");
        let _ = writeln!(out, "  closed loop ({names}): {CLOSED_LOOP_NOTE}");
    }
}

fn verdicts(out: &mut String, m: &Model) {
    if m.thresholds.is_empty() {
        return;
    }
    let _ = writeln!(out, "thresholds");
    let w = m
        .thresholds
        .iter()
        .map(|t| t.expr.chars().count())
        .fold(36, usize::max);
    for t in &m.thresholds {
        let mark = match (t.pass, t.not_measured) {
            (true, _) => '✓',
            (false, true) => '–',
            (false, false) => '✗',
        };
        let _ = writeln!(out, "  {mark} {:<w$} {}", t.expr, t.message);
    }
}

fn health(out: &mut String, m: &Model) {
    let h = &m.health;
    let verdict = if h.saturated {
        format!("SATURATED ({})", h.reasons.join("; "))
    } else {
        "ok".to_string()
    };
    let _ = writeln!(
        out,
        "generator {verdict}: {}, lateness p99 {} max {}",
        h.cpu, h.lag_p99, h.lag_max
    );
    let _ = writeln!(out, "  {}", h.measured);
    for w in &h.warnings {
        let _ = writeln!(out, "  ! {w}");
    }
}

/// The end-of-run table of `r`; see [`render_model`].
pub fn render_summary(r: &Results) -> String {
    render_model(&Model::new(r))
}

/// The end-of-run table: status, banners, load, connections, traffic, latencies, errors,
/// violations, thresholds and generator health. Plain text, about 20–40 lines for a
/// typical run; every figure is the HTML report's, from the same [`Model`].
pub fn render_model(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "squall {}: {} → {}", m.status, m.scenario, m.target);
    let verdict = format!("{}: {}", m.verdict.word, m.verdict.detail);
    let _ = writeln!(out, "{verdict}");
    if let Some(reason) = &m.reason {
        let _ = writeln!(out, "  reason: {reason}");
    }
    for b in &m.banners {
        let _ = writeln!(out, "!! {b}");
    }
    load(&mut out, m);
    latencies(&mut out, m);
    errors(&mut out, m);
    flows(&mut out, m);
    violations(&mut out, m);
    verdicts(&mut out, m);
    health(&mut out, m);
    // Again at the end, where the eye lands when the run is over.
    let _ = writeln!(out, "{verdict}");
    out
}

/// The load reached, connections and traffic.
fn load(out: &mut String, m: &Model) {
    let _ = write!(
        out,
        "duration {} of {}   peak VUs {}   peak connections {}   iterations {} ok, {} failed",
        m.duration, m.planned, m.peak_vus, m.peak_connections, m.iterations_ok, m.iterations_failed
    );
    if m.iterations_cut > 0 {
        let _ = write!(out, ", {} cut at the stop", m.iterations_cut);
    }
    out.push('\n');
    let c = &m.connections;
    let _ = write!(
        out,
        "connections   opened {}   failed {}{}   closed {}{}",
        c.opened,
        c.failed,
        fmt_counts(&c.failed_by_cause, PARENS, str::to_owned),
        c.closed,
        fmt_counts(&c.closed_by_code, PARENS, close_code)
    );
    if c.open_at_stop > 0 {
        let _ = write!(out, "   open at the stop {}", c.open_at_stop);
    }
    out.push('\n');
    for (cause, detail) in &c.failed_samples {
        let _ = writeln!(out, "  ✗ {cause}: {detail}");
    }
    for t in &m.traffic {
        let _ = writeln!(
            out,
            "frames {:<3}   {} ({})   {} ({})",
            t.dir, t.frames, t.frame_rate, t.bytes, t.byte_rate
        );
    }
}

/// Errors with the first occurrence of each kind, and what became of the requests.
fn errors(out: &mut String, m: &Model) {
    let e = &m.errors;
    let _ = writeln!(
        out,
        "errors {} of {} ops ({}){}   missed sends {}",
        e.count,
        e.ops,
        e.rate,
        fmt_counts(&e.by_kind, (": ", ""), str::to_owned),
        e.missed
    );
    // The first occurrence of each kind.
    let mut seen: Vec<&str> = Vec::new();
    for (kind, t, vu, detail) in &e.samples {
        if !seen.contains(&kind.as_str()) {
            seen.push(kind);
            let _ = writeln!(out, "  ✗ {kind} first at {t}, VU {vu}: {detail}");
        }
    }
    let q = &m.requests;
    if q.sent > 0 {
        let _ = writeln!(
            out,
            "requests {}: {} answered, {} timed out, {} unanswered",
            q.sent, q.replies, q.timeouts, q.unanswered
        );
    }
}

/// Protocol checking: a line, then the most frequent violations with a sample each.
fn violations(out: &mut String, m: &Model) {
    let v = &m.violations;
    if v.checked == 0 {
        let _ = writeln!(out, "frames checked 0: {}", v.unchecked_why);
        return;
    }
    let decided: u64 = v
        .groups
        .iter()
        .filter(|g| g.rule != "document")
        .map(|g| g.count)
        .sum();
    let _ = writeln!(
        out,
        "frames checked {}   violations {} in {} frames{}",
        v.checked,
        v.total,
        v.frames,
        if decided > 0 {
            format!(
                " ({decided} of squall's decisions where the document is silent: \
                 --conformance document lets them pass)"
            )
        } else {
            String::new()
        }
    );
    for g in v.groups.iter().take(GROUPS_SHOWN) {
        violation_group(out, g);
    }
    if v.groups.len() > GROUPS_SHOWN {
        let _ = writeln!(
            out,
            "  … {} more kinds of violation in results.json",
            v.groups.len() - GROUPS_SHOWN
        );
    }
    if v.folded > 0 {
        let _ = writeln!(
            out,
            "  … {} more violations of further kinds, folded (only {} groups are kept)",
            v.folded,
            v.groups.len()
        );
    }
}

/// One group of violations, with its first sample.
fn violation_group(out: &mut String, g: &GroupView) {
    let _ = writeln!(
        out,
        "  ✗ {:>6}× {} {} {} at {}{}",
        g.count,
        g.dir,
        g.kind,
        g.keyword,
        g.pointer,
        if g.rule == "document" {
            String::new()
        } else {
            format!("  ({})", g.rule)
        }
    );
    if let Some((message, frame, _, _)) = g.samples.first() {
        let frame: String = frame.chars().take(100).collect();
        let _ = writeln!(out, "      {message}  e.g. {frame}");
    }
}

/// Fan-out delivery (one line, when tracked) and uploads (one line per metric).
fn flows(out: &mut String, m: &Model) {
    if let Some(d) = &m.delivery {
        let _ = write!(
            out,
            "delivery {} received ({}) in {} streams   gaps {}   reordered {}   duplicates {}   completeness {}",
            d.received, d.received_rate, d.streams, d.gaps, d.reordered, d.duplicates, d.completeness
        );
        if d.untracked > 0 {
            let _ = write!(out, "   untracked {}", d.untracked);
        }
        if d.resets > 0 {
            let _ = write!(out, "   resets {}", d.resets);
        }
        out.push('\n');
    }
    for u in &m.uploads {
        let _ = write!(
            out,
            "upload {}   {} started, {} completed, {} rejected, {} failed",
            u.metric, u.started, u.completed, u.rejected, u.failed
        );
        if u.cut > 0 {
            let _ = write!(out, ", {} cut at the stop", u.cut);
        }
        let _ = writeln!(out, "   {} at {}", u.bytes, u.mbps);
    }
}
