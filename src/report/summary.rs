//! The end-of-run terminal summary, rendered from [`Results`] alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::results::{Results, Summary};

/// A duration in µs for people: `850µs`, `1.25ms`, `12.3ms`, `250ms`, `1.50s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 100_000.0 {
        format!("{:.1}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A byte count for people, in decimal units: `512B`, `1.5kB`, `12.0MB`, `3.2GB`.
pub fn fmt_bytes(b: f64) -> String {
    match b {
        b if b < 1e3 => format!("{b:.0}B"),
        b if b < 1e6 => format!("{:.1}kB", b / 1e3),
        b if b < 1e9 => format!("{:.1}MB", b / 1e6),
        b => format!("{:.1}GB", b / 1e9),
    }
}

/// `key n, key n` for a counter map, largest first; `-` when empty.
fn fmt_map(m: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// A per-second rate over the run, 0 for a run of no length.
fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn hist_row(out: &mut String, label: &str, s: &Summary) {
    let t = |v: u64| fmt_us(v as f64);
    if s.count == 0 {
        let _ = writeln!(out, "  {label:<24} {:>8}  no samples", 0);
        return;
    }
    let _ = writeln!(
        out,
        "  {label:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        s.count,
        t(s.p50),
        t(s.p90),
        t(s.p99),
        t(s.p99_9),
        t(s.max)
    );
}

fn traffic(out: &mut String, r: &Results) {
    let c = &r.counters;
    let d = r.meta.duration_s;
    for (dir, frames, bytes) in [
        ("in ", c.frames_in, c.bytes_in),
        ("out", c.frames_out, c.bytes_out),
    ] {
        let _ = writeln!(
            out,
            "frames {dir}   {frames} ({:.1}/s)   {} ({}/s)",
            rate(frames, d),
            fmt_bytes(bytes as f64),
            fmt_bytes(rate(bytes, d))
        );
    }
}

fn latencies(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "  {:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, m) in &r.metrics {
        hist_row(out, &format!("latency {name}"), &m.latency);
        // The service row only earns its line when it tells something new.
        if m.service != m.latency {
            hist_row(out, &format!("  service {name}"), &m.service);
        }
    }
    hist_row(out, "connect", &r.connect);
}

fn verdicts(out: &mut String, r: &Results) {
    if r.thresholds.is_empty() {
        return;
    }
    let _ = writeln!(out, "thresholds");
    for t in &r.thresholds {
        let mark = if t.pass { '✓' } else { '✗' };
        let _ = writeln!(out, "  {mark} {:<36} {}", t.expr, t.message);
    }
}

fn health(out: &mut String, r: &Results) {
    let h = &r.health;
    let cpu = match (h.cpu_mean, h.cpu_peak) {
        (Some(m), Some(p)) => format!("CPU mean {m:.2} / peak {p:.2} of {:.0} cores", h.cores),
        _ => "CPU not sampled".into(),
    };
    let verdict = if h.generator_saturated {
        "SATURATED"
    } else {
        "ok"
    };
    let _ = writeln!(
        out,
        "generator {verdict}: {cpu}, lag p99 {} max {}",
        fmt_us(h.lag_p99_us as f64),
        fmt_us(h.lag_max_us as f64)
    );
    for w in &h.warnings {
        let _ = writeln!(out, "  ! {w}");
    }
}

/// The end-of-run table: status, load, connections, traffic, latencies, errors, closes,
/// violations, thresholds and generator health. Plain text, about 20–40 lines for a typical run.
pub fn render_summary(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.meta;
    let status = format!("{:?}", r.status).to_lowercase();
    let _ = writeln!(out, "squall {}: {} → {}", status, m.scenario_name, m.target);
    if let Some(reason) = &r.status_reason {
        let _ = writeln!(out, "  reason: {reason}");
    }
    let l = &r.load;
    let _ = writeln!(
        out,
        "duration {:.1}s of {:.1}s   peak VUs {}   peak connections {}   iterations {} ok, {} failed",
        m.duration_s, m.planned_duration_s, l.peak_vus, l.peak_connections, l.iterations_ok,
        l.iterations_failed
    );
    let c = &r.counters;
    let cn = &c.connections;
    let _ = writeln!(
        out,
        "connections   opened {}   failed {} ({})   closed {} ({})",
        cn.opened,
        cn.failed,
        fmt_map(&cn.failed_by_cause),
        cn.closed,
        fmt_map(&cn.closed_by_code)
    );
    traffic(&mut out, r);
    latencies(&mut out, r);
    let pct = if c.ops > 0 {
        100.0 * c.errors as f64 / c.ops as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "errors {} of {} ops ({pct:.2}%): {}   missed sends {}",
        c.errors,
        c.ops,
        fmt_map(&c.errors_by_kind),
        c.missed
    );
    delivery(&mut out, r);
    uploads(&mut out, r);
    violations(&mut out, r);
    verdicts(&mut out, r);
    health(&mut out, r);
    out
}

/// Protocol checking: a line, then the most frequent violations with a sample each.
fn violations(out: &mut String, r: &Results) {
    let v = &r.violations;
    if v.checked == 0 {
        let _ = writeln!(out, "frames checked 0 (no protocol profile, or --no-check)");
        return;
    }
    let _ = writeln!(
        out,
        "frames checked {}   violations {} in {} frames",
        v.checked, v.total, v.frames
    );
    for g in v.groups.iter().take(8) {
        let at = if g.pointer.is_empty() {
            "/"
        } else {
            &g.pointer
        };
        let _ = writeln!(
            out,
            "  ✗ {:>6}× {} {} {} at {}",
            g.count,
            g.dir.as_str(),
            g.kind,
            g.keyword,
            at
        );
        if let Some(s) = g.samples.first() {
            let frame: String = s.frame.chars().take(100).collect();
            let _ = writeln!(out, "      {}  e.g. {frame}", s.message);
        }
    }
    if v.groups.len() > 8 {
        let _ = writeln!(
            out,
            "  … {} more kinds of violation in results.json",
            v.groups.len() - 8
        );
    }
}

/// Fan-out delivery: one line when the scenario tracks it.
fn delivery(out: &mut String, r: &Results) {
    let Some(d) = &r.delivery else { return };
    let complete = d
        .completeness
        .map_or("-".to_string(), |c| format!("{:.3}%", c * 100.0));
    let per_s = rate(d.received, r.meta.duration_s);
    let _ = write!(
        out,
        "delivery {} received ({per_s:.1}/s) in {} streams   gaps {}   reordered {}   duplicates {}   completeness {complete}",
        d.received,
        d.streams,
        d.gaps,
        d.reordered,
        d.duplicates,
    );
    if d.untracked > 0 {
        let _ = write!(out, "   untracked {}", d.untracked);
    }
    out.push('\n');
}

/// Uploads: one line per upload metric.
fn uploads(out: &mut String, r: &Results) {
    for (name, u) in &r.uploads {
        let mbps = u.mbps.map_or("-".to_string(), |m| format!("{m:.2} MB/s"));
        let _ = writeln!(
            out,
            "upload {name}   {} started, {} completed, {} rejected, {} failed   {} at {mbps}",
            u.started,
            u.completed,
            u.rejected,
            u.failed,
            fmt_bytes(u.bytes as f64)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(fmt_us(850.0), "850µs");
        assert_eq!(fmt_us(1_250.0), "1.25ms");
        assert_eq!(fmt_us(12_340.0), "12.3ms");
        assert_eq!(fmt_us(250_000.0), "250ms");
        assert_eq!(fmt_us(1_500_000.0), "1.50s");
        assert_eq!(fmt_bytes(512.0), "512B");
        assert_eq!(fmt_bytes(1_500.0), "1.5kB");
        assert_eq!(fmt_bytes(12_000_000.0), "12.0MB");
    }
}
