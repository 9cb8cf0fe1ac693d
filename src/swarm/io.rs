//! One VU's connection and its inbox: every inbound frame is parsed once, classified,
//! counted, answered by auto-reply rules, and routed to whatever the current step waits for;
//! frames nobody waits for are counted and kept in a small mailbox for a later `expect`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::connect::Ws;
use super::delivery::Tracker;
use super::frame::{id_of, kind_of_nodes, kind_on_tape, Frame, Shape};
use super::matcher::kind_of;
use super::matcher::IdKey;
use super::matcher::Want;
use super::timer::{Precise, Sleep};
use super::wall::WallClock;
use crate::metrics::{ErrorKind, Recorder};
use crate::protocol::conversation::Conversation;
use crate::protocol::fast::{Like, Recent};
use crate::protocol::fields::{Fields, Known};
use crate::protocol::marks::Marks;
use crate::protocol::tape::{Doc, Tape, TapeNode};
use crate::protocol::{Direction, Profile, Violation};

/// Unmatched frames kept for a later `expect`; older ones are dropped (still counted).
const MAILBOX: usize = 32;
/// Most bytes of frame text the mailbox holds per VU; older frames are dropped to stay under
/// it, and a larger frame is not held at all (both still counted). Without it 32 frames of
/// 15 MiB held 1.37 GB with 4 VUs.
pub const MAILBOX_BYTES: usize = 1 << 20;
/// Most buffered frames handled in one pass before control returns to the step.
const READ_BATCH: usize = 64;
/// Longest a write waits for the peer to read (our socket buffer full, nothing drains)
/// before the connection is closed and counted as `peer_not_reading`.
pub const WRITE_STALL: Duration = Duration::from_secs(5);
/// Most bytes of pongs that may pile up while our writes are blocked: tungstenite queues a
/// pong for every ping, so a peer that pings and never reads grew squall by 1.67 GB in 20 s.
pub const PONG_BACKLOG: usize = 256 << 10;
/// How long a closing connection is drained for the peer's close frame.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// How a wait ended.
#[derive(Debug)]
pub enum Woke {
    /// The awaited frame arrived (the step's closure has seen it).
    Matched,
    /// The deadline passed.
    Deadline,
    /// The connection ended; the close code if the peer sent one.
    Closed(Option<u16>),
    /// The run is being stopped at once.
    Stop,
}

/// A frame sitting in the mailbox: its text (shared, not copied) and arrival time.
pub struct Held {
    /// The frame's text.
    pub text: Utf8Bytes,
    /// When it arrived.
    pub at: Instant,
}

/// What a waiting step is given for each inbound frame: true when it was the awaited one.
pub type Accept<'w> = dyn FnMut(&Frame) -> bool + 'w;

/// The connection side of a VU.
pub struct Io {
    /// The open connection, if any.
    pub ws: Option<Ws>,
    /// How frames are read (kind and id pointers).
    pub shape: Arc<Shape>,
    /// The worker's recorder.
    pub rec: Rc<RefCell<Recorder>>,
    /// Unmatched recent frames (at most [`MAILBOX`], [`MAILBOX_BYTES`] of text).
    pub mailbox: VecDeque<Held>,
    /// Bytes of text in `mailbox`.
    mailbox_bytes: usize,
    /// Auto-reply rules rendered for this connection: (trigger, what to send).
    pub replies: Vec<(Want, String)>,
    /// Becomes true when the run must stop at once.
    pub hard_stop: watch::Receiver<bool>,
    /// The worker's precise timer for schedules (`None`: tokio's timer serves).
    pub timer: Option<Rc<Precise>>,
    queued_replies: Vec<String>,
    /// Bytes of pongs queued since our writes last drained (see [`PONG_BACKLOG`]).
    unsent_pongs: usize,
    failure_recorded: bool,
    /// The close code the peer ended the connection with, until a step asks.
    peer_close: Option<u16>,
    checker: Option<Checker>,
    delivery: Option<Tracker>,
}

