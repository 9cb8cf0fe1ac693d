//! Which rate a search drives, found from the scenario: an open model's arrival rate, or the
//! per-connection rate of a closed model's one `pace` step (all its connections together
//! send `vus × rate`, the total the search reports). Each step's plan is the scenario's with
//! that rate set and held for the step.

use std::time::Duration;

use crate::report::fmt_rate;
use crate::scenario::plan::{LoadModel, LoadPlan, Pace, Plan, Stage, Step};

/// The rate a search drives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    /// The open model's arrivals per second.
    Arrivals,
    /// The rate of the `pace` step at `index` among the only behaviour's steps, on `vus`
    /// connections (the closed model's peak); a step's total rate is shared out evenly.
    Pace {
        /// Index of the `pace` step in the behaviour's steps.
        index: usize,
        /// Connections that pace (the closed model's peak VUs).
        vus: u64,
    },
}

/// What the search can drive, for the message when a scenario offers neither.
const SUPPORTED: &str = "capacity drives an open model's arrival rate \
     (`load: { model: open, max_vus: N, phases: [...] }`), or the per-connection rate of a \
     closed model's one `pace` step (one behaviour whose steps include exactly one \
     `pace: { rate: R/s, ... }`; the search sets the rate, and the total it reports is \
     VUs × rate)";

/// Finds the rate to drive in `plan`; the error says what the scenario has and what is
/// supported.
pub fn find(plan: &Plan) -> Result<Knob, String> {
    if let LoadModel::Open { .. } = plan.load.model {
        return Ok(Knob::Arrivals);
    }
    let vus = plan.load.peak().round() as u64;
    let nested: usize = plan.behaviours.iter().map(|b| paces(&b.steps)).sum();
    let top: Vec<(usize, &Pace)> = match plan.behaviours.as_slice() {
        [only] => only
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| pace_of(s).map(|p| (i, p)))
            .collect(),
        _ => Vec::new(),
    };
    let why = match (plan.behaviours.len(), nested, top.as_slice()) {
        (1, 1, [(index, p)]) if p.rate.is_some() && vus > 0 => {
            return Ok(Knob::Pace { index: *index, vus })
        }
        (1, 1, [_]) if vus == 0 => "its closed model runs no VUs".to_string(),
        (1, 1, [_]) => "its `pace` step has no `rate:` (a closed loop)".to_string(),
        (n, _, _) if n > 1 => format!("it is a closed model of {n} behaviours"),
        (_, 0, _) => "it is a closed model (VUs) with no `pace` step".to_string(),
        (_, 1, _) => "its `pace` step is inside a `repeat` or `choose`".to_string(),
        (_, n, _) => format!("it is a closed model with {n} `pace` steps"),
    };
    Err(format!(
        "{SUPPORTED}; this scenario cannot be searched: {why}"
    ))
}

/// The `pace` a step is, if any (also under `on_fail: continue`).
fn pace_of(step: &Step) -> Option<&Pace> {
    match step {
        Step::Pace(p) => Some(p),
        Step::Continue(inner) => pace_of(inner),
        _ => None,
    }
}

fn pace_of_mut(step: &mut Step) -> Option<&mut Pace> {
    match step {
        Step::Pace(p) => Some(p),
        Step::Continue(inner) => pace_of_mut(inner),
        _ => None,
    }
}

/// `pace` steps in `steps`, nested ones included.
fn paces(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Pace(_) => 1,
            Step::Continue(inner) => paces(std::slice::from_ref(inner.as_ref())),
            Step::Repeat { steps, .. } => paces(steps),
            Step::Choose { branches } => branches.iter().map(|(_, b)| paces(b)).sum(),
            _ => 0,
        })
        .sum()
}

impl Knob {
    /// `base` with the driven rate at `rate` (the total, per second) held for `step`: the
    /// load jumps straight to its level, which it holds; a paced connection paces for the
    /// whole step (the `pace` step's `count` and `duration` give way to it), the
    /// connections' schedules interleaved evenly.
    pub fn plan(&self, base: &Plan, rate: f64, step: Duration) -> Plan {
        let mut plan = base.clone();
        let level = match *self {
            Knob::Arrivals => rate,
            Knob::Pace { index, vus } => {
                let steps = &mut plan.behaviours[0].steps;
                let each = rate / vus as f64;
                let pace = steps
                    .get_mut(index)
                    .and_then(pace_of_mut)
                    .expect("found by Knob::find");
                pace.rate = Some(each);
                pace.count = None;
                pace.duration = Some(step);
                // Connections that start together would send together, one burst per
                // interval: their schedules interleave instead, evenly spaced.
                pace.spread = vus;
                vus as f64
            }
        };
        // A zero-length stage jumps straight to the level, which the next one holds.
        plan.load = LoadPlan {
            model: base.load.model,
            stages: vec![
                Stage {
                    duration: Duration::ZERO,
                    target: level,
                },
                Stage {
                    duration: step,
                    target: level,
                },
            ],
        };
        plan
    }

