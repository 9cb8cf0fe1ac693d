//! Lowering: the checked model becomes a [`Plan`](super::plan::Plan); every semantic problem is
//! collected. This file holds the shared [`Lower`] state and its tools (errors, durations,
//! templates, matchers, metrics); `lower_scenario` drives the walk.

use std::collections::HashMap;
use std::time::Duration;

use super::de::{Body, Scalar, Sp};
use super::diagnostic::Issue;
use super::literal::{parse_duration, parse_rate, parse_size};
use super::model::{Entries, MatcherM};
use super::plan::{Matcher, MetricId, Payload, Pos};
use super::template::{JsonTemplate, Template};
use super::template_compile::{
    compile, compile_json, is_ident, Scope, StepScope, BUILTINS, RESERVED,
};

/// Labels results give frames without a kind of their own; no matcher can take such a frame.
const PSEUDO_KINDS: [&str; 7] = [
    "(binary)",
    "(non-json)",
    "(invalid-utf8)",
    "(unknown)",
    "(none)",
    "(other)",
    "(auto-reply)",
];

/// Default for `within:`, `connect.timeout` and `graceful_stop`.
pub(crate) const FIVE_SECONDS: Duration = Duration::from_secs(5);
pub(super) const TOP: Pos = Pos { line: 1, col: 1 };

/// Most bytes one templated message (or header, or id) may render to, counted at load by
/// [`Template::max_len`]: 4 × `{{blob 64MiB}}` in one message would otherwise pass `check`
/// and allocate 256 MiB per VU at run time.
pub const MAX_MESSAGE_BYTES: u64 = 64 << 20;

/// An optional part of a construct, lowered.
#[derive(Debug)]
pub(super) enum Part<T> {
    /// Not written: the construct's default applies.
    Absent,
    /// Written, and lowered.
    Given(T),
    /// Written wrong: its error is reported, and the construct holding it fails to lower.
    Wrong,
}

/// A part was written wrong (its error is reported).
#[derive(Debug)]
pub(super) struct Wrong;

impl<T> Part<T> {
    /// `written` (if it is) lowered by `lower`, which reports what is wrong and gives `None`.
    pub(super) fn lower<S>(written: Option<S>, lower: impl FnOnce(S) -> Option<T>) -> Part<T> {
        match written {
            None => Part::Absent,
            Some(s) => lower(s).map_or(Part::Wrong, Part::Given),
        }
    }

    /// The plan's optional field (`None`: absent), or [`Wrong`].
    pub(super) fn field(self) -> Result<Option<T>, Wrong> {
        match self {
            Part::Absent => Ok(None),
            Part::Given(v) => Ok(Some(v)),
            Part::Wrong => Err(Wrong),
        }
    }

    /// The value of a part that was written and lowered.
    pub(super) fn given(self) -> Option<T> {
        match self {
            Part::Given(v) => Some(v),
            Part::Absent | Part::Wrong => None,
        }
    }
}

/// Lowering state: problems found so far, names in scope, interned metrics.
pub(crate) struct Lower<'a> {
    pub issues: Vec<Issue>,
    env: &'a HashMap<String, String>,
    /// Variables visible to templates at this point of the walk.
    pub vars: Vec<String>,
    pub metrics: Vec<String>,
    /// Which `upload` step values templates may read here.
    pub step_scope: StepScope,
    /// Metrics of `upload` steps (for `upload.<metric>.*` thresholds).
    pub upload_metrics: Vec<String>,
    /// Whether the scenario tracks delivery (for `delivery.*` thresholds).
    pub has_delivery: bool,
}