/// Schema checking for one VU's frames.
pub struct Checker {
    /// The protocol's compiled profile (shared by every VU).
    pub profile: Arc<Profile>,
    /// When the run started (samples carry their time).
    pub start: Instant,
    /// The VU (samples carry it).
    pub vu: u64,
    /// How far in the future an inbound timestamp may be.
    pub skew: Duration,
    /// What the current connection has said: pending requests, rooms held.
    pub conversation: Conversation,
    /// The worker's parse buffer, shared by its VUs: one frame is checked at a time.
    pub tape: Rc<RefCell<Tape>>,
    /// A frame's wall-clock arrival time, for the clock check, from its `Instant`.
    wall: WallClock,
    /// The last pattern walks, resumed by the next frame's strings.
    recent: Recent,
}

impl Checker {
    /// Checking for VU `vu` of a run that started at `start`, on the worker's `tape`.
    pub fn new(
        profile: Arc<Profile>,
        start: Instant,
        vu: u64,
        skew: Duration,
        tape: Rc<RefCell<Tape>>,
    ) -> Self {
        Checker {
            profile,
            start,
            vu,
            skew,
            conversation: Conversation::default(),
            tape,
            wall: WallClock::new(),
            recent: Recent::default(),
        }
    }

    fn record(&self, rec: &RefCell<Recorder>, found: Result<(), Vec<Violation>>, frame: &str) {
        let mut rec = rec.borrow_mut();
        rec.checked();
        if let Err(vs) = found {
            rec.violations(&vs, frame, self.start.elapsed().as_secs_f64(), self.vu);
        }
    }

