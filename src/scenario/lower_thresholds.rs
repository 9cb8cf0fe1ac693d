//! Lowering `thresholds:`: each expression parsed, and the metrics, delivery block and upload
//! steps it names checked against the scenario.

use super::de::{Recover, Sp};
use super::diagnostic::suggestion;
use super::lower::Lower;
use super::plan::Pos;
use super::template_compile::offset_pos;
use crate::check::thresholds::{self, Quantity, Threshold};

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
        if let Quantity::Latency { metric, .. } | Quantity::Service { metric, .. } = &lhs {
            if !l.metrics.contains(metric) {
                let at = src.find(&format!(".{metric}.")).map_or(0, |i| i + 1);
                let hint = if l.metrics.is_empty() {
                    "declare it with metric: on an expect or pace step".to_owned()
                } else {
                    format!("declared metrics: {}", l.metrics.join(", "))
                };
                let msg = format!(
                    "threshold on undeclared metric '{metric}'{}",
                    suggestion(metric, l.metrics.iter().map(String::as_str))
                );
                l.err_hint(offset_pos(src, t.pos, at), msg, hint);
                continue;
            }
        }
        if !flow_threshold_ok(l, &lhs, src, t.pos) {
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

/// `delivery.*` needs a `delivery:` block; `upload.<metric>.*` an upload step with that metric.
fn flow_threshold_ok(l: &mut Lower, lhs: &Quantity, src: &str, pos: Pos) -> bool {
    match lhs {
        Quantity::Delivery(_) if !l.has_delivery => {
            l.err_hint(
                offset_pos(src, pos, src.len() - src.trim_start().len()),
                "threshold on delivery, but the scenario has no delivery: block",
                "add delivery: { seq: /seq, sent_at: /timestamp } at the top level",
            );
            false
        }
        Quantity::Upload { metric, .. } if !l.upload_metrics.contains(metric) => {
            let at = src.find(&format!(".{metric}.")).map_or(0, |i| i + 1);
            let hint = if l.upload_metrics.is_empty() {
                "no upload step in this scenario".to_owned()
            } else {
                format!("upload metrics: {}", l.upload_metrics.join(", "))
            };
            let msg = format!(
                "threshold on '{metric}', which is not the metric of an upload step{}",
                suggestion(metric, l.upload_metrics.iter().map(String::as_str))
            );
            l.err_hint(offset_pos(src, pos, at), msg, hint);
            false
        }
        _ => true,
    }
}
