//! Lowering the load shape (`load:`) into stages, and the weighted behaviour list.

use super::de::{Recover, Sp};
use super::diagnostic::suggestion;
use super::lower::Lower;
use super::model::{BehaviourM, LoadM, PhaseM};
use super::plan::{Behaviour, LoadModel, LoadPlan, Stage};

impl Lower<'_> {
    /// `load:` in its phase or shorthand form.
    pub fn load(&mut self, m: &Sp<LoadM>) -> Option<LoadPlan> {
        let v = &m.value;
        let open = self.is_open(v)?;
        let model = self.load_model(m, open)?;
        let stages = match &v.phases {
            Some(phases) => {
                if let Some(pos) = [
                    v.vus.as_ref().map(|x| x.pos),
                    v.rate.as_ref().map(|x| x.pos),
                    v.duration.as_ref().map(|x| x.pos),
                ]
                .into_iter()
                .flatten()
                .next()
                {
                    self.err(
                        pos,
                        "use either phases: or the vus/rate + duration shorthand, not both",
                    );
                    return None;
                }
                self.phases(phases, open)?
            }
            None => self.shorthand(m, open)?,
        };
        let plan = LoadPlan { model, stages };
        if plan.duration().is_zero() {
            self.err(
                m.pos,
                "the load lasts 0s; give a phase or duration a length",
            );
            return None;
        }
        Some(plan)
    }

    /// Whether `load:` is the open model: as `model:` says, else by whether it gives a rate.
    fn is_open(&mut self, v: &LoadM) -> Option<bool> {
        let any_phase_rate = v.phases.iter().flat_map(|p| &p.value).any(|p| match p {
            Recover::Ok(p) => p.value.rate.is_some(),
            _ => false,
        });
        let open = match &v.model {
            None => v.rate.is_some() || any_phase_rate,
            Some(s) if s.value == "open" => true,
            Some(s) if s.value == "closed" => false,
            Some(s) => {
                let msg = format!(
                    "unknown load model '{}'{}",
                    s.value,
                    suggestion(&s.value, ["open", "closed"])
                );
                self.err_hint(
                    s.pos,
                    msg,
                    "model is closed (VUs, the default) or open (arrival rate)",
                );
                return None;
            }
        };
        Some(open)
    }

    /// The load model: open (with its `max_vus`) or closed.
    fn load_model(&mut self, m: &Sp<LoadM>, open: bool) -> Option<LoadModel> {
        let v = &m.value;
        let model = match (open, &v.max_vus) {
            (true, Some(n)) if n.value >= 1 => LoadModel::Open { max_vus: n.value },
            (true, Some(n)) => {
                self.err(n.pos, "max_vus must be at least 1");
                return None;
            }
            (true, None) => {
                self.err_hint(
                    m.pos,
                    "the open model needs max_vus",
                    "e.g. max_vus: 500 caps running iterations",
                );
                return None;
            }
            (false, Some(n)) => {
                self.err(
                    n.pos,
                    "max_vus applies to the open model only (model: open)",
                );
                return None;
            }
            (false, None) => LoadModel::Closed,
        };
        Some(model)
    }

    fn shorthand(&mut self, m: &Sp<LoadM>, open: bool) -> Option<Vec<super::plan::Stage>> {
        let v = &m.value;
        let level = if open {
            match &v.rate {
                Some(r) => self.rate(r)?,
                None => {
                    self.err_hint(
                        m.pos,
                        "load needs phases: or rate: with duration:",
                        "e.g. load: { model: open, rate: 50/s, duration: 30s, max_vus: 100 }",
                    );
                    return None;
                }
            }
        } else {
            match &v.vus {
                Some(n) => f64::from(n.value),
                None => {
                    self.err_hint(
                        m.pos,
                        "load needs phases: or vus: with duration:",
                        "e.g. load: { vus: 10, duration: 30s }",
                    );
                    return None;
                }
            }
        };
        let Some(d) = &v.duration else {
            self.err_hint(
                m.pos,
                "load needs duration: with the shorthand form",
                "e.g. duration: 30s",
            );
            return None;
        };
        let duration = self.duration(d)?;
        // Jump to the level at once, then hold it.
        Some(vec![
            Stage {
                duration: std::time::Duration::ZERO,
                target: level,
            },
            Stage {
                duration,
                target: level,
            },
        ])
    }

    fn phases(&mut self, phases: &Sp<Vec<Recover<Sp<PhaseM>>>>, open: bool) -> Option<Vec<Stage>> {
        if phases.value.is_empty() {
            self.err(phases.pos, "phases: needs at least one phase");
            return None;
        }
        let mut stages = Vec::new();
        let mut prev = 0.0;
        let mut ok = true;
        for p in &phases.value {
            let Recover::Ok(p) = p else {
                ok = false;
                continue;
            };
            match self.phase(p, open, prev) {
                Some(s) => {
                    prev = s.last().map_or(prev, |s: &Stage| s.target);
                    stages.extend(s);
                }
                None => ok = false,
            }
        }
        ok.then_some(stages)
    }

    fn phase(&mut self, p: &Sp<PhaseM>, open: bool, prev: f64) -> Option<Vec<Stage>> {
        let v = &p.value;
        let level = match (open, &v.vus, &v.rate) {
            (true, Some(n), _) => {
                self.err(n.pos, "open-model phases set rate:, not vus:");
                return None;
            }
            (false, _, Some(r)) => {
                self.err_hint(
                    r.pos,
                    "closed-model phases set vus:, not rate:",
                    "for an arrival rate, use model: open with max_vus",
                );
                return None;
            }
            (true, None, Some(r)) => Some(self.rate(r)?),
            (false, Some(n), None) => Some(f64::from(n.value)),
            _ => None,
        };
        match (&v.ramp, &v.hold) {
            (Some(_), Some(h)) => {
                self.err(h.pos, "a phase is a ramp or a hold, not both");
                None
            }
            (Some(r), None) => {
                let d = self.duration(r)?;
                let Some(target) = level else {
                    let key = if open { "rate: 100/s" } else { "vus: 100" };
                    self.err_hint(
                        p.pos,
                        "a ramp needs a level to reach",
                        format!("e.g. {{ ramp: 10s, {key} }}"),
                    );
                    return None;
                };
                Some(vec![Stage {
                    duration: d,
                    target,
                }])
            }
            (None, Some(h)) => {
                let d = self.duration(h)?;
                Some(hold(d, level.unwrap_or(prev), prev))
            }
            (None, None) => {
                self.err_hint(
                    p.pos,
                    "a phase needs ramp: or hold:",
                    "e.g. { ramp: 10s, vus: 100 } or { hold: 30s }",
                );
                None
            }
        }
    }

    /// `behaviours:`: weights checked, weight-0 behaviours dropped from the plan.
    pub fn behaviours(
        &mut self,
        v: Recover<Sp<Vec<Recover<Sp<BehaviourM>>>>>,
    ) -> Option<Vec<Behaviour>> {
        let list = match v {
            Recover::Ok(l) => l,
            Recover::Failed => return None,
            Recover::Missing => {
                self.err_hint(
                    super::plan::Pos { line: 1, col: 1 },
                    "missing required key 'behaviours'",
                    "e.g. behaviours: [ { steps: [ { listen: 10s } ] } ]",
                );
                return None;
            }
        };
        if list.value.is_empty() {
            self.err(list.pos, "behaviours: needs at least one behaviour");
            return None;
        }
        let base_vars = self.vars.clone();
        let mut out = Vec::new();
        let mut ok = true;
        let mut names: Vec<String> = Vec::new();
        for (i, b) in list.value.iter().enumerate() {
            let Recover::Ok(b) = b else {
                ok = false;
                continue;
            };
            // Captures are visible from where they are written to the end of their behaviour.
            self.vars.clone_from(&base_vars);
            match self.behaviour(i, b, &mut names) {
                Some(b) => out.push(b),
                None => ok = false,
            }
        }
        self.vars = base_vars;
        if !ok {
            return None;
        }
        if out.iter().map(|b| b.weight).sum::<f64>() <= 0.0 {
            self.err_hint(
                list.pos,
                "behaviour weights sum to 0",
                "give at least one behaviour a weight above 0",
            );
            return None;
        }
        out.retain(|b| b.weight > 0.0);
        Some(out)
    }

    /// Behaviour `i` (0-based), its name not among `names` (to which it is added).
    fn behaviour(
        &mut self,
        i: usize,
        b: &Sp<BehaviourM>,
        names: &mut Vec<String>,
    ) -> Option<Behaviour> {
        let name = b
            .value
            .name
            .as_ref()
            .map_or_else(|| format!("behaviour-{}", i + 1), |n| n.value.clone());
        let unique = !names.contains(&name);
        if !unique {
            let pos = b.value.name.as_ref().map_or(b.pos, |n| n.pos);
            self.err(pos, format!("two behaviours are named '{name}'"));
        }
        names.push(name.clone());
        let weight = self.weight(&b.value.weight);
        let connect = b.value.connect.as_ref().map(|c| {
            let headers = self.template_pairs(&c.value.headers);
            Some((headers?, self.template_pairs(&c.value.query)?))
        });
        let steps = self.steps_field(&b.value.steps, b.pos, "behaviour");
        match (weight, steps, connect.unwrap_or(Some(Default::default()))) {
            (Some(weight), Some(steps), Some((headers, query))) if unique => Some(Behaviour {
                name,
                weight,
                steps,
                headers,
                query,
            }),
            _ => None,
        }
    }

    /// A `weight:`; default 1, at least 0.
    pub fn weight(&mut self, w: &Option<Sp<f64>>) -> Option<f64> {
        match w {
            None => Some(1.0),
            Some(w) if w.value >= 0.0 && w.value.is_finite() => Some(w.value),
            Some(w) => {
                self.err(w.pos, format!("weight must be 0 or more, got {}", w.value));
                None
            }
        }
    }
}

/// A `hold:` of `d` at `target`: from `prev`, it jumps to the level at once, then holds it.
fn hold(d: std::time::Duration, target: f64, prev: f64) -> Vec<Stage> {
    let mut out = Vec::new();
    if target != prev {
        // `{ hold: 30s, vus: 10 }` jumps to the level, then holds it.
        out.push(Stage {
            duration: std::time::Duration::ZERO,
            target,
        });
    }
    out.push(Stage {
        duration: d,
        target,
    });
    out
}
