//! The verdict: each scenario threshold evaluated against a run's [`Results`].

use std::collections::BTreeMap;

use crate::results::units::fmt_us;
use crate::results::{Results, Summary, ThresholdOutcome};
use crate::scenario::thresholds::{Cmp, DeliveryStat, Quantity, Stat, Threshold, UploadStat};

/// A measured value and how to show it.
enum Measured {
    /// The value, its unit name, and its rendering for people.
    Value(f64, Unit),
    /// Nothing to measure; the threshold fails with this message.
    Missing(String),
}

#[derive(Clone, Copy)]
enum Unit {
    Micros,
    Ratio,
    PerSec,
    MegabytesPerSec,
    Count,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Micros => "us",
            Unit::Ratio => "ratio",
            Unit::PerSec => "per_s",
            Unit::MegabytesPerSec => "mb_per_s",
            Unit::Count => "count",
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Unit::Micros => fmt_us(v),
            Unit::Ratio => format!("{}%", trim(v * 100.0)),
            Unit::PerSec => format!("{}/s", trim(v)),
            Unit::MegabytesPerSec => format!("{} MB/s", trim(v)),
            Unit::Count => trim(v),
        }
    }
}

/// A number without noise: `3`, `0.5`, `12.35`.
fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn symbol(op: Cmp) -> &'static str {
    match op {
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
    }
}

fn stat_name(stat: Stat) -> String {
    match stat {
        Stat::Min => "min".into(),
        Stat::Mean => "mean".into(),
        Stat::Max => "max".into(),
        Stat::Percentile(p) => format!("p{}", trim(p)),
    }
}

/// A statistic of a summary; unusual percentiles are read from the stored histogram.
fn stat_of(s: Option<&Summary>, stat: Stat, what: &str) -> Measured {
    let Some(s) = s else {
        return Measured::Missing(format!("unknown metric '{what}'"));
    };
    if s.count == 0 {
        return Measured::Missing("no samples".into());
    }
    let v = match stat {
        Stat::Min => s.min as f64,
        Stat::Mean => s.mean,
        Stat::Max => s.max as f64,
        Stat::Percentile(50.0) => s.p50 as f64,
        Stat::Percentile(90.0) => s.p90 as f64,
        Stat::Percentile(99.0) => s.p99 as f64,
        Stat::Percentile(99.9) => s.p99_9 as f64,
        Stat::Percentile(p) => match s.histogram() {
            Ok(h) => h.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64,
            Err(e) => return Measured::Missing(e.to_string()),
        },
    };
    Measured::Value(v, Unit::Micros)
}

/// `violations` (all kinds) or `violations[kind]`.
fn violations(kind: Option<&str>, r: &Results) -> (String, Measured) {
    let count = |n: u64| Measured::Value(n as f64, Unit::Count);
    let Some(kind) = kind else {
        return ("violations".into(), count(r.violations.total));
    };
    let n = r
        .violations
        .groups
        .iter()
        .filter(|g| g.kind == kind)
        .map(|g| g.count)
        .sum::<u64>();
    // Folded violations may be of this kind: count them too, so a gate never passes on what
    // the group cap hid.
    (
        format!("violations[{kind}]"),
        count(n + r.violations.folded),
    )
}

