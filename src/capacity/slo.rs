//! `--slo` expressions: the threshold syntax of a scenario's `thresholds:`, checked against
//! the scenario's metrics, with errors that point at the place in the text.

use crate::scenario::plan::{Plan, Pos};
use crate::scenario::thresholds::{self, Quantity, Threshold};

/// A `--slo` that does not parse or names something the scenario lacks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--slo \"{text}\": {message}\n  {text}\n  {caret}^\n  {hint}")]
pub struct SloError {
    /// The expression as given.
    pub text: String,
    /// What is wrong.
    pub message: String,
    /// Spaces up to the byte where the problem starts (under the echoed text).
    caret: String,
    /// What to write instead.
    hint: String,
}

impl SloError {
    fn new(text: &str, offset: usize, message: String, hint: &str) -> Self {
        let offset = offset.min(text.len());
        SloError {
            text: text.to_string(),
            message,
            caret: " ".repeat(text[..offset].chars().count()),
            hint: hint.to_string(),
        }
    }
}

const HINT: &str = "write e.g. --slo \"latency.rtt.p99 < 50ms\" or --slo \"errors.rate < 0.1%\"";

/// Parses every `--slo`, in order; the first that fails is the error.
pub fn parse_all(texts: &[String], plan: &Plan) -> Result<Vec<Threshold>, SloError> {
    texts.iter().map(|t| parse_one(t, plan)).collect()
}

fn parse_one(text: &str, plan: &Plan) -> Result<Threshold, SloError> {
    let (lhs, op, rhs) =
        thresholds::parse(text).map_err(|e| SloError::new(text, e.offset, e.message, HINT))?;
    if let Quantity::Latency { metric, .. } | Quantity::Service { metric, .. } = &lhs {
        if !plan.metrics.iter().any(|m| m == metric) {
            let at = text.find(metric.as_str()).unwrap_or(0);
            let known = plan.metrics.join(", ");
            return Err(SloError::new(
                text,
                at,
                format!("the scenario has no latency metric '{metric}'"),
                &format!("its metrics: {known}"),
            ));
        }
    }
    Ok(Threshold {
        source: text.trim().to_string(),
        pos: Pos::default(),
        lhs,
        op,
        rhs,
    })
}

/// The tightest latency bound among `slo` (µs), for the trend test's tolerance.
pub fn tightest_latency_us(slo: &[Threshold]) -> Option<f64> {
    slo.iter()
        .filter(|t| matches!(t.lhs, Quantity::Latency { .. } | Quantity::Service { .. }))
        .map(|t| t.rhs)
        .reduce(f64::min)
}

/// The metric the knee plots draw: the first latency SLO's, else the scenario's first.
pub fn plotted_metric(slo: &[Threshold], plan: &Plan) -> Option<String> {
    slo.iter()
        .find_map(|t| match &t.lhs {
            Quantity::Latency { metric, .. } => Some(metric.clone()),
            _ => None,
        })
        .or_else(|| plan.metrics.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        crate::capacity::test_plan(crate::capacity::PING)
    }

    #[test]
    fn a_bad_unit_is_pointed_at() {
        let e = parse_all(&["latency.rtt.p99 < 50xs".into()], &plan()).unwrap_err();
        let text = e.to_string();
        // The caret stands under the unit.
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("--slo \"latency.rtt.p99 < 50xs\": "),
            "{text}"
        );
        assert_eq!(lines[1], "  latency.rtt.p99 < 50xs");
        assert_eq!(
            lines[2].find('^'),
            Some(2 + "latency.rtt.p99 < 50".len()),
            "{text}"
        );
        assert!(
            lines[3].contains("--slo \"latency.rtt.p99 < 50ms\""),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_metric_names_the_known_ones() {
        let e = parse_all(&["latency.rpc.p99 < 50ms".into()], &plan()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("no latency metric 'rpc'"), "{text}");
        assert!(text.contains("its metrics: rtt"), "{text}");
        assert_eq!(
            text.lines().nth(2).unwrap().find('^'),
            Some(2 + 8),
            "{text}"
        );
    }

    #[test]
    fn good_slos_parse_and_the_tightest_bound_is_found() {
        let slo = parse_all(
            &[
                "latency.rtt.p99 < 50ms".into(),
                "errors.rate < 0.1%".into(),
                "latency.rtt.p50 < 10ms".into(),
            ],
            &plan(),
        )
        .unwrap();
        assert_eq!(slo.len(), 3);
        assert_eq!(tightest_latency_us(&slo), Some(10_000.0));
        assert_eq!(plotted_metric(&slo, &plan()).as_deref(), Some("rtt"));
    }
}
