//! How each metric of a plan is measured: on a schedule, or closed loop (send, then wait),
//! so results, summary and report can say which latencies a stalled server can hide in.

use std::collections::BTreeMap;

use crate::report::Timing;
use crate::scenario::plan::{Plan, Step};

/// The timing of each metric of `plan`, indexed like `plan.metrics`; `None` for a metric no
/// step records into.
pub fn metric_timing(plan: &Plan) -> Vec<Option<Timing>> {
    let mut out = vec![None; plan.metrics.len()];
    let mut note = |m: usize, t: Timing| {
        if let Some(slot) = out.get_mut(m) {
            *slot = Some(match *slot {
                Some(old) if old != t => Timing::Mixed,
                _ => t,
            });
        }
    };
    for b in &plan.behaviours {
        walk(&b.steps, &mut note);
    }
    if let Some(m) = plan.delivery.as_ref().and_then(|d| d.metric) {
        note(m.0 as usize, Timing::Delivery);
    }
    out
}

/// By metric name, the names of the behaviours with a step that records into it.
pub fn metric_behaviours(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in &plan.behaviours {
        walk(&b.steps, &mut |m, _| {
            if let Some(metric) = plan.metrics.get(m) {
                let names = out.entry(metric.clone()).or_default();
                if !names.contains(&b.name) {
                    names.push(b.name.clone());
                }
            }
        });
    }
    out
}

fn walk(steps: &[Step], note: &mut impl FnMut(usize, Timing)) {
    for step in steps {
        match step {
            Step::Expect(e) => {
                if let Some(m) = e.metric {
                    note(m.0 as usize, Timing::ClosedLoop);
                }
            }
            Step::Pace(p) => {
                let t = match p.rate {
                    Some(_) => Timing::Paced,
                    None => Timing::ClosedLoop,
                };
                for r in &p.requests {
                    note(r.metric.0 as usize, t);
                }
            }
            Step::Burst { rejected, .. } => {
                if let Some(m) = rejected.as_ref().and_then(|r| r.metric) {
                    note(m.0 as usize, Timing::ClosedLoop);
                }
            }
            Step::Upload(u) => note(u.metric.0 as usize, Timing::ClosedLoop),
            Step::Repeat { steps, .. } => walk(steps, note),
            Step::Continue(step) => walk(std::slice::from_ref(step), note),
            Step::Choose { branches } => {
                for (_, steps) in branches {
                    walk(steps, note);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_str, LoadOptions};

    #[test]
    fn paced_closed_loop_and_mixed_metrics_are_told_apart() {
        let yaml = r#"
name: t
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - name: a
    steps:
      - send: { type: ping, id: "1" }
      - expect: { kind: pong, metric: ack }
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 10/s, count: 3, reply: { kind: pong }, metric: rtt }
      - repeat: { count: 2 }
        steps:
          - pace: { send: { type: ping, id: "{{seq}}" }, count: 3, reply: { kind: pong }, metric: loop }
      - choose:
          - weight: 1
            steps:
              - pace: { send: { type: ping, id: "{{seq}}" }, count: 3, reply: { kind: pong }, metric: both }
          - weight: 1
            steps:
              - pace: { send: { type: ping, id: "{{seq}}" }, rate: 5/s, count: 3, reply: { kind: pong }, metric: both }
"#;
        let plan = load_str("t.yaml", yaml, &LoadOptions::default()).expect("loads");
        let timing = metric_timing(&plan);
        let of = |name: &str| {
            let i = plan.metrics.iter().position(|m| m == name).unwrap();
            timing[i]
        };
        assert_eq!(of("ack"), Some(Timing::ClosedLoop));
        assert_eq!(of("rtt"), Some(Timing::Paced));
        assert_eq!(of("loop"), Some(Timing::ClosedLoop));
        assert_eq!(of("both"), Some(Timing::Mixed));
    }
}