fn measure(q: &Quantity, r: &Results) -> (String, Measured) {
    let c = &r.counters;
    let count = |n: u64| Measured::Value(n as f64, Unit::Count);
    let per_s = |n: u64| {
        let d = r.meta.duration_s;
        Measured::Value(if d > 0.0 { n as f64 / d } else { 0.0 }, Unit::PerSec)
    };
    match q {
        Quantity::Latency { metric, stat } => (
            stat_name(*stat),
            stat_of(r.metrics.get(metric).map(|m| &m.latency), *stat, metric),
        ),
        Quantity::Service { metric, stat } => (
            stat_name(*stat),
            stat_of(r.metrics.get(metric).map(|m| &m.service), *stat, metric),
        ),
        Quantity::Connect(stat) => (
            stat_name(*stat),
            stat_of(Some(&r.connect), *stat, "connect"),
        ),
        Quantity::ErrorsCount => ("errors".into(), count(c.errors)),
        Quantity::ErrorsRate => {
            let rate = if c.ops > 0 {
                c.errors as f64 / c.ops as f64
            } else {
                0.0
            };
            ("error rate".into(), Measured::Value(rate, Unit::Ratio))
        }
        Quantity::ErrorsOfKind(k) => (
            k.clone(),
            count(c.errors_by_kind.get(k).copied().unwrap_or(0)),
        ),
        Quantity::ConnectionsFailed => ("failed".into(), count(c.connections.failed)),
        Quantity::ConnectionsOpened => ("opened".into(), count(c.connections.opened)),
        Quantity::ThroughputIn => ("in".into(), per_s(c.frames_in)),
        Quantity::ThroughputOut => ("out".into(), per_s(c.frames_out)),
        Quantity::Iterations => (
            "iterations".into(),
            count(r.load.iterations_ok + r.load.iterations_failed),
        ),
        Quantity::Missed => ("missed".into(), count(c.missed)),
        Quantity::Delivery(stat) => delivery(*stat, r),
        Quantity::Upload { metric, stat } => upload(metric, *stat, r),
        // A run that checked nothing cannot vouch for conformance: no vacuous pass.
        _ if r.violations.checked == 0 => (
            "violations".into(),
            Measured::Missing(r.unchecked_why().into()),
        ),
        Quantity::Violations(kind) => violations(kind.as_deref(), r),
        Quantity::ViolationsRate => {
            let rate = r.violations.frames as f64 / r.violations.checked as f64;
            ("violation rate".into(), Measured::Value(rate, Unit::Ratio))
        }
    }
}

/// A delivery figure. Everything but `received` needs at least one tracked frame: zero gaps
/// over nothing is not a pass.
fn delivery(stat: DeliveryStat, r: &Results) -> (String, Measured) {
    let label = format!("delivery {}", delivery_name(stat));
    let Some(d) = &r.delivery else {
        return (
            label,
            Measured::Missing("no delivery tracking in this run".into()),
        );
    };
    let n = match stat {
        DeliveryStat::Received => d.received,
        _ if d.received == 0 => {
            let why = "no delivery frames were tracked (no frame carried a sequence number)";
            return (label, Measured::Missing(why.into()));
        }
        DeliveryStat::Gaps => d.gaps,
        DeliveryStat::Reordered => d.reordered,
        DeliveryStat::Duplicates => d.duplicates,
        DeliveryStat::Completeness => {
            let c = d.completeness.unwrap_or(0.0);
            return (label, Measured::Value(c, Unit::Ratio));
        }
    };
    (label, Measured::Value(n as f64, Unit::Count))
}

fn delivery_name(stat: DeliveryStat) -> &'static str {
    match stat {
        DeliveryStat::Received => "received",
        DeliveryStat::Gaps => "gaps",
        DeliveryStat::Reordered => "reordered",
        DeliveryStat::Duplicates => "duplicates",
        DeliveryStat::Completeness => "completeness",
    }
}

/// An upload figure; throughput needs a completed upload.
fn upload(metric: &str, stat: UploadStat, r: &Results) -> (String, Measured) {
    let u = r.uploads.get(metric);
    let count = |n: Option<u64>| Measured::Value(n.unwrap_or(0) as f64, Unit::Count);
    match stat {
        UploadStat::Mbps => {
            let m = match u.and_then(|u| u.mbps) {
                Some(v) => Measured::Value(v, Unit::MegabytesPerSec),
                None => Measured::Missing(format!("no '{metric}' upload completed")),
            };
            (format!("{metric} throughput"), m)
        }
        UploadStat::Completed => (format!("{metric} completed"), count(u.map(|u| u.completed))),
        UploadStat::Rejected => (format!("{metric} rejected"), count(u.map(|u| u.rejected))),
        UploadStat::Failed => (format!("{metric} failed"), count(u.map(|u| u.failed))),
    }
}

