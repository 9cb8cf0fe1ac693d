//! Lowering: the checked model becomes a [`Plan`]; every semantic problem is collected.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::de::{Body, Recover, Scalar, Sp};
use super::diagnostic::Issue;
use super::literal::{parse_duration, parse_rate, parse_size};
use super::model::{ConnectM, Entries, MatcherM, ScenarioM};
use super::plan::{AutoReply, ConnectPlan, Matcher, MetricId, Payload, Plan, Pos};
use super::template::{JsonTemplate, Template};
use super::template_compile::{
    compile, compile_json, is_ident, Scope, StepScope, BUILTINS, RESERVED,
};
use super::LoadOptions;

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
const TOP: Pos = Pos { line: 1, col: 1 };

/// Most bytes one templated message (or header, or id) may render to, counted at load by
/// [`Template::max_len`]: 4 × `{{blob 64MiB}}` in one message would otherwise pass `check`
/// and allocate 256 MiB per VU at run time.
pub const MAX_MESSAGE_BYTES: u64 = 64 << 20;

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

/// Lowers a whole scenario; `Err` carries every problem found.
pub(crate) fn lower(
    m: ScenarioM,
    opts: &LoadOptions,
    text: &str,
    mut issues: Vec<Issue>,
) -> Result<Plan, Vec<Issue>> {
    let mut l = Lower::new(&opts.env);
    let name = required(&mut l, m.name, "name", "name: my-scenario");
    let target = target(&mut l, &m.target, opts);
    let vars = vars(&mut l, m.vars);
    let connect = match m.connect {
        Recover::Ok(c) => connect(&mut l, &c),
        Recover::Missing => connect(&mut l, &ConnectM::default()),
        Recover::Failed => None,
    };
    let load = match m.load {
        Recover::Ok(load) => l.load(&load),
        Recover::Failed => None,
        Recover::Missing => {
            l.err_hint(
                TOP,
                "missing required key 'load'",
                "e.g. load: { vus: 10, duration: 30s }",
            );
            None
        }
    };
    let replies = auto_replies(&mut l, m.auto_reply);
    let behaviours = l.behaviours(m.behaviours);
    // Before thresholds: they may name the delivery metric and counters.
    let delivery = l.delivery(m.delivery);
    let thresholds = super::lower_thresholds::thresholds(&mut l, m.thresholds);
    let graceful_stop = m
        .graceful_stop
        .as_ref()
        .map_or(Some(FIVE_SECONDS), |g| l.duration(g));
    let kind_pointers = match m.discriminator {
        Recover::Ok(ps) if ps.is_empty() => {
            l.err(TOP, "discriminator: needs at least one JSON pointer");
            None
        }
        Recover::Ok(ps) => ps.iter().map(|p| l.pointer(p)).collect(),
        _ => Some(vec!["/type".to_owned()]),
    };
    let id_pointer = m
        .correlation
        .as_ref()
        .map_or(Some("/id".to_owned()), |p| l.pointer(p));
    issues.append(&mut l.issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    let seed = opts.seed.or(m.seed.ok()).unwrap_or_else(rand::random);
    // Every `None` above came with an issue, so these all hold values here.
    let (Some(name), Some(target), Some(connect), Some(load), Some(behaviours)) =
        (name, target, connect, load, behaviours)
    else {
        return Err(vec![Issue::new(TOP, "internal: incomplete scenario")]);
    };
    Ok(Plan {
        name,
        protocol: m.protocol.map(|p| p.value),
        target,
        connect,
        load,
        behaviours,
        replies: replies.unwrap_or_default(),
        kind_pointers: kind_pointers.unwrap_or_default(),
        id_pointer: id_pointer.unwrap_or_default(),
        metrics: l.metrics,
        thresholds: thresholds.unwrap_or_default(),
        seed,
        graceful_stop: graceful_stop.unwrap_or(FIVE_SECONDS),
        source_sha256: super::sha256_hex(text),
        vars: vars.unwrap_or_default(),
        delivery: delivery.flatten(),
    })
}

fn required(l: &mut Lower, v: Recover<Sp<String>>, key: &str, example: &str) -> Option<String> {
    match v {
        Recover::Ok(s) => Some(s.value),
        Recover::Failed => None,
        Recover::Missing => {
            l.err_hint(
                TOP,
                format!("missing required key '{key}'"),
                format!("e.g. {example}"),
            );
            None
        }
    }
}

fn target(l: &mut Lower, v: &Recover<Sp<String>>, opts: &LoadOptions) -> Option<String> {
    let (url, pos) = match (&opts.target, v) {
        (Some(t), v) => {
            let pos = if let Recover::Ok(s) = v { s.pos } else { TOP };
            (t.clone(), pos)
        }
        (None, Recover::Ok(s)) => (s.value.clone(), s.pos),
        (None, Recover::Failed) => return None,
        (None, Recover::Missing) if opts.default_target.is_some() => {
            (opts.default_target.clone().unwrap_or_default(), TOP)
        }
        (None, Recover::Missing) => {
            l.err_hint(
                TOP,
                "missing required key 'target'",
                "add target: ws://host:port/path, or pass --target",
            );
            return None;
        }
    };
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Some(url),
        Some(_) => {
            l.err(pos, format!("target '{url}' has no host"));
            None
        }
        None => {
            l.err_hint(
                pos,
                format!("target '{url}' is not a WebSocket URL"),
                "targets start with ws:// or wss://, e.g. ws://127.0.0.1:8080/ws",
            );
            None
        }
    }
}

