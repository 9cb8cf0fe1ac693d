//! The `upload` step: a file generated from the VU's seeded generator, sent as a start
//! message and one message per chunk (base64 data, SHA-256 per chunk), with optional
//! per-chunk acknowledgements under an in-flight window, and a final reply to wait for.
//!
//! The file is never held whole: chunks are generated one at a time into a reused buffer
//! (twice when a template needs the whole file's hash before the start message).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::frame::Frame;
use super::io::Woke;
use super::matcher::Want;
use super::samples::Sample;
use super::vu::{write_sample, Flow, Vu};
use crate::metrics::{ErrorKind, UploadEvent};
use crate::scenario::plan::Upload;

/// What the upload is waiting for, and how it ended.
struct Waits {
    complete: Want,
    error: Option<Want>,
    /// `started:` while it is awaited.
    started: Option<Want>,
    /// Unacknowledged chunks: the ack awaited and its deadline.
    acks: VecDeque<(Want, Instant)>,
    /// The final reply: (it was the expected error, when it arrived).
    ended: Option<(bool, Instant)>,
}

impl Waits {
    fn accept(&mut self, f: &Frame) -> bool {
        if self.ended.is_none() {
            if self.error.as_ref().is_some_and(|e| e.matches(f)) {
                self.ended = Some((true, f.at));
                return true;
            }
            if self.complete.matches(f) {
                self.ended = Some((false, f.at));
                return true;
            }
        }
        if self.started.as_ref().is_some_and(|s| s.matches(f)) {
            self.started = None;
            return true;
        }
        match self.acks.iter().position(|(w, _)| w.matches(f)) {
            Some(i) => {
                self.acks.remove(i);
                true
            }
            None => false,
        }
    }
}

/// Why an upload stopped short.
enum Short {
    /// A deadline passed.
    Timeout,
    /// The connection went away (or the run stops): end the step with this flow.
    Flow(Flow),
}

impl Vu {
    /// Runs an `upload` step.
    pub(super) async fn upload(&mut self, u: &Upload) -> Flow {
        if self.io.ws.is_none() {
            return self.lost();
        }
        let rec = self.shared.rec.clone();
        {
            let mut r = rec.borrow_mut();
            r.op();
            r.upload(u.metric, UploadEvent::Started);
        }
        let seed: u64 = self.ctx.rng.random();
        self.begin_upload(u, seed);
        let t0 = Instant::now();
        let result = self.run_upload(u, seed).await;
        if let Some(v) = &mut self.ctx.upload {
            v.active = false;
            v.in_chunk = false;
        }
        self.upload_ended(u, t0, result)
    }

    /// Records how the upload begun at `t0` ended: its latency and completion, a reply
    /// other than the one expected, a timeout; or the flow when the connection or the run
    /// ended it.
    fn upload_ended(
        &mut self,
        u: &Upload,
        t0: Instant,
        result: Result<(bool, Instant), Short>,
    ) -> Flow {
        let since = |at: Instant| at.saturating_duration_since(t0).as_micros() as u64;
        let rec = self.shared.rec.clone();
        let mut r = rec.borrow_mut();
        match result {
            Ok((rejected, at)) if rejected == u.expect_error.is_some() => {
                let us = since(at);
                let s = Sample {
                    intended: t0,
                    sent: t0,
                    received: at,
                    latency_us: us,
                    service_us: us,
                };
                // The recorder is borrowed here: the latency goes in through it.
                r.latency(u.metric, us, us);
                write_sample(&self.shared, self.ctx.vu, u.metric, s, "");
                r.upload(
                    u.metric,
                    if rejected {
                        UploadEvent::Rejected
                    } else {
                        UploadEvent::Completed {
                            bytes: u.size,
                            us: since(at),
                        }
                    },
                );
            }
            Ok(_) => {
                // It completed where an error was expected (or the reverse).
                r.error(ErrorKind::UnexpectedReply);
                r.upload(u.metric, UploadEvent::Failed);
                self.errors += 1;
            }
            Err(Short::Timeout) => {
                r.timeout(Some(u.metric), since(Instant::now()));
                r.upload(u.metric, UploadEvent::Failed);
                self.errors += 1;
            }
            Err(Short::Flow(flow)) => {
                let end = match flow {
                    Flow::Stop => UploadEvent::Cut,
                    _ => UploadEvent::Failed,
                };
                if flow != Flow::Next {
                    r.upload(u.metric, end);
                }
                return flow;
            }
        }
        Flow::Next
    }

