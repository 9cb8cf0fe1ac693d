//! Lowering the whole scenario: its top-level keys, each part lowered by the `lower_*`
//! files on the shared [`Lower`] state, gathered into a [`Plan`].

use serde_json::Value;

use super::de::{Body, Recover, Sp};
use super::diagnostic::Issue;
use super::lower::{Lower, FIVE_SECONDS, TOP};
use super::model::{ConnectM, Entries, LoadM, ScenarioM};
use super::plan::{AutoReply, ConnectPlan, LoadPlan, Plan};
use super::LoadOptions;

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
    let load = load(&mut l, m.load);
    let replies = auto_replies(&mut l, m.auto_reply);
    let behaviours = l.behaviours(m.behaviours);
    // Before thresholds: they may name the delivery metric and counters.
    let delivery = l.delivery(m.delivery);
    let thresholds = super::lower_thresholds::thresholds(&mut l, m.thresholds);
    let graceful_stop = m
        .graceful_stop
        .as_ref()
        .map_or(Some(FIVE_SECONDS), |g| l.duration(g));
    let kind_pointers = kind_pointers(&mut l, m.discriminator);
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
        delivery: delivery.given(),
    })
}

/// `load:`, which every scenario needs.
fn load(l: &mut Lower, v: Recover<Sp<LoadM>>) -> Option<LoadPlan> {
    match v {
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
    }
}

/// `discriminator:`: the pointers naming a frame's kind (default `/type`).
fn kind_pointers(l: &mut Lower, v: Recover<Vec<Sp<String>>>) -> Option<Vec<String>> {
    match v {
        Recover::Ok(ps) if ps.is_empty() => {
            l.err(TOP, "discriminator: needs at least one JSON pointer");
            None
        }
        Recover::Ok(ps) => ps.iter().map(|p| l.pointer(p)).collect(),
        _ => Some(vec!["/type".to_owned()]),
    }
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