/// The unit a quantity is measured in, for outcomes without a value.
fn unit_of(q: &Quantity) -> Unit {
    match q {
        Quantity::Latency { .. } | Quantity::Service { .. } | Quantity::Connect(_) => Unit::Micros,
        Quantity::ErrorsRate | Quantity::ViolationsRate => Unit::Ratio,
        Quantity::Delivery(DeliveryStat::Completeness) => Unit::Ratio,
        Quantity::Upload {
            stat: UploadStat::Mbps,
            ..
        } => Unit::MegabytesPerSec,
        Quantity::ThroughputIn | Quantity::ThroughputOut => Unit::PerSec,
        _ => Unit::Count,
    }
}

/// Evaluates every threshold against `r`, in order.
///
/// `errors.rate` is errors / ops (0 when there were no ops); throughput is frames over
/// `meta.duration_s`; `iterations.count` counts ended iterations, ok or failed. A latency
/// threshold on a metric without samples fails with the message `no samples`.
pub fn evaluate(thresholds: &[Threshold], r: &Results) -> Vec<ThresholdOutcome> {
    thresholds.iter().map(|t| outcome(t, r)).collect()
}

/// Says why a threshold on a metric read nothing when no behaviour that records into it
/// ever began an iteration (`by_metric`: by metric name, the
/// behaviours that record into it). In a run `--duration` cut shorter than its scenario
/// (`cut`) that is the cut's doing, not the target's: the threshold becomes
/// [`ThresholdOutcome::not_measured`] (neither held nor broken). In a full-length run it
/// stays as evaluated, its message naming the idle behaviours.
pub fn note_idle_behaviours(
    r: &mut Results,
    thresholds: &[Threshold],
    by_metric: &BTreeMap<String, Vec<String>>,
    cut: bool,
) {
    let mut notes = Vec::new();
    for t in thresholds {
        let metric = match &t.lhs {
            Quantity::Latency { metric, .. }
            | Quantity::Service { metric, .. }
            | Quantity::Upload { metric, .. } => Some(metric),
            _ => None,
        };
        let idle = metric
            .and_then(|m| by_metric.get(m))
            .filter(|bs| !bs.is_empty())
            .filter(|bs| {
                bs.iter()
                    .all(|b| r.load.iterations_by_behaviour.get(b).copied().unwrap_or(0) == 0)
            });
        notes.push(idle.map(|bs| {
            let names: Vec<String> = bs.iter().map(|b| format!("'{b}'")).collect();
            let s = if bs.len() == 1 { "" } else { "s" };
            format!("behaviour{s} {} never began an iteration", names.join(", "))
        }));
    }
    for (o, note) in r.thresholds.iter_mut().zip(notes) {
        let Some(note) = note else { continue };
        if cut && !o.pass {
            o.not_measured = true;
            o.message = format!(
                "not measured: {note} in this run, which --duration cut shorter than the \
                 scenario (run it at full length to measure it)"
            );
        } else if !o.pass {
            o.message = format!("{} ({note})", o.message);
        }
    }
}

fn outcome(t: &Threshold, r: &Results) -> ThresholdOutcome {
    let (label, measured) = measure(&t.lhs, r);
    match measured {
        Measured::Value(v, unit) => {
            let pass = t.op.holds(v, t.rhs);
            ThresholdOutcome {
                expr: t.source.clone(),
                pass,
                actual: Some(v),
                unit: unit.name().into(),
                message: format!(
                    "{label} {} {} {}",
                    unit.show(v),
                    symbol(t.op),
                    unit.show(t.rhs)
                ),
                not_measured: false,
            }
        }
        Measured::Missing(message) => ThresholdOutcome {
            expr: t.source.clone(),
            pass: false,
            actual: None,
            unit: unit_of(&t.lhs).name().into(),
            message,
            not_measured: false,
        },
    }
}