    /// Parses an inbound text frame once (onto the tape), classifies it, and checks it: the
    /// schemas, the clock, reply pairing, rooms. The frame returned carries the kind and id,
    /// and the `Value` when checking had to build one.
    pub fn inbound<'t>(
        &mut self,
        text: &'t str,
        at: Instant,
        shape: &Shape,
        rec: &RefCell<Recorder>,
    ) -> Frame<'t> {
        let tape = self.tape.clone();
        let mut tape = tape.borrow_mut();
        let Some(doc) = tape.parse(text) else {
            // Not JSON, or JSON the tape leaves to serde_json: the `Value` path decides.
            let frame = Frame::from_value(text, at, shape, serde_json::from_str(text).ok());
            let extra = match frame.value() {
                Some(v) => self.semantics_in(frame.kind(), v, None, at),
                None => Vec::new(),
            };
            let found = self.verdict(Direction::In, frame.kind(), frame.value(), text);
            self.record(rec, merge(found, extra), text);
            return frame;
        };
        let clock = self.profile.clock.as_deref();
        let l = land(text, &doc, shape, clock, &mut self.recent, Direction::In);
        let known = Known {
            doc: &doc,
            pointer: shape.id_pointer(),
            node: l.id,
        };
        let frame = Frame::from_tape(text, at, l.kind, l.id.map(id_of));
        let extra = self.semantics_in(frame.kind(), &known, Some(l.stamp), at);
        let recent = Some(&mut self.recent);
        if self
            .profile
            .is_clean_like(Direction::In, frame.kind(), &doc, recent, l.like)
        {
            self.recent.landed(Direction::In, l.marks);
            let found = if extra.is_empty() { Ok(()) } else { Err(extra) };
            self.record(rec, found, text);
            return frame;
        }
        // The tape's validators said no: the `Value` validators give the verdict and where.
        let v = serde_json::from_str::<Value>(text).ok();
        let found = self.verdict(Direction::In, frame.kind(), v.as_ref(), text);
        self.record(rec, merge(found, extra), text);
        match v {
            Some(v) => frame.with_value(v),
            None => frame,
        }
    }

    /// The schema verdict with its details, on the frame's `Value` (`None`: not JSON).
    fn verdict(
        &self,
        dir: Direction,
        kind: Option<&str>,
        v: Option<&Value>,
        text: &str,
    ) -> Result<(), Vec<Violation>> {
        match v {
            Some(v) => self.profile.check_kind(dir, kind, v),
            None => self.profile.check_text(dir, text),
        }
    }

    /// The checks beyond shape for an inbound frame. `stamp`: the clock field's text when
    /// the caller has read it (`Some(None)`: the frame has none), else it is read off `v`.
    fn semantics_in<F: Fields + ?Sized>(
        &mut self,
        kind: Option<&str>,
        v: &F,
        stamp: Option<Option<&str>>,
        at: Instant,
    ) -> Vec<Violation> {
        let now = self.profile.clock.is_some().then(|| self.wall.at(at));
        let p = &self.profile;
        self.conversation
            .received(p, kind, v, now, self.skew, stamp)
    }

    /// Notes an outbound frame for reply pairing and rooms.
    fn noted_out<F: Fields + ?Sized>(&mut self, kind: Option<&str>, v: &F) {
        self.conversation.sent(&self.profile, kind, v);
    }

    /// Parses an outbound text frame onto the tape, notes it, and checks it (unless
    /// `unchecked`). Returns its correlation id when the tape read it (`Some(None)`: it has
    /// none), so the sender need not read the frame again.
    pub fn outbound(
        &mut self,
        text: &str,
        shape: &Shape,
        unchecked: bool,
        rec: &RefCell<Recorder>,
    ) -> Option<Option<IdKey>> {
        let tape = self.tape.clone();
        let mut tape = tape.borrow_mut();
        let Some(doc) = tape.parse(text) else {
            let v = serde_json::from_str::<Value>(text).ok();
            let kind = v.as_ref().and_then(|v| kind_of(v, shape.kind_pointers()));
            let kind = kind.map(|k| k.into_owned());
            self.outbound_value(v.as_ref(), kind.as_deref(), text, unchecked, rec);
            return None;
        };
        let l = land(text, &doc, shape, None, &mut self.recent, Direction::Out);
        let known = Known {
            doc: &doc,
            pointer: shape.id_pointer(),
            node: l.id,
        };
        let id = l.id.map(id_of);
        let kind = l.kind.as_deref();
        self.noted_out(kind, &known);
        if unchecked {
            return Some(id);
        }
        let recent = Some(&mut self.recent);
        if self
            .profile
            .is_clean_like(Direction::Out, kind, &doc, recent, l.like)
        {
            self.recent.landed(Direction::Out, l.marks);
            self.record(rec, Ok(()), text);
            return Some(id);
        }
        let v = serde_json::from_str::<Value>(text).ok();
        let found = self.verdict(Direction::Out, kind, v.as_ref(), text);
        self.record(rec, found, text);
        Some(id)
    }

    /// [`Checker::outbound`] for a frame already parsed into a `Value` (`None`: not JSON).
    fn outbound_value(
        &mut self,
        v: Option<&Value>,
        kind: Option<&str>,
        text: &str,
        unchecked: bool,
        rec: &RefCell<Recorder>,
    ) {
        if let Some(v) = v {
            self.noted_out(kind, v);
        }
        if !unchecked {
            let found = self.verdict(Direction::Out, kind, v, text);
            self.record(rec, found, text);
        }
    }
}

/// A frame's landmarks read off its tape ([`land`]).
struct Landed<'d, 't> {
    kind: Option<Cow<'t, str>>,
    id: Option<TapeNode<'d>>,
    /// The clock field's text (`None`: none, or not a string).
    stamp: Option<&'d str>,
    /// What the frame shares with the last that passed in its direction.
    like: Option<Like>,
    /// Where its landmarks are, to note with its snapshot if it passes.
    marks: Option<Marks>,
}

/// Reads a frame's kind, id and clock field: where the last frame that passed in `dir` had
/// them when this one has that frame's structure, else by lookup.
fn land<'d, 't>(
    text: &'t str,
    doc: &'d Doc<'d>,
    shape: &Shape,
    clock: Option<&str>,
    recent: &mut Recent,
    dir: Direction,
) -> Landed<'d, 't> {
    let like = recent.like_last(dir, doc);
    let marks = like.map(|l| l.marks()).or_else(|| {
        let (kinds, id) = (shape.kind_pointers(), shape.id_pointer());
        Marks::look(doc, kinds, id, clock)
    });
    match marks {
        Some(m) => Landed {
            kind: kind_of_nodes(text, m.kinds(doc)),
            id: m.id(doc),
            stamp: m.clock(doc).and_then(|n| n.str()),
            like,
            marks,
        },
        // More kind pointers than marks keep: all looked up.
        None => Landed {
            kind: kind_on_tape(text, doc, shape.kind_pointers()),
            id: doc.lookup(shape.id_pointer()),
            stamp: clock.and_then(|c| doc.lookup(c)).and_then(|n| n.str()),
            like,
            marks,
        },
    }
}

