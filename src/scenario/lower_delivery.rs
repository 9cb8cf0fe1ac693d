//! Lowering the scenario's `delivery:` block: pointers checked, the latency metric interned.

use std::sync::Arc;

use super::de::{Body, Recover, Sp};
use super::lower::{Lower, Part};
use super::model::DeliveryM;
use super::node::Kind;
use super::plan::Delivery;

impl Lower<'_> {
    /// `delivery:`: pointers checked, the latency metric interned.
    pub(super) fn delivery(&mut self, d: Recover<Sp<DeliveryM>>) -> Part<Arc<Delivery>> {
        let d = match d {
            Recover::Ok(d) => d,
            Recover::Missing => return Part::Absent,
            Recover::Failed => return Part::Wrong,
        };
        let block = self.delivery_block(&d);
        block.map_or(Part::Wrong, |b| Part::Given(Arc::new(b)))
    }

    /// The `delivery:` block's settings; `None` when one is wrong (its error reported).
    fn delivery_block(&mut self, d: &Sp<DeliveryM>) -> Option<Delivery> {
        self.has_delivery = true;
        let v = &d.value;
        let seq = match &v.seq {
            Some(p) => self.pointer(p),
            None => {
                self.err_hint(d.pos, "delivery needs seq:", "e.g. seq: /seq");
                None
            }
        };
        let sent_at = Part::lower(v.sent_at.as_ref(), |p| self.pointer(p));
        let key = Part::lower(v.key.as_ref(), |k| self.key_pointers(k));
        let kinds = v.kinds.iter().flatten().map(|k| k.value.clone()).collect();
        let metric = match (&v.metric, &v.sent_at) {
            (Some(m), None) => {
                self.err_hint(
                    m.pos,
                    "metric: needs sent_at: (the send time the latency counts from)",
                    "e.g. sent_at: /timestamp",
                );
                Part::Wrong
            }
            (Some(m), Some(_)) => self.metric(m).map_or(Part::Wrong, Part::Given),
            (None, Some(_)) => Part::Given(self.intern("delivery")),
            (None, None) => Part::Absent,
        };
        Some(Delivery {
            seq: seq?,
            sent_at: sent_at.field().ok()?,
            key: key.field().ok()?.unwrap_or_default(),
            kinds,
            metric: metric.field().ok()?,
        })
    }

    /// `key: /data/room` or `key: [/type, /data/room]`.
    fn key_pointers(&mut self, b: &Body) -> Option<Vec<String>> {
        let one = |l: &mut Self, n: &super::node::Node| match &n.kind {
            Kind::Str { value, content } => l.pointer(&Sp {
                value: value.clone(),
                pos: *content,
            }),
            _ => {
                l.err_hint(
                    n.pos,
                    "key: is a JSON pointer or a list of them",
                    "e.g. key: /data/room or key: [/type, /data/room]",
                );
                None
            }
        };
        match &b.0.kind {
            Kind::Seq(items) if !items.is_empty() => {
                let all: Vec<_> = items.iter().map(|n| one(self, n)).collect();
                all.into_iter().collect()
            }
            _ => one(self, &b.0).map(|p| vec![p]),
        }
    }
}
