//! Reshaping a load plan from the command line (`--duration`, `--vus`, `--rate`).

use std::time::Duration;

use super::plan::{LoadPlan, Stage};

impl LoadPlan {
    /// The plan cut at `d`: a stage running past `d` ends there at the level it has reached;
    /// when `d` is longer than all stages, the last level is held until `d`.
    pub fn with_duration(&self, d: Duration) -> LoadPlan {
        let mut stages = Vec::new();
        let mut start = Duration::ZERO;
        for s in &self.stages {
            if start + s.duration > d || (start == d && !s.duration.is_zero()) {
                if d > start {
                    stages.push(Stage {
                        duration: d - start,
                        target: self.level_at(d),
                    });
                }
                return LoadPlan {
                    model: self.model,
                    stages,
                };
            }
            stages.push(*s);
            start += s.duration;
        }
        if d > start {
            let last = stages.last().map_or(0.0, |s| s.target);
            stages.push(Stage {
                duration: d - start,
                target: last,
            });
        }
        LoadPlan {
            model: self.model,
            stages,
        }
    }

    /// The plan scaled so its highest level is `peak` (VUs for the closed model, iterations
    /// per second for the open one). A plan whose levels are all 0 becomes a flat `peak`.
    /// Closed-model levels may become fractional; the swarm rounds them.
    pub fn with_peak(&self, peak: f64) -> LoadPlan {
        let old = self.peak();
        let stages = self
            .stages
            .iter()
            .map(|s| Stage {
                duration: s.duration,
                target: if old > 0.0 {
                    s.target * peak / old
                } else {
                    peak
                },
            })
            .collect();
        LoadPlan {
            model: self.model,
            stages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::LoadModel;

    fn plan() -> LoadPlan {
        let st = |s, t| Stage {
            duration: Duration::from_secs(s),
            target: t,
        };
        LoadPlan {
            model: LoadModel::Closed,
            stages: vec![st(10, 100.0), st(30, 100.0), st(5, 0.0)],
        }
    }

    #[test]
    fn cut_inside_a_ramp_ends_at_the_level_reached() {
        let p = plan().with_duration(Duration::from_secs(5));
        assert_eq!(p.stages.len(), 1);
        assert_eq!(p.stages[0].duration, Duration::from_secs(5));
        assert!((p.stages[0].target - 50.0).abs() < 1e-9);
        let p = plan().with_duration(Duration::from_secs(20));
        assert_eq!(p.duration(), Duration::from_secs(20));
        assert_eq!(p.stages.len(), 2);
    }

    #[test]
    fn longer_duration_holds_the_last_level() {
        let p = plan().with_duration(Duration::from_secs(60));
        assert_eq!(p.duration(), Duration::from_secs(60));
        assert_eq!(p.stages.last().unwrap().target, 0.0);
        assert_eq!(p.stages.len(), 4);
        assert_eq!(plan().with_duration(Duration::from_secs(45)), plan());
    }

    #[test]
    fn peak_scales_every_stage() {
        let p = plan().with_peak(10.0);
        assert_eq!(p.peak(), 10.0);
        assert_eq!(p.stages[2].target, 0.0);
        assert_eq!(p.duration(), plan().duration());
        let flat = LoadPlan {
            model: LoadModel::Closed,
            stages: vec![Stage {
                duration: Duration::from_secs(1),
                target: 0.0,
            }],
        };
        assert_eq!(flat.with_peak(3.0).peak(), 3.0);
    }
}