/// A schema verdict with the semantic checks' findings added.
fn merge(found: Result<(), Vec<Violation>>, extra: Vec<Violation>) -> Result<(), Vec<Violation>> {
    match (found, extra.is_empty()) {
        (found, true) => found,
        (Ok(()), false) => Err(extra),
        (Err(mut vs), false) => {
            vs.extend(extra);
            Err(vs)
        }
    }
}

impl Io {
    /// A VU's connection side, not yet connected.
    pub fn new(
        shape: Arc<Shape>,
        rec: Rc<RefCell<Recorder>>,
        hard_stop: watch::Receiver<bool>,
        checker: Option<Checker>,
        delivery: Option<Tracker>,
    ) -> Self {
        Io {
            ws: None,
            shape,
            rec,
            mailbox: VecDeque::new(),
            mailbox_bytes: 0,
            replies: Vec::new(),
            hard_stop,
            timer: None,
            queued_replies: Vec::new(),
            unsent_pongs: 0,
            failure_recorded: false,
            peer_close: None,
            checker,
            delivery,
        }
    }

    /// Checks an outbound text frame against its schema (unless `unchecked`) and remembers
    /// it when a reply must answer it. Does nothing without a profile. Returns the frame's
    /// correlation id when checking read it (`None`: not read; `Some(None)`: it has none).
    pub fn check_out(&mut self, text: &str, unchecked: bool) -> Option<Option<IdKey>> {
        let c = self.checker.as_mut()?;
        c.outbound(text, &self.shape, unchecked, &self.rec)
    }

    /// [`Io::check_out`] for a frame the caller already parsed (`None`: not JSON) and
    /// classified.
    pub fn check_out_parsed(
        &mut self,
        v: Option<&Value>,
        kind: Option<&str>,
        text: &str,
        unchecked: bool,
    ) {
        if let Some(c) = &mut self.checker {
            c.outbound_value(v, kind, text, unchecked, &self.rec);
        }
    }

    /// Whether the run must stop now.
    pub fn stopping(&self) -> bool {
        *self.hard_stop.borrow()
    }

    /// Reads frames until `want` accepts one, the deadline passes, the connection ends or the
    /// run stops. `want` sees each parsed frame with its kind and arrival time. The deadline
    /// is kept to tokio's millisecond timer: for waits that bound, not schedule.
    pub async fn pump(&mut self, deadline: Instant, want: &mut Accept<'_>) -> Woke {
        let sleep = tokio::time::sleep_until(deadline.into());
        self.pump_with(sleep, want).await
    }

    /// [`Io::pump`] for a deadline that is a schedule's next send: it ends within tens of
    /// microseconds of `deadline` (the worker's [`Precise`] timer) rather than up to a
    /// millisecond late.
    pub async fn pump_on_schedule(&mut self, deadline: Instant, want: &mut Accept<'_>) -> Woke {
        let sleep = Sleep::until(self.timer.as_ref(), deadline);
        self.pump_with(sleep, want).await
    }