    /// A total rate for people: `240/s`, or `240/s (50 connections × 4.8/s)`.
    pub fn total(&self, rate: f64) -> String {
        match *self {
            Knob::Arrivals => format!("{}/s", fmt_rate(rate)),
            Knob::Pace { vus, .. } => format!(
                "{}/s ({vus} connections × {}/s)",
                fmt_rate(rate),
                fmt_rate(rate / vus as f64)
            ),
        }
    }

    /// What a step offers that may be missed: arrivals, or paced requests.
    pub fn sends(&self) -> &'static str {
        match self {
            Knob::Arrivals => "arrivals",
            Knob::Pace { .. } => "paced requests",
        }
    }

    /// What sends missed while the target kept up call for.
    pub fn missed_hint(&self) -> &'static str {
        match self {
            Knob::Arrivals => "raise the scenario's max_vus, or the generator fell behind",
            Knob::Pace { .. } => {
                "raise the pace's in_flight (rate × latency must fit), or the generator fell behind"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::capacity::test_plan as plan;

    const PACE: &str = "pace: { rate: 5/s, duration: 1h, in_flight: 8, send: { type: ping, id: \"{{seq}}\" }, reply: { kind: pong }, metric: rtt }";

    fn closed(steps: &str, behaviours: usize) -> String {
        let mut s = "name: s\ntarget: ws://127.0.0.1:1/ws\nload: { phases: [{ ramp: 2s, vus: 20 }, { hold: 5s }] }\nbehaviours:\n".to_string();
        for i in 0..behaviours {
            s += &format!("  - name: b{i}\n    steps:\n{steps}");
        }
        s
    }

    #[test]
    fn an_open_model_drives_its_arrivals() {
        let p = plan("name: s\ntarget: ws://127.0.0.1:1/ws\nload: { model: open, max_vus: 10, phases: [{ ramp: 3s, rate: 5/s }] }\nbehaviours:\n  - steps:\n      - send: { type: ping }\n");
        let k = find(&p).unwrap();
        assert_eq!(k, Knob::Arrivals);
        let at = k.plan(&p, 250.0, Duration::from_secs(4));
        assert_eq!(at.load.level_at(Duration::ZERO), 250.0);
        assert_eq!(at.load.duration(), Duration::from_secs(4));
    }

    #[test]
    fn a_closed_model_with_one_pace_drives_its_rate_per_connection() {
        let p = plan(&closed(
            &format!("      - expect: {{ kind: welcome, within: 2s }}\n      - {PACE}\n"),
            1,
        ));
        let k = find(&p).unwrap();
        assert_eq!(k, Knob::Pace { index: 1, vus: 20 });
        let at = k.plan(&p, 300.0, Duration::from_secs(4));
        // 20 connections at 15/s each: 300/s in all, for the whole step, from the start.
        assert_eq!(at.load.level_at(Duration::ZERO), 20.0);
        assert_eq!(at.load.duration(), Duration::from_secs(4));
        let Step::Pace(pace) = &at.behaviours[0].steps[1] else {
            panic!("not a pace")
        };
        assert_eq!(pace.rate, Some(15.0));
        assert_eq!(pace.duration, Some(Duration::from_secs(4)));
        assert_eq!(pace.count, None);
        // The 20 connections' schedules interleave.
        assert_eq!(pace.spread, 20);
    }

    #[test]
    fn what_cannot_be_driven_says_what_can() {
        let cases = [
            (
                closed("      - send: { type: ping }\n", 1),
                "closed model (VUs) with no `pace` step",
            ),
            (
                closed(&format!("      - {PACE}\n      - {PACE}\n"), 1),
                "closed model with 2 `pace` steps",
            ),
            (
                closed(&format!("      - {PACE}\n"), 2),
                "closed model of 2 behaviours",
            ),
            (
                closed(
                    &format!("      - repeat: {{ count: 2 }}\n        steps:\n          - {PACE}\n"),
                    1,
                ),
                "inside a `repeat` or `choose`",
            ),
            (
                closed(
                    "      - pace: { count: 5, send: { type: ping, id: \"{{seq}}\" }, reply: { kind: pong } }\n",
                    1,
                ),
                "has no `rate:`",
            ),
        ];
        for (text, why) in cases {
            let e = find(&plan(&text)).unwrap_err();
            assert!(e.contains(why), "{why}: {e}");
            assert!(
                e.starts_with("capacity drives an open model's arrival rate"),
                "{e}"
            );
            assert!(e.contains("exactly one `pace: { rate: R/s"), "{e}");
        }
    }
}