    /// Draws the upload's id, sizes, name and (when a template reads it) the file's hash.
    fn begin_upload(&mut self, u: &Upload, seed: u64) {
        let mut vars = self.ctx.upload.take().unwrap_or_default();
        vars.active = false;
        vars.id.clear();
        match &u.id {
            Some(t) => t.render(&mut self.ctx, &mut vars.id),
            None => {
                let bytes: [u8; 16] = self.ctx.rng.random();
                let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                let _ = write!(vars.id, "{}", id.hyphenated());
            }
        }
        (vars.size, vars.chunk_size, vars.chunks) = (u.size, u.chunk_size, u.chunks());
        (vars.corrupt, vars.in_chunk) = (u.corrupt, false);
        vars.sha256.clear();
        if u.needs_file_hash {
            vars.hash_file(seed);
        }
        vars.active = true;
        vars.name.clear();
        self.ctx.upload = Some(vars);
        let mut name = String::new();
        match &u.name {
            Some(t) => t.render(&mut self.ctx, &mut name),
            None => {
                let id = self.ctx.upload.as_ref().map_or("", |v| v.id.as_str());
                let _ = write!(name, "{id}.bin");
            }
        }
        if let Some(v) = &mut self.ctx.upload {
            v.name = name;
        }
    }

    /// Start, chunks, finish, then the final reply: `(it was the error, when it came)`.
    async fn run_upload(&mut self, u: &Upload, seed: u64) -> Result<(bool, Instant), Short> {
        self.upload_send(&u.start, u.unchecked).await?;
        let mut w = self.upload_waits(u);
        if let Some(s) = &u.started {
            w.started = Some(Want::render(&s.matcher, &mut self.ctx));
            let deadline = Instant::now() + s.within;
            self.upload_wait(&mut w, deadline, |w| w.started.is_none())
                .await?;
        }
        let mut gen = SmallRng::seed_from_u64(seed);
        let last = u.corrupt.unwrap_or(u.chunks().saturating_sub(1));
        for i in (0..u.chunks()).take_while(|i| *i <= last) {
            while w.acks.len() >= u.in_flight as usize && w.ended.is_none() {
                let deadline = w.acks.front().map_or_else(Instant::now, |a| a.1);
                let window = u.in_flight as usize;
                self.upload_wait(&mut w, deadline, |w| w.acks.len() < window)
                    .await?;
            }
            if w.ended.is_some() {
                break;
            }
            if let Some(v) = &mut self.ctx.upload {
                v.next_chunk(&mut gen, i, u.corrupt == Some(i));
            }
            self.upload_send(&u.chunk, u.unchecked).await?;
            if let Some(ack) = &u.chunk_ack {
                let want = Want::render(&ack.matcher, &mut self.ctx);
                w.acks.push_back((want, Instant::now() + ack.within));
            }
            let mut accept = |f: &Frame| w.accept(f);
            if let Some(Woke::Closed(_)) = self.io.drain_ready(&mut accept).await {
                return Err(Short::Flow(self.lost()));
            }
        }
        if let Some(v) = &mut self.ctx.upload {
            v.in_chunk = false;
        }
        if u.corrupt.is_none() && w.ended.is_none() {
            while let Some(deadline) = w.acks.front().map(|a| a.1) {
                self.upload_wait(&mut w, deadline, |w| w.acks.is_empty())
                    .await?;
            }
            if let Some(f) = &u.finish {
                self.upload_send(f, u.unchecked).await?;
            }
        }
        let within = u.expect_error.as_ref().unwrap_or(&u.complete).within;
        let deadline = Instant::now() + within;
        self.upload_wait(&mut w, deadline, |w| w.ended.is_some())
            .await?;
        w.ended.ok_or(Short::Timeout)
    }

    /// What the upload waits for from the start: its final reply, or the expected error.
    fn upload_waits(&mut self, u: &Upload) -> Waits {
        Waits {
            complete: Want::render(&u.complete.matcher, &mut self.ctx),
            error: u
                .expect_error
                .as_ref()
                .map(|e| Want::render(&e.matcher, &mut self.ctx)),
            started: None,
            acks: VecDeque::new(),
            ended: None,
        }
    }

    /// Sends one of the step's messages; a lost connection ends the upload.
    async fn upload_send(
        &mut self,
        p: &crate::scenario::plan::Payload,
        unchecked: bool,
    ) -> Result<(), Short> {
        match self.send(p, unchecked).await {
            Flow::Next => Ok(()),
            flow => Err(Short::Flow(flow)),
        }
    }

    /// Reads frames into `w` until `done(w)` holds, the final reply arrives, or `deadline`.
    async fn upload_wait(
        &mut self,
        w: &mut Waits,
        deadline: Instant,
        done: impl Fn(&Waits) -> bool,
    ) -> Result<(), Short> {
        loop {
            if done(w) || w.ended.is_some() {
                return Ok(());
            }
            let mut accept = |f: &Frame| w.accept(f);
            match self.io.pump(deadline, &mut accept).await {
                Woke::Matched => {}
                Woke::Deadline => return Err(Short::Timeout),
                Woke::Closed(_) => return Err(Short::Flow(self.lost())),
                Woke::Stop => return Err(Short::Flow(Flow::Stop)),
            }
        }
    }
}
