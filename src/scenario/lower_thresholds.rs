//! Lowering `thresholds:`: each expression parsed, and the metrics, delivery block and upload
//! steps it names checked against the scenario.

use super::de::{Recover, Sp};
use super::diagnostic::suggestion;
use super::lower::Lower;
use super::plan::Pos;
use super::template_compile::offset_pos;
use crate::scenario::thresholds::{self, Quantity, Threshold};

pub(super) fn thresholds(l: &mut Lower, v: Recover<Vec<Sp<String>>>) -> Option<Vec<Threshold>> {
    let mut out = Vec::new();
    for t in v.ok().unwrap_or_default() {
        let src = &t.value;
        let (lhs, op, rhs) = match thresholds::parse(src) {
            Ok(p) => p,
            Err(e) => {
                l.err(offset_pos(src, t.pos, e.offset), e.message);
                continue;
            }
        };
        if !names_known(l, &lhs, src, t.pos) {
            continue;
        }
        out.push(Threshold {
            source: src.clone(),
            pos: t.pos,
            lhs,
            op,
            rhs,
        });
    }
    Some(out)
}

/// A latency metric must be declared, `delivery.*` needs a `delivery:` block, and
/// `upload.<metric>.*` an upload step with that metric; false (reported) otherwise.
fn names_known(l: &mut Lower, lhs: &Quantity, src: &str, pos: Pos) -> bool {
    let (metric, known, what, none, label) = match lhs {
        Quantity::Latency { metric, .. } | Quantity::Service { metric, .. } => (
            metric,
            &l.metrics,
            format!("threshold on undeclared metric '{metric}'"),
            "declare it with metric: on an expect or pace step",
            "declared metrics",
        ),
        Quantity::Upload { metric, .. } => (
            metric,
            &l.upload_metrics,
            format!("threshold on '{metric}', which is not the metric of an upload step"),
            "no upload step in this scenario",
            "upload metrics",
        ),
        Quantity::Delivery(_) if !l.has_delivery => {
            l.err_hint(
                offset_pos(src, pos, src.len() - src.trim_start().len()),
                "threshold on delivery, but the scenario has no delivery: block",
                "add delivery: { seq: /seq, sent_at: /timestamp } at the top level",
            );
            return false;
        }
        _ => return true,
    };
    if known.contains(metric) {
        return true;
    }
    let at = src.find(&format!(".{metric}.")).map_or(0, |i| i + 1);
    let hint = if known.is_empty() {
        none.to_owned()
    } else {
        format!("{label}: {}", known.join(", "))
    };
    let msg = format!(
        "{what}{}",
        suggestion(metric, known.iter().map(String::as_str))
    );
    l.err_hint(offset_pos(src, pos, at), msg, hint);
    false
}
