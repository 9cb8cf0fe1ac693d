//! How a step is judged: good, bad (and why), or not a verdict on the target at all
//! because the target failed or squall itself was the bottleneck.

use super::knob::Knob;
use crate::metrics::health::MISSED_REASON;
use crate::report::capacity::{Step, Verdict};
use crate::report::{fmt_us, Results, Status, ThresholdOutcome};

/// The verdict on a step and its reasons. `whole` is the step's run; `step` holds the
/// measured window's figures; `knob` names what was missed and what to do about it.
pub fn classify(whole: &Results, step: &Step, knob: &Knob) -> (Verdict, Vec<String>) {
    if let Some(none) = no_verdict(whole) {
        return none;
    }
    let mut why = broken(step);
    if step.missed > 0 {
        if why.is_empty() {
            // The target kept up, yet arrivals did not start: the generator could not
            // offer the rate (every max_vus slot busy, or it fell behind).
            return (
                Verdict::GeneratorLimited,
                vec![format!(
                    "{} {} missed while the target kept up: {}",
                    step.missed,
                    knob.sends(),
                    knob.missed_hint()
                )],
            );
        }
        why.push(format!(
            "{} {} missed: {}",
            step.missed,
            knob.sends(),
            match knob {
                Knob::Arrivals => "every slot was held by iterations waiting on the target",
                Knob::Pace { .. } =>
                    "every connection's window was full of requests waiting on the target",
            }
        ));
    }
    let verdict = if why.is_empty() {
        Verdict::Good
    } else {
        Verdict::Bad
    };
    (verdict, why)
}

/// A step that says nothing of the target: interrupted, aborted, or run while squall was
/// the bottleneck.
fn no_verdict(whole: &Results) -> Option<(Verdict, Vec<String>)> {
    let reason = || vec![whole.status_reason.clone().unwrap_or_default()];
    match whole.status {
        Status::Interrupted => return Some((Verdict::Interrupted, reason())),
        Status::Aborted => return Some((Verdict::TargetFailed, reason())),
        _ => {}
    }
    // Stalls, lateness under load, a busy CPU, no file descriptors: the generator's own
    // limits. Latency measured then is partly squall's, so the step says nothing.
    let own: Vec<String> = whole
        .health
        .reasons
        .iter()
        .filter(|r| !r.contains(MISSED_REASON))
        .map(|r| format!("generator saturated: {r}"))
        .collect();
    (!own.is_empty()).then_some((Verdict::GeneratorLimited, own))
}

/// What the target broke in the measured window: SLOs, a steady latency, requests timed
/// out, connections lost or failed.
fn broken(step: &Step) -> Vec<String> {
    let mut why: Vec<String> = step
        .slo
        .iter()
        .filter(|t| !t.pass)
        .map(|t| format!("{} broken ({})", t.expr, measured(t)))
        .collect();
    if let Some(t) = step.trend.as_ref().filter(|t| t.rising) {
        why.push(format!(
            "latency rising: median {} in the first half, {} in the second (steady allows {} more)",
            fmt_us(t.first_half_us),
            fmt_us(t.second_half_us),
            fmt_us(t.limit_us)
        ));
    }
    let q = &step.requests;
    if q.timeouts > 0 {
        why.push(format!("{} requests timed out", q.timeouts));
    }
    // A request still waiting when the step stops was cut before its deadline by the
    // step's own end: no evidence either way. Requests lost with a connection the target
    // closed or dropped are.
    if step.connections_lost > 0 {
        why.push(format!(
            "{} connections lost ({} requests unanswered)",
            step.connections_lost, q.unanswered
        ));
    }
    if step.connections_failed > 0 {
        why.push(format!("{} connections failed", step.connections_failed));
    }
    why
}

/// What a threshold measured, for people: `p99 451ms`, `12 errors`, `0.5%`.
fn measured(t: &ThresholdOutcome) -> String {
    match (t.actual, t.unit.as_str()) {
        (None, _) => t.message.clone(),
        (Some(v), "us") => format!("measured {}", fmt_us(v)),
        (Some(v), "ratio") => format!("measured {:.3}%", v * 100.0),
        (Some(v), "per_s") => format!("measured {v:.1}/s"),
        (Some(v), "mb_per_s") => format!("measured {v:.2} MB/s"),
        (Some(v), _) => format!("measured {v}"),
    }
}