    async fn pump_with(&mut self, sleep: impl Future<Output = ()>, want: &mut Accept<'_>) -> Woke {
        tokio::pin!(sleep);
        let mut stop = self.hard_stop.clone();
        loop {
            if *stop.borrow_and_update() {
                return Woke::Stop;
            }
            let Some(ws) = self.ws.as_mut() else {
                return Woke::Closed(None);
            };
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = &mut sleep => return Woke::Deadline,
                _ = stop.changed() => continue,
            };
            if let Some(woke) = self.on_message(msg, want).await {
                return woke;
            }
        }
    }

    /// Handles frames that are already buffered (up to a batch) without waiting, giving each
    /// to `want`. After a wake-up this turns a burst of replies into one pass, so the
    /// requests that follow go out in one write instead of one syscall per reply.
    pub async fn drain_ready(&mut self, want: &mut Accept<'_>) -> Option<Woke> {
        for _ in 0..READ_BATCH {
            let ws = self.ws.as_mut()?;
            let msg = ws.next().now_or_never()?;
            match self.on_message(msg, want).await {
                None | Some(Woke::Matched) => {}
                Some(other) => return Some(other),
            }
        }
        None
    }

    async fn on_message(
        &mut self,
        msg: Option<Result<Message, WsError>>,
        want: &mut Accept<'_>,
    ) -> Option<Woke> {
        match msg {
            Some(Ok(Message::Text(text))) => {
                let matched = self.on_text(text, Instant::now(), want);
                self.flush_replies().await;
                matched.then_some(Woke::Matched)
            }
            Some(Ok(Message::Binary(b))) => {
                self.rec.borrow_mut().frame_in(Some("(binary)"), b.len());
                if let Some(c) = &self.checker {
                    let v = Profile::binary_violation(Direction::In, b.len());
                    c.record(&self.rec, Err(vec![v]), "");
                }
                None
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                self.peer_close = code;
                self.finish(code);
                Some(Woke::Closed(code))
            }
            // Tungstenite answers pings itself; the pongs must not pile up.
            Some(Ok(Message::Ping(data))) => {
                (!self.pong_queued(data.len())).then_some(Woke::Closed(None))
            }
            Some(Ok(_)) => None,
            Some(Err(e)) => {
                self.failed(&e);
                self.finish(None);
                Some(Woke::Closed(None))
            }
            None => {
                self.finish(None);
                Some(Woke::Closed(None))
            }
        }
    }

    /// Reads, counts and routes one text frame; true when `want` took it.
    fn on_text(&mut self, text: Utf8Bytes, at: Instant, want: &mut Accept<'_>) -> bool {
        let frame = match &mut self.checker {
            Some(c) => c.inbound(text.as_str(), at, &self.shape, &self.rec),
            None => Frame::read(text.as_str(), at, &self.shape),
        };
        let kind = if frame.is_json() {
            frame.kind()
        } else {
            Some("(non-json)")
        };
        self.rec.borrow_mut().frame_in(kind, text.len());
        if !frame.is_json() {
            return false;
        }
        if let Some(t) = &mut self.delivery {
            if let Some((seen, latency)) = t.observe(&frame, SystemTime::now) {
                let mut rec = self.rec.borrow_mut();
                rec.delivered(seen);
                if let (Some(us), Some(m)) = (latency, t.metric()) {
                    rec.latency(m, us, us);
                }
            }
        }
        for (on, reply) in &self.replies {
            if on.matches(&frame) {
                self.queued_replies.push(reply.clone());
            }
        }
        if want(&frame) {
            return true;
        }
        drop(frame);
        self.hold(Held { text, at });
        false
    }

    /// Keeps an unmatched frame, dropping the oldest to stay within [`MAILBOX`] frames and
    /// [`MAILBOX_BYTES`]; a frame larger than the byte cap is not kept.
    fn hold(&mut self, held: Held) {
        let len = held.text.len();
        if len > MAILBOX_BYTES {
            return;
        }
        while self.mailbox.len() >= MAILBOX || self.mailbox_bytes + len > MAILBOX_BYTES {
            let Some(old) = self.mailbox.pop_front() else {
                break;
            };
            self.mailbox_bytes -= old.text.len();
        }
        self.mailbox_bytes += len;
        self.mailbox.push_back(held);
    }

    async fn flush_replies(&mut self) {
        if self.queued_replies.is_empty() {
            return;
        }
        let replies = std::mem::take(&mut self.queued_replies);
        for r in replies {
            self.check_out(&r, false);
            let len = r.len();
            if self.feed(Message::text(r)).await {
                self.rec.borrow_mut().frame_out(Some("(auto-reply)"), len);
            }
        }
        self.flush().await;
    }

    /// Offers the mailbox's frames read at or after `since`, oldest first, to `want`; removes
    /// and returns the first one it takes. Frames read before `since` are not offered: they
    /// arrived before the request a waiting step measures was sent, so they cannot answer it.
    pub fn take_held(&mut self, since: Instant, want: &mut Accept<'_>) -> Option<Held> {
        let shape = &self.shape;
        let idx = self
            .mailbox
            .iter()
            .position(|h| h.at >= since && want(&Frame::read(h.text.as_str(), h.at, shape)))?;
        let held = self.mailbox.remove(idx)?;
        self.mailbox_bytes -= held.text.len();
        Some(held)
    }

    /// Queues a message without flushing; false when the connection is gone. Waits at most
    /// [`WRITE_STALL`] for room, and not past the run's hard stop.
    pub async fn feed(&mut self, msg: Message) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        let ready = std::future::poll_fn(|cx| ws.poll_ready_unpin(cx));
        let ready = within_stall(ready, &self.hard_stop).await;
        let r = ready.and_then(|()| ws.start_send_unpin(msg).map_err(WriteFail::Ws));
        self.written(r)
    }

    /// Flushes queued messages: one write for a whole batch. Waits at most [`WRITE_STALL`].
    pub async fn flush(&mut self) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        let r = within_stall(ws.flush(), &self.hard_stop).await;
        if r.is_ok() {
            self.unsent_pongs = 0;
        }
        self.written(r)
    }

    /// True when a write went through; otherwise records why and ends the connection.
    fn written(&mut self, r: Result<(), WriteFail>) -> bool {
        match r {
            Ok(()) => true,
            Err(WriteFail::Ws(e)) => {
                self.failed(&e);
                self.finish(None);
                false
            }
            Err(WriteFail::Stalled) => {
                self.not_reading();
                false
            }
            // The run is ending: what was being written is cut, not the peer's fault.
            Err(WriteFail::Stopped) => false,
        }
    }

    /// A ping of `len` bytes arrived and tungstenite queued its pong: tries to write it out
    /// now, and when the peer reads nothing counts the pong as piling up. False when the
    /// connection ended (more than [`PONG_BACKLOG`] piled up, or the write failed).
    fn pong_queued(&mut self, len: usize) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        match ws.flush().now_or_never() {
            Some(Ok(())) => {
                self.unsent_pongs = 0;
                true
            }
            Some(Err(e)) => self.written(Err(WriteFail::Ws(e))),
            None => {
                // A masked pong: 2 header bytes, 4 of mask, the ping's payload.
                self.unsent_pongs = self.unsent_pongs.saturating_add(len + 6);
                if self.unsent_pongs <= PONG_BACKLOG {
                    return true;
                }
                self.not_reading();
                false
            }
        }
    }

    /// The peer reads nothing: counts `peer_not_reading` once and drops the connection (its
    /// buffers with it).
    fn not_reading(&mut self) {
        if self.ws.is_some() {
            self.rec.borrow_mut().error(ErrorKind::PeerNotReading);
            self.failure_recorded = true;
        }
        self.finish(None);
    }

    /// Closes from our side with `code`, reading (and counting) what the peer still sends
    /// until its close frame, for at most a second.
    pub async fn close(&mut self, code: u16) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        let deadline = Instant::now() + CLOSE_DRAIN;
        // A peer that does not read can keep the close frame from going out: bounded too.
        match tokio::time::timeout_at(deadline.into(), ws.close(Some(frame))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return self.finish(Some(code)),
            // The close frame never went out.
            Err(_) => return self.finish(None),
        }
        // The deadline is checked before every read: under a steady flood the next frame
        // is always ready, and a timeout around the read alone would never fire.
        while Instant::now() < deadline {
            let Some(ws) = self.ws.as_mut() else { return };
            let msg = match tokio::time::timeout_at(deadline.into(), ws.next()).await {
                Ok(m) => m,
                Err(_) => break,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    self.on_text(t, Instant::now(), &mut |_| false);
                    self.queued_replies.clear();
                }
                Some(Ok(Message::Binary(b))) => {
                    self.rec.borrow_mut().frame_in(Some("(binary)"), b.len());
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        self.finish(Some(code));
    }

    /// Records why the connection failed, once: the step that then finds it gone does not
    /// count the same loss again as `disconnected` (see [`Io::take_failure`]).
    fn failed(&mut self, e: &WsError) {
        if let (Some(c), WsError::Utf8(detail)) = (&self.checker, e) {
            let v = Violation {
                dir: Direction::In,
                kind: "(invalid-utf8)".into(),
                keyword: "utf8".into(),
                pointer: String::new(),
                message: format!("a text message that is not UTF-8: {detail}"),
                source: crate::protocol::RuleSource::Document,
            };
            c.record(&self.rec, Err(vec![v]), "");
        }
        if self.ws.is_some() {
            self.rec.borrow_mut().error(error_kind(e));
            self.failure_recorded = true;
        }
    }

    /// The close code the peer ended the last connection with, if it sent one (and forget
    /// it).
    pub fn take_peer_close(&mut self) -> Option<u16> {
        self.peer_close.take()
    }

    /// Whether the connection's loss was already counted as an error (and forget it).
    pub fn take_failure(&mut self) -> bool {
        std::mem::take(&mut self.failure_recorded)
    }

    /// Marks the connection ended and records its close code exactly once.
    fn finish(&mut self, code: Option<u16>) {
        if self.ws.take().is_some() {
            self.rec.borrow_mut().closed(code);
        }
        self.mailbox.clear();
        self.mailbox_bytes = 0;
        self.unsent_pongs = 0;
        if let Some(c) = &mut self.checker {
            c.conversation.clear();
        }
        if let Some(t) = &mut self.delivery {
            t.clear();
        }
    }
}