fn vars(l: &mut Lower, v: Recover<Entries<Sp<String>, Body>>) -> Option<Vec<(String, Value)>> {
    let entries = match v {
        Recover::Ok(e) => e.0,
        Recover::Missing => return Some(Vec::new()),
        Recover::Failed => return None,
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        if l.var_name(&k) {
            l.vars.push(k.value.clone());
            out.push((k.value, super::node::to_json(&v.0)));
        }
    }
    Some(out)
}

fn connect(l: &mut Lower, c: &ConnectM) -> Option<ConnectPlan> {
    let headers = l.template_pairs(&c.headers);
    let query = l.template_pairs(&c.query);
    let timeout = match &c.timeout {
        Some(t) => l.positive_duration(t, "connect timeout"),
        None => Some(FIVE_SECONDS),
    };
    let max = match &c.max_message_size {
        Some(s) => l.size(s).and_then(|n| usize::try_from(n).ok()),
        None => Some(16 << 20),
    };
    let backoff = l.backoff(c.backoff.as_ref());
    Some(ConnectPlan {
        backoff: backoff?,
        headers: headers?,
        query: query?,
        subprotocols: c.subprotocols.clone(),
        timeout: timeout?,
        insecure: c.insecure,
        max_message_size: max?,
    })
}

fn auto_replies(
    l: &mut Lower,
    v: Recover<Vec<Recover<Sp<super::model::AutoReplyM>>>>,
) -> Option<Vec<AutoReply>> {
    let mut out = Vec::new();
    for item in v.ok().unwrap_or_default() {
        let Recover::Ok(r) = item else { continue };
        let on = match &r.value.on {
            Some(on)
                if on.value.kind.is_none()
                    && on.value.id.is_none()
                    && on.value.fields.is_none() =>
            {
                l.err(on.pos, "on: needs kind: or match:");
                None
            }
            Some(on) => l.matcher(&on.value),
            None => {
                l.err_hint(
                    r.pos,
                    "auto_reply item needs on:",
                    "e.g. on: { kind: ping }",
                );
                None
            }
        };
        let reply = l.payload(&r.value.send, &r.value.send_text, r.pos, "auto_reply");
        if let (Some(on), Some(reply)) = (on, reply) {
            out.push(AutoReply { on, reply });
        }
    }
    Some(out)
}