impl<'a> Lower<'a> {
    pub fn new(env: &'a HashMap<String, String>) -> Self {
        Lower {
            issues: Vec::new(),
            env,
            vars: Vec::new(),
            metrics: Vec::new(),
            step_scope: StepScope::None,
            upload_metrics: Vec::new(),
            has_delivery: false,
        }
    }

    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.issues.push(Issue::new(pos, message));
    }

    pub fn err_hint(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.issues.push(Issue::new(pos, message).hint(hint));
    }

    /// A duration literal; numbers without a unit are refused.
    pub fn duration(&mut self, v: &Sp<Scalar>) -> Option<Duration> {
        let r = match &v.value {
            Scalar::Str(s) => parse_duration(s),
            other => parse_duration(&other.to_string()),
        };
        r.map_err(|e| self.err_hint(v.pos, e.message, e.hint)).ok()
    }

    /// A duration that must be above zero (deadlines, time limits).
    pub fn positive_duration(&mut self, v: &Sp<Scalar>, what: &str) -> Option<Duration> {
        let d = self.duration(v)?;
        if d.is_zero() {
            self.err(v.pos, format!("{what} must be longer than 0s"));
            return None;
        }
        Some(d)
    }

    /// An optional positive duration with a default.
    pub fn within(&mut self, v: &Option<Sp<Scalar>>) -> Option<Duration> {
        match v {
            Some(v) => self.positive_duration(v, "within"),
            None => Some(FIVE_SECONDS),
        }
    }

    /// A rate literal (`100/s`), per second.
    pub fn rate(&mut self, v: &Sp<Scalar>) -> Option<f64> {
        let r = match &v.value {
            Scalar::Str(s) => parse_rate(s),
            other => parse_rate(&other.to_string()),
        };
        r.map_err(|e| self.err_hint(v.pos, e.message, e.hint)).ok()
    }

    /// A size literal in bytes; a bare integer is bytes.
    pub fn size(&mut self, v: &Sp<Scalar>) -> Option<u64> {
        let r = match &v.value {
            Scalar::Int(i) if *i >= 0 => return u64::try_from(*i).ok(),
            Scalar::Str(s) => parse_size(s),
            other => parse_size(&other.to_string()),
        };
        r.map_err(|e| self.err_hint(v.pos, e.message, e.hint)).ok()
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            env: self.env,
            vars: &self.vars,
            step: self.step_scope,
        }
    }

    /// A string template at its place in the file.
    pub fn template(&mut self, src: &str, pos: Pos) -> Option<Template> {
        let t = compile(src, &self.scope())
            .map_err(|e| self.issues.push(e.at(src, pos)))
            .ok()?;
        self.within_message_cap(t.max_len(), pos).then_some(t)
    }

    /// Whether a message that renders at most `max` bytes fits [`MAX_MESSAGE_BYTES`]; reports
    /// it at `pos` when not.
    fn within_message_cap(&mut self, max: u64, pos: Pos) -> bool {
        if max <= MAX_MESSAGE_BYTES {
            return true;
        }
        self.err_hint(
            pos,
            format!("this can render {max} bytes, over the 64MiB limit of one message"),
            "each {{blob}} counts its size: send the payload over several messages",
        );
        false
    }

    /// Names with value templates (`headers:`, `query:`); every bad value is reported.
    pub fn template_pairs(
        &mut self,
        e: &Entries<Sp<String>, Sp<Scalar>>,
    ) -> Option<Vec<(String, Template)>> {
        let all: Vec<_> =
            e.0.iter()
                .map(|(k, v)| self.scalar_template(v).map(|t| (k.value.clone(), t)))
                .collect();
        all.into_iter().collect()
    }

    /// A template from any scalar (numbers and booleans are literal text).
    pub fn scalar_template(&mut self, v: &Sp<Scalar>) -> Option<Template> {
        match &v.value {
            Scalar::Str(s) => self.template(s, v.pos),
            Scalar::Null => {
                self.err(v.pos, "expected a value, found nothing (null)");
                None
            }
            other => Some(Template::literal(&other.to_string())),
        }
    }

    pub fn json(&mut self, body: &Body) -> Option<JsonTemplate> {
        let t = compile_json(&body.0, &self.scope())
            .map_err(|e| self.issues.extend(e))
            .ok()?;
        self.within_message_cap(t.max_len(), body.0.pos)
            .then_some(t)
    }

    /// What a send puts on the wire: exactly one of `send:` / `send_text:`.
    pub fn payload(
        &mut self,
        send: &Option<Body>,
        text: &Option<Sp<String>>,
        pos: Pos,
        what: &str,
    ) -> Option<Payload> {
        match (send, text) {
            (Some(b), None) => self.json(b).map(Payload::Json),
            (None, Some(t)) => self.template(&t.value, t.pos).map(Payload::Text),
            (Some(_), Some(t)) => {
                self.err(t.pos, format!("{what} takes send: or send_text:, not both"));
                None
            }
            (None, None) => {
                self.err_hint(
                    pos,
                    format!("{what} needs send: (a JSON body) or send_text:"),
                    "e.g. send: { type: ping, id: \"{{seq}}\" }",
                );
                None
            }
        }
    }

    /// A JSON pointer (RFC 6901): empty or starting with `/`.
    pub fn pointer(&mut self, p: &Sp<String>) -> Option<String> {
        if p.value.is_empty() || p.value.starts_with('/') {
            return Some(p.value.clone());
        }
        self.err_hint(
            p.pos,
            format!("'{}' is not a JSON pointer", p.value),
            format!(
                "JSON pointers start with '/', e.g. /{}",
                p.value.trim_start_matches('.')
            ),
        );
        None
    }

    pub fn matcher(&mut self, m: &MatcherM) -> Option<Matcher> {
        self.matcher_parts(&m.kind, &m.id, &m.fields)
    }

    /// A matcher from its three optional conditions.
    pub fn matcher_parts(
        &mut self,
        kind: &Option<Sp<String>>,
        id: &Option<Sp<Scalar>>,
        fields_m: &Option<Entries<Sp<String>, Sp<Scalar>>>,
    ) -> Option<Matcher> {
        let id = id.as_ref().map(|id| self.scalar_template(id));
        let mut fields = Vec::new();
        let mut ok = !matches!(id, Some(None));
        if let Some(k) = kind
            .as_ref()
            .filter(|k| PSEUDO_KINDS.contains(&k.value.as_str()))
        {
            self.err_hint(
                k.pos,
                format!(
                    "'{}' is how results count frames without a kind; no frame can match it",
                    k.value
                ),
                "a binary, non-JSON or kindless frame cannot be waited for: wait for what the \
                 server answers it with, e.g. expect_close: { code: 1003 }",
            );
            ok = false;
        }
        for (k, v) in fields_m.iter().flat_map(|f| &f.0) {
            match (self.pointer(k), self.scalar_template(v)) {
                (Some(p), Some(t)) => fields.push((p, t)),
                _ => ok = false,
            }
        }
        ok.then(|| Matcher {
            kind: kind.as_ref().map(|k| k.value.clone()),
            id: id.flatten(),
            fields,
        })
    }

    /// Interns a metric name into [`Plan::metrics`].
    pub fn metric(&mut self, name: &Sp<String>) -> Option<MetricId> {
        let n = &name.value;
        if !is_ident(n) {
            self.err_hint(
                name.pos,
                format!("'{n}' is not a valid metric name"),
                "use letters, digits, '_' and '-' (thresholds separate names with '.')",
            );
            return None;
        }
        Some(self.intern(n))
    }

    pub fn intern(&mut self, n: &str) -> MetricId {
        let i = match self.metrics.iter().position(|m| m == n) {
            Some(i) => i,
            None => {
                self.metrics.push(n.to_owned());
                self.metrics.len() - 1
            }
        };
        MetricId(i as u16)
    }

    /// A name that may hold a value for templates (`vars:`, `capture:`).
    pub fn var_name(&mut self, name: &Sp<String>) -> bool {
        let n = name.value.as_str();
        if !is_ident(n) {
            self.err(name.pos, format!("'{n}' is not a valid variable name"));
        } else if BUILTINS.contains(&n) || RESERVED.contains(&n) {
            self.err(name.pos, format!("'{n}' is a built-in template name"));
        } else {
            return true;
        }
        false
    }
}