/// Why a write did not complete.
enum WriteFail {
    /// The connection failed.
    Ws(WsError),
    /// Nothing drained for [`WRITE_STALL`].
    Stalled,
    /// The run's hard stop came first.
    Stopped,
}

impl Drop for Io {
    /// A connection still open when its VU is dropped (cancelled at the hard stop) is
    /// counted as open at the stop, so `opened = closed + open_at_stop` always holds.
    fn drop(&mut self) {
        if self.ws.is_some() {
            if let Ok(mut rec) = self.rec.try_borrow_mut() {
                rec.abandoned();
            }
        }
    }
}

/// Runs a write step, giving up after [`WRITE_STALL`] or at the run's hard stop; a step that
/// completes at once (the usual case) costs no timer.
async fn within_stall<F>(f: F, hard_stop: &watch::Receiver<bool>) -> Result<(), WriteFail>
where
    F: std::future::Future<Output = Result<(), WsError>>,
{
    let mut f = std::pin::pin!(f);
    if let Some(r) = f.as_mut().now_or_never() {
        return r.map_err(WriteFail::Ws);
    }
    // Boxed: the timer and the stop watch would otherwise sit in every VU's future for its
    // whole life (about 1 KiB per idle connection), though only a stalled write needs them.
    Box::pin(stall_or_stop(f, hard_stop.clone())).await
}

async fn stall_or_stop<F>(f: F, mut stop: watch::Receiver<bool>) -> Result<(), WriteFail>
where
    F: std::future::Future<Output = Result<(), WsError>>,
{
    tokio::select! {
        r = tokio::time::timeout(WRITE_STALL, f) => match r {
            Ok(r) => r.map_err(WriteFail::Ws),
            Err(_) => Err(WriteFail::Stalled),
        },
        _ = stop.wait_for(|s| *s) => Err(WriteFail::Stopped),
    }
}

fn error_kind(e: &WsError) -> ErrorKind {
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match e {
        // Our queue reached its cap: whatever filled it, the peer is not taking it.
        WsError::WriteBufferFull(_) => ErrorKind::PeerNotReading,
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => ErrorKind::MessageTooLarge,
        WsError::Capacity(_) => ErrorKind::MessageTooLarge,
        WsError::Utf8(_) => ErrorKind::InvalidUtf8,
        WsError::Protocol(_) => ErrorKind::Protocol,
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => {
            ErrorKind::Disconnected
        }
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
