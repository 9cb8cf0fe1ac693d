//! Lowering the constructs that measure flows rather than single replies: `pace` (and its
//! weighted `mix:`), `burst` (and its `rejected:`), `upload`, and the scenario's `delivery:`.

use super::de::{Body, Recover, Scalar, Sp};
use super::lower::{Lower, Part};
use super::model::{BurstM, MixM, PaceM, RejectedM, UploadM, WaitM};
use super::plan::{
    Matcher, MetricId, Pace, PaceRequest, Payload, Pos, RejectBy, Rejected, Step, Upload, Wait,
};
use super::template::{Expr, StepVar, UploadVar};
use super::template_compile::StepScope;

/// Largest generated upload: 1 GiB.
const MAX_UPLOAD: u64 = 1 << 30;
/// Most chunks in one upload.
const MAX_CHUNKS: u64 = 100_000;
/// `chunk_size:` when not given.
const DEFAULT_CHUNK: u64 = 64 << 10;

impl Lower<'_> {
    pub(super) fn burst(&mut self, b: &Sp<BurstM>, unchecked: bool) -> Option<Step> {
        let v = &b.value;
        let payload = self.payload(&v.send, &v.send_text, b.pos, "burst");
        let rate = Part::lower(v.rate.as_ref(), |r| self.rate(r));
        let count = match &v.count {
            Some(c) if c.value >= 1 => Some(c.value),
            Some(c) => {
                self.err(c.pos, "burst count must be at least 1");
                None
            }
            None => {
                self.err_hint(
                    b.pos,
                    "burst needs count:",
                    "e.g. burst: { send: { type: ping }, count: 200 }",
                );
                None
            }
        };
        let rejected = Part::lower(v.rejected.as_ref(), |r| self.rejected(r));
        Some(Step::Burst {
            payload: payload?,
            count: count?,
            rate: rate.field().ok()?,
            unchecked,
            rejected: rejected.field().ok()?,
        })
    }

    fn rejected(&mut self, r: &Sp<RejectedM>) -> Option<Rejected> {
        let v = &r.value;
        let has_matcher = v.kind.is_some() || v.id.is_some() || v.fields.is_some();
        let by = match (&v.close, has_matcher) {
            (Some(c), true) => {
                self.err_hint(
                    c.pos,
                    "rejected: takes a frame matcher or close:, not both",
                    "a refusal is either a frame (kind/id/match) or the server closing",
                );
                None
            }
            (Some(c), false) => self.reject_close(c),
            (None, true) => self
                .matcher_parts(&v.kind, &v.id, &v.fields)
                .map(RejectBy::Frame),
            (None, false) => {
                self.err_hint(
                    r.pos,
                    "rejected: needs kind, id, match or close",
                    "e.g. rejected: { kind: error, match: { /code: RATE_LIMITED } } or { close: 1008 }",
                );
                None
            }
        };
        let within = self.within(&v.within);
        let metric = Part::lower(v.metric.as_ref(), |m| self.metric(m));
        Some(Rejected {
            by: by?,
            within: within?,
            metric: metric.field().ok()?,
        })
    }

    /// `close: 1008` or `close: any`.
    fn reject_close(&mut self, c: &Sp<Scalar>) -> Option<RejectBy> {
        match &c.value {
            Scalar::Str(s) if s == "any" => Some(RejectBy::Close(None)),
            Scalar::Int(i) if (1000..=4999).contains(i) => Some(RejectBy::Close(Some(*i as u16))),
            other => {
                self.err_hint(
                    c.pos,
                    format!("'{other}' is not a close code"),
                    "write a code from 1000 to 4999, or any",
                );
                None
            }
        }
    }

    pub(super) fn pace(&mut self, p: &Sp<PaceM>, unchecked: bool) -> Option<Pace> {
        let v = &p.value;
        let requests = self.pace_requests(p);
        let rate = Part::lower(v.rate.as_ref(), |r| self.rate(r));
        let duration = Part::lower(v.duration.as_ref(), |d| {
            self.positive_duration(d, "pace duration")
        });
        if v.count.is_none() && v.duration.is_none() {
            self.err_hint(
                p.pos,
                "pace needs count: or duration:",
                "e.g. pace: { send: ..., rate: 100/s, count: 1000 }",
            );
            return None;
        }
        if let Some(c) = v.count.as_ref().filter(|c| c.value == 0) {
            self.err(c.pos, "pace count must be at least 1");
            return None;
        }
        let in_flight = match &v.in_flight {
            Some(n) if n.value == 0 => {
                self.err(n.pos, "in_flight must be at least 1");
                None
            }
            Some(n) => Some(n.value),
            None => Some(1),
        };
        let within = self.within(&v.within);
        Some(Pace {
            requests: requests?,
            rate: rate.field().ok()?,
            count: v.count.as_ref().map(|c| c.value),
            duration: duration.field().ok()?,
            in_flight: in_flight?,
            within: within?,
            unchecked,
            spread: 0,
        })
    }

    /// `send:`/`send_text:` as one request, or `mix:` as several; `reply:` and `metric:`
    /// beside `mix:` are the entries' defaults.
    fn pace_requests(&mut self, p: &Sp<PaceM>) -> Option<Vec<PaceRequest>> {
        let v = &p.value;
        let reply = match &v.reply {
            Some(r) => self.matcher(&r.value),
            None => Some(Matcher::default()),
        };
        // The default `rtt` is only interned for a request that records into it: a mix whose
        // entries all name their own metric has no `rtt` row.
        let metric = Part::lower(v.metric.as_ref(), |m| self.metric(m));
        let Some(mix) = &v.mix else {
            let metric = match metric {
                Part::Absent => Some(self.intern("rtt")),
                written => written.given(),
            };
            let payload = self.payload(&v.send, &v.send_text, p.pos, "pace");
            return Some(vec![PaceRequest {
                weight: 1.0,
                payload: payload?,
                reply: reply?,
                metric: metric?,
            }]);
        };
        if let Some(pos) = v
            .send
            .as_ref()
            .map(|b| b.0.pos)
            .or(v.send_text.as_ref().map(|t| t.pos))
        {
            self.err(pos, "pace takes send:/send_text: or mix:, not both");
            return None;
        }
        if mix.value.is_empty() {
            self.err(mix.pos, "mix: needs at least one entry");
            return None;
        }
        let (reply, metric) = (reply?, metric.field().ok()?);
        let mut out = Vec::new();
        let mut ok = true;
        for m in &mix.value {
            match m {
                Recover::Ok(m) => match self.mix_entry(m, &reply, metric) {
                    Some(r) => out.push(r),
                    None => ok = false,
                },
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        if out.iter().map(|r| r.weight).sum::<f64>() <= 0.0 {
            self.err(mix.pos, "mix weights sum to 0");
            return None;
        }
        out.retain(|r| r.weight > 0.0);
        Some(out)
    }

    fn mix_entry(
        &mut self,
        m: &Sp<MixM>,
        reply: &Matcher,
        metric: Option<super::plan::MetricId>,
    ) -> Option<PaceRequest> {
        let v = &m.value;
        let weight = self.weight(&v.weight);
        let payload = self.payload(&v.send, &v.send_text, m.pos, "a mix entry");
        let reply = match &v.reply {
            Some(r) => self.matcher(&r.value),
            None => Some(reply.clone()),
        };
        let metric = match &v.metric {
            Some(m) => self.metric(m),
            None => Some(metric.unwrap_or_else(|| self.intern("rtt"))),
        };
        Some(PaceRequest {
            weight: weight?,
            payload: payload?,
            reply: reply?,
            metric: metric?,
        })
    }

    /// A reply to wait for: at least one condition, `within` default 5 s.
    fn wait(&mut self, w: &Sp<WaitM>, what: &str) -> Option<Wait> {
        let v = &w.value;
        if v.kind.is_none() && v.id.is_none() && v.fields.is_none() {
            self.err_hint(
                w.pos,
                format!("{what} needs at least one of kind, id or match"),
                format!("e.g. {what}: {{ kind: ack, within: 2s }}"),
            );
            return None;
        }
        let matcher = self.matcher_parts(&v.kind, &v.id, &v.fields);
        let within = self.within(&v.within);
        Some(Wait {
            matcher: matcher?,
            within: within?,
        })
    }

    /// A JSON body the upload step sends, compiled with `scope`'s step values visible.
    fn upload_body(&mut self, b: &Option<Body>, scope: StepScope) -> Part<Payload> {
        Part::lower(b.as_ref(), |b| {
            self.step_scope = scope;
            let t = self.json(b);
            self.step_scope = StepScope::None;
            t.map(Payload::Json)
        })
    }

    /// [`Lower::upload_body`] for a body that must be written: `(where the step is, what the
    /// key is, an example)` say so when it is not.
    fn required_body(
        &mut self,
        b: &Option<Body>,
        scope: StepScope,
        (at, what, example): (Pos, &str, &str),
    ) -> Option<Payload> {
        if b.is_none() {
            self.err_hint(
                at,
                format!("upload needs {what}:"),
                format!("e.g. {example}"),
            );
        }
        self.upload_body(b, scope).given()
    }

    fn scoped_wait(&mut self, w: &Option<Sp<WaitM>>, scope: StepScope, what: &str) -> Part<Wait> {
        Part::lower(w.as_ref(), |w| {
            self.step_scope = scope;
            let out = self.wait(w, what);
            self.step_scope = StepScope::None;
            out
        })
    }

    pub(super) fn upload(&mut self, u: &Sp<UploadM>, unchecked: bool) -> Option<Step> {
        let v = &u.value;
        let (size, chunk_size) = self.upload_sizes(u)?;
        let id = Part::lower(v.id.as_ref(), |t| self.template(&t.value, t.pos));
        self.step_scope = StepScope::Upload;
        let name = Part::lower(v.name.as_ref(), |t| self.template(&t.value, t.pos));
        self.step_scope = StepScope::None;
        let start =
            self.required_body(&v.start, StepScope::Upload, (u.pos, "start", START_EXAMPLE));
        let started = self.scoped_wait(&v.started, StepScope::Upload, "started");
        let chunk = self.required_body(&v.chunk, StepScope::Chunk, (u.pos, "chunk", CHUNK_EXAMPLE));
        let chunk_ack = self.scoped_wait(&v.chunk_ack, StepScope::Chunk, "chunk_ack");
        let in_flight = self.upload_in_flight(v);
        let finish = self.upload_body(&v.finish, StepScope::Upload);
        let complete = self.upload_complete(u);
        let expect_error = self.scoped_wait(&v.expect_error, StepScope::Upload, "expect_error");
        let corrupt = self.corrupt(v, size.div_ceil(chunk_size));
        let metric = self.upload_metric(v)?;
        let mut up = Upload {
            size,
            chunk_size,
            id: id.field().ok()?,
            name: name.field().ok()?,
            start: start?,
            started: started.field().ok()?,
            chunk: chunk?,
            chunk_ack: chunk_ack.field().ok()?,
            in_flight: in_flight?,
            finish: finish.field().ok()?,
            complete: complete?,
            corrupt: corrupt.field().ok()?,
            expect_error: expect_error.field().ok()?,
            metric,
            unchecked,
            needs_file_hash: false,
        };
        up.needs_file_hash = reads_file_hash(&up);
        Some(Step::Upload(Box::new(up)))
    }

    /// `in_flight:`: chunks sent ahead of their acknowledgement (1 when not given).
    fn upload_in_flight(&mut self, v: &UploadM) -> Option<u32> {
        match (&v.in_flight, &v.chunk_ack) {
            (Some(n), None) => {
                self.err_hint(
                    n.pos,
                    "in_flight needs chunk_ack:",
                    "without acknowledgements every chunk is sent at once",
                );
                None
            }
            (Some(n), Some(_)) if n.value == 0 => {
                self.err(n.pos, "in_flight must be at least 1");
                None
            }
            (Some(n), Some(_)) => Some(n.value),
            (None, _) => Some(1),
        }
    }

    /// `complete:`, the reply that ends an upload, which every upload needs.
    fn upload_complete(&mut self, u: &Sp<UploadM>) -> Option<Wait> {
        let v = &u.value;
        match &v.complete {
            Some(_) => self
                .scoped_wait(&v.complete, StepScope::Upload, "complete")
                .given(),
            None => {
                self.err_hint(
                    u.pos,
                    "upload needs complete:",
                    "e.g. complete: { kind: upload_done, match: { /upload_id: \"{{upload.id}}\" }, within: 10s }",
                );
                None
            }
        }
    }

    /// The upload's metric (`upload` when not named), noted as one uploads record into.
    fn upload_metric(&mut self, v: &UploadM) -> Option<MetricId> {
        let metric = match &v.metric {
            Some(m) => self.metric(m)?,
            None => self.intern("upload"),
        };
        let name_of = self.metrics[metric.0 as usize].clone();
        if !self.upload_metrics.contains(&name_of) {
            self.upload_metrics.push(name_of);
        }
        Some(metric)
    }

    fn upload_sizes(&mut self, u: &Sp<UploadM>) -> Option<(u64, u64)> {
        let v = &u.value;
        let size = match &v.size {
            Some(s) => self.size(s).and_then(|n| {
                (n <= MAX_UPLOAD)
                    .then_some(n)
                    .or_else(|| self.limit(s.pos, "upload size is limited to 1GiB"))
            }),
            None => {
                self.err_hint(u.pos, "upload needs size:", "e.g. size: 1MiB");
                None
            }
        };
        let chunk = match &v.chunk_size {
            Some(s) => self.size(s).and_then(|n| {
                (n >= 1)
                    .then_some(n)
                    .or_else(|| self.limit(s.pos, "chunk_size must be at least 1 byte"))
            }),
            None => Some(DEFAULT_CHUNK),
        };
        let (size, chunk) = (size?, chunk?);
        if size.div_ceil(chunk) > MAX_CHUNKS {
            let at = v.chunk_size.as_ref().map_or(u.pos, |c| c.pos);
            self.err_hint(
                at,
                format!(
                    "{} chunks is more than the {MAX_CHUNKS} an upload may have",
                    size.div_ceil(chunk)
                ),
                "use a larger chunk_size",
            );
            return None;
        }
        Some((size, chunk))
    }

    fn limit<T>(&mut self, pos: Pos, msg: &str) -> Option<T> {
        self.err(pos, msg);
        None
    }

    /// `corrupt: N`: an existing chunk, and an `expect_error:` to say what the server answers.
    fn corrupt(&mut self, v: &UploadM, chunks: u64) -> Part<u64> {
        let Some(c) = &v.corrupt else {
            return Part::Absent;
        };
        if c.value >= chunks {
            self.err(
                c.pos,
                format!(
                    "corrupt: {} is past the last chunk ({chunks} chunks, from 0)",
                    c.value
                ),
            );
            return Part::Wrong;
        }
        if v.expect_error.is_none() {
            self.err_hint(
                c.pos,
                "corrupt: needs expect_error: (the reply the server sends for the bad chunk)",
                "e.g. expect_error: { kind: error, match: { /code: CHECKSUM_MISMATCH } }",
            );
            return Part::Wrong;
        }
        Part::Given(c.value)
    }
}

const START_EXAMPLE: &str =
    "start: { type: upload_start, id: \"{{upload.id}}\", size: \"{{upload.size}}\" }";
const CHUNK_EXAMPLE: &str =
    "chunk: { type: chunk, upload: \"{{upload.id}}\", index: \"{{chunk.index}}\", data: \"{{chunk.base64}}\" }";

/// Whether any template of the step reads `{{upload.sha256}}`.
fn reads_file_hash(u: &Upload) -> bool {
    let e = Expr::Step(StepVar::Upload(UploadVar::Sha256));
    let matcher = |m: &Matcher| {
        m.id.as_ref().is_some_and(|t| t.uses(&e)) || m.fields.iter().any(|(_, t)| t.uses(&e))
    };
    let body = |p: &Payload| matches!(p, Payload::Json(t) if t.uses(&e));
    let waits = [&u.started, &u.chunk_ack, &u.expect_error];
    body(&u.start)
        || body(&u.chunk)
        || u.finish.as_ref().is_some_and(body)
        || u.name.as_ref().is_some_and(|t| t.uses(&e))
        || matcher(&u.complete.matcher)
        || waits
            .iter()
            .any(|w| w.as_ref().is_some_and(|w| matcher(&w.matcher)))
}
