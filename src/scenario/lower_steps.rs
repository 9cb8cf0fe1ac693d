//! Lowering steps: each step kind's checks, defaults and templates.

use base64::Engine as _;

use super::de::{OrMap, Recover, Scalar, Sp};
use super::lower::Lower;
use super::model::{
    BinaryM, BranchM, CloseM, ExpectCloseM, ExpectM, ListenM, StepItem, StepM, Steps,
};
use super::plan::{Backoff, Expect, Payload, Pos, Step, Think};

/// Largest generated `send_binary: { size }` payload.
const MAX_BINARY: u64 = 64 << 20;

impl Lower<'_> {
    /// A required `steps:` list (behaviours, branches, repeat bodies).
    pub fn steps_field(
        &mut self,
        steps: &Recover<Steps>,
        pos: Pos,
        owner: &str,
    ) -> Option<Vec<Step>> {
        match steps {
            Recover::Ok(items) if items.is_empty() => {
                self.err(pos, format!("{owner} steps: is empty"));
                None
            }
            Recover::Ok(items) => self.steps(items),
            Recover::Failed => None,
            Recover::Missing => {
                self.err_hint(
                    pos,
                    format!("{owner} needs steps:"),
                    "e.g. steps: [ { listen: 10s } ]",
                );
                None
            }
        }
    }

    /// All steps of a list; `None` if any failed (each failure is reported).
    pub fn steps(&mut self, items: &Steps) -> Option<Vec<Step>> {
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match item {
                Recover::Ok(it) => match self.step(&it.value, it.pos) {
                    Some(s) => out.push(s),
                    None => ok = false,
                },
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn step(&mut self, item: &StepItem, pos: Pos) -> Option<Step> {
        let step = self.bare_step(item, pos)?;
        let Some(on_fail) = &item.on_fail else {
            return Some(step);
        };
        if !step.may_fail() {
            self.err(
                on_fail.pos,
                "on_fail: applies only to send, send_text, send_binary, expect, expect_close, \
                 burst and upload",
            );
            return None;
        }
        match on_fail.value.as_str() {
            "stop" => Some(step),
            "continue" => Some(Step::Continue(Box::new(step))),
            other => {
                self.err_hint(
                    on_fail.pos,
                    format!("on_fail: '{other}' is not stop or continue"),
                    "on_fail: continue goes on with the next step when this one fails; \
                     stop (the default) ends the iteration",
                );
                None
            }
        }
    }

    fn bare_step(&mut self, item: &StepItem, pos: Pos) -> Option<Step> {
        let unchecked = self.placed_keys(item)?;
        match &item.step {
            StepM::Send(body) => Some(Step::Send {
                payload: Payload::Json(self.json(body)?),
                unchecked,
            }),
            StepM::SendText(t) => Some(Step::Send {
                payload: Payload::Text(self.template(&t.value, t.pos)?),
                unchecked,
            }),
            StepM::SendBinary(b) => Some(Step::Send {
                payload: Payload::Binary(self.binary(b)?),
                unchecked,
            }),
            StepM::Expect(e) => self.expect(e).map(Step::Expect),
            StepM::Listen(l) => self.listen(l),
            StepM::Think(t) => self.think(t).map(Step::Think),
            StepM::Repeat(r) => self.repeat(r, item.steps.as_ref(), pos),
            StepM::Choose(c) => self.choose(c),
            StepM::Pace(p) => self.pace(p, unchecked).map(Step::Pace),
            StepM::Burst(b) => self.burst(b, unchecked),
            StepM::Upload(u) => self.upload(u, unchecked),
            StepM::ExpectClose(e) => self.expect_close(e),
            StepM::Reconnect(b) => self.backoff(b.as_ref()).map(Step::Reconnect),
            StepM::Close(c) => self.close(c),
        }
    }

    /// Checks the keys an item may carry beside its step (`unchecked:`, `steps:`); the
    /// step's `unchecked` flag, or `None` when a key is out of place.
    fn placed_keys(&mut self, item: &StepItem) -> Option<bool> {
        let unchecked = item.unchecked.as_ref().map(|u| (u.value, u.pos));
        let may_be_unchecked = matches!(
            item.step,
            StepM::Send(_)
                | StepM::SendText(_)
                | StepM::SendBinary(_)
                | StepM::Burst(_)
                | StepM::Pace(_)
                | StepM::Upload(_)
        );
        if let (Some((_, at)), false) = (unchecked, may_be_unchecked) {
            self.err(
                at,
                "unchecked: applies only to send, send_text, send_binary, burst, pace and upload",
            );
            return None;
        }
        let unchecked = unchecked.is_some_and(|u| u.0);
        if let (Some(s), false) = (&item.steps, matches!(item.step, StepM::Repeat(_))) {
            self.err_hint(
                s.pos,
                "steps: here belongs to repeat",
                "nest the steps under a repeat:, or give choose branches their own steps:",
            );
            return None;
        }
        Some(unchecked)
    }

    /// `listen: 5s` or `listen: { duration: 5s }`.
    fn listen(&mut self, l: &Sp<OrMap<ListenM>>) -> Option<Step> {
        let d = match &l.value {
            OrMap::Map(m) => &m.duration,
            OrMap::Scalar(s) => &Sp {
                value: s.clone(),
                pos: l.pos,
            },
        };
        Some(Step::Listen {
            duration: self.positive_duration(d, "listen")?,
        })
    }

    /// `expect_close:` with an optional code and `within:`.
    fn expect_close(&mut self, e: &Sp<ExpectCloseM>) -> Option<Step> {
        let code = e.value.code.as_ref().map(|c| self.close_code(c, false));
        let within = self.within(&e.value.within);
        Some(Step::ExpectClose {
            code: code.map_or(Some(None), |c| c.map(Some))?,
            within: within?,
        })
    }

    /// `close:` (1000), `close: 4000` or `close: { code: 4000 }`.
    fn close(&mut self, c: &Sp<OrMap<CloseM>>) -> Option<Step> {
        let code = match &c.value {
            OrMap::Scalar(Scalar::Null) => Some(1000),
            OrMap::Map(m) => m
                .code
                .as_ref()
                .map_or(Some(1000), |c| self.close_code(c, true)),
            OrMap::Scalar(Scalar::Int(i)) => match u16::try_from(*i) {
                Ok(code) => self.close_code(
                    &Sp {
                        value: code,
                        pos: c.pos,
                    },
                    true,
                ),
                Err(_) => {
                    self.err(c.pos, format!("{i} is not a close code"));
                    None
                }
            },
            OrMap::Scalar(other) => {
                self.err_hint(
                    c.pos,
                    format!("expected a close code, found '{other}'"),
                    "e.g. close: 1000",
                );
                None
            }
        };
        Some(Step::Close { code: code? })
    }

    /// Close codes (RFC 6455 §7.4): a client may send 1000–1003, 1007–1014 and 3000–4999.
    fn close_code(&mut self, c: &Sp<u16>, sending: bool) -> Option<u16> {
        let code = c.value;
        let ok = if sending {
            matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
        } else {
            (1000..=4999).contains(&code)
        };
        if !ok {
            self.err_hint(
                c.pos,
                format!("{code} is not a valid close code here"),
                "use 1000 (normal), 1001, 1008, or 3000-4999",
            );
            return None;
        }
        Some(code)
    }

    fn binary(&mut self, b: &Sp<BinaryM>) -> Option<Vec<u8>> {
        match (&b.value.base64, &b.value.size) {
            (Some(text), None) => base64::engine::general_purpose::STANDARD
                .decode(text.value.trim())
                .map_err(|e| self.err(text.pos, format!("not valid base64: {e}")))
                .ok(),
            (None, Some(s)) => {
                let n = self.size(s)?;
                if n > MAX_BINARY {
                    self.err(s.pos, "send_binary size is limited to 64MiB");
                    return None;
                }
                // A repeating byte pattern: deterministic, and visibly not all zeros.
                Some((0..n).map(|i| i as u8).collect())
            }
            _ => {
                self.err_hint(
                    b.pos,
                    "send_binary needs exactly one of base64: or size:",
                    "e.g. send_binary: { size: 64KiB }",
                );
                None
            }
        }
    }

    fn expect(&mut self, e: &Sp<ExpectM>) -> Option<Expect> {
        let v = &e.value;
        if v.kind.is_none() && v.id.is_none() && v.fields.is_none() {
            self.err_hint(
                e.pos,
                "expect needs at least one of kind, id or match",
                "e.g. expect: { kind: welcome, within: 2s }",
            );
            return None;
        }
        let matcher = self.matcher_parts(&v.kind, &v.id, &v.fields);
        let within = self.within(&v.within);
        let metric = v.metric.as_ref().map(|m| self.metric(m));
        let mut capture = Vec::new();
        let mut ok = true;
        for (name, ptr) in &v.capture.0 {
            match (self.var_name(name), self.pointer(ptr)) {
                (true, Some(p)) => capture.push((name.value.clone(), p)),
                _ => ok = false,
            }
        }
        // Captured names are visible to the steps written after this one.
        for (name, _) in &capture {
            if !self.vars.contains(name) {
                self.vars.push(name.clone());
            }
        }
        let metric = metric.map_or(Some(None), |m| m.map(Some))?;
        (ok).then_some(())?;
        Some(Expect {
            matcher: matcher?,
            within: within?,
            metric,
            capture,
        })
    }

    fn think(&mut self, t: &Sp<OrMap<super::model::ThinkM>>) -> Option<Think> {
        let (min, max) = match &t.value {
            OrMap::Scalar(Scalar::Str(s)) if s.contains("..") => {
                let (a, b) = s.split_once("..").unwrap_or_default();
                let at_b = Pos {
                    line: t.pos.line,
                    col: t.pos.col + a.chars().count() as u32 + 2,
                };
                (
                    Sp {
                        value: Scalar::Str(a.into()),
                        pos: t.pos,
                    },
                    Sp {
                        value: Scalar::Str(b.into()),
                        pos: at_b,
                    },
                )
            }
            OrMap::Scalar(s) => {
                return self
                    .duration(&Sp {
                        value: s.clone(),
                        pos: t.pos,
                    })
                    .map(Think::Fixed)
            }
            OrMap::Map(m) => (m.min.clone(), m.max.clone()),
        };
        let (min_d, max_d) = (self.duration(&min), self.duration(&max));
        let (min_d, max_d) = (min_d?, max_d?);
        if min_d > max_d {
            self.err(max.pos, "think range ends before it starts");
            return None;
        }
        Some(Think::Range(min_d, max_d))
    }

    fn repeat(
        &mut self,
        r: &Sp<OrMap<super::model::RepeatM>>,
        steps: Option<&Sp<Recover<Steps>>>,
        pos: Pos,
    ) -> Option<Step> {
        let (count, duration) = match &r.value {
            OrMap::Scalar(Scalar::Int(i)) => match u64::try_from(*i) {
                Ok(n) => (Some(n), None),
                Err(_) => {
                    self.err(r.pos, "repeat count must be 0 or more");
                    return None;
                }
            },
            OrMap::Scalar(s @ Scalar::Str(_)) => (
                None,
                Some(self.positive_duration(
                    &Sp {
                        value: s.clone(),
                        pos: r.pos,
                    },
                    "repeat duration",
                )?),
            ),
            OrMap::Map(m) if m.count.is_some() || m.duration.is_some() => {
                let d = m
                    .duration
                    .as_ref()
                    .map(|d| self.positive_duration(d, "repeat duration"));
                (
                    m.count.as_ref().map(|c| c.value),
                    d.map_or(Some(None), |d| d.map(Some))?,
                )
            }
            _ => {
                self.err_hint(
                    r.pos,
                    "repeat needs a count or a duration",
                    "e.g. repeat: 50 or repeat: 10s, with steps: beside it",
                );
                return None;
            }
        };
        let body = match steps {
            Some(s) => self.steps_field(&s.value, s.pos, "repeat")?,
            None => {
                self.err_hint(
                    pos,
                    "repeat needs steps: beside it",
                    "write steps: in the same list item as repeat:",
                );
                return None;
            }
        };
        Some(Step::Repeat {
            count,
            duration,
            steps: body,
        })
    }

    fn choose(&mut self, c: &Sp<Vec<Recover<Sp<BranchM>>>>) -> Option<Step> {
        if c.value.is_empty() {
            self.err(c.pos, "choose needs at least one branch");
            return None;
        }
        let mut branches = Vec::new();
        let mut ok = true;
        for b in &c.value {
            let Recover::Ok(b) = b else {
                ok = false;
                continue;
            };
            let w = self.weight(&b.value.weight);
            let steps = self.steps_field(&b.value.steps, b.pos, "choose branch");
            match (w, steps) {
                (Some(w), Some(s)) => branches.push((w, s)),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        if branches.iter().map(|b| b.0).sum::<f64>() <= 0.0 {
            self.err(c.pos, "choose branch weights sum to 0");
            return None;
        }
        branches.retain(|b| b.0 > 0.0);
        Some(Step::Choose { branches })
    }

    pub(super) fn backoff(&mut self, b: Option<&Sp<super::model::BackoffM>>) -> Option<Backoff> {
        let mut out = Backoff::default();
        let Some(b) = b else { return Some(out) };
        let v = &b.value;
        let mut ok = true;
        if let Some(d) = &v.initial {
            ok &= self.duration(d).map(|d| out.initial = d).is_some();
        }
        if let Some(d) = &v.max {
            ok &= self.duration(d).map(|d| out.max = d).is_some();
        }
        if let Some(f) = &v.factor {
            if f.value >= 1.0 && f.value.is_finite() {
                out.factor = f.value;
            } else {
                self.err(f.pos, "factor must be 1 or more");
                ok = false;
            }
        }
        if let Some(j) = &v.jitter {
            if (0.0..=1.0).contains(&j.value) {
                out.jitter = j.value;
            } else {
                self.err(j.pos, "jitter is a fraction between 0 and 1");
                ok = false;
            }
        }
        if let Some(n) = &v.max_tries {
            if n.value >= 1 {
                out.max_tries = n.value;
            } else {
                self.err(n.pos, "max_tries must be at least 1");
                ok = false;
            }
        }
        if ok && out.initial > out.max {
            self.err(b.pos, "reconnect initial delay is longer than max");
            ok = false;
        }
        ok.then_some(out)
    }
}
