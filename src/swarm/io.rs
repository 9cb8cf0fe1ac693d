//! One VU's connection and its inbox: every inbound frame is read (and judged) once by the
//! protocol's checker, counted, answered by auto-reply rules, and routed to whatever the
//! current step waits for; frames nobody waits for are counted and kept in a small mailbox
//! for a later `expect`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::connect::Ws;
use super::delivery::Tracker;
use super::frame::Frame;
use super::matcher::Want;
use super::timer::{Precise, Sleep};
use super::wall::WallClock;
use crate::metrics::{ErrorKind, Recorder};
use crate::protocol::checker::{Checked, Checker, Verdict};
use crate::protocol::Direction;

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
    /// Reads every frame, both ways, and judges it when a profile is loaded.
    checker: Checker,
    /// When the run started and which VU this is (violation samples carry both).
    who: (Instant, u64),
    /// A frame's wall-clock arrival time, for the clock check, from its `Instant`.
    wall: WallClock,
    delivery: Option<Tracker>,
}

impl Io {
    /// A VU's connection side, not yet connected: VU `who.1` of a run that started at
    /// `who.0`.
    pub fn new(
        rec: Rc<RefCell<Recorder>>,
        hard_stop: watch::Receiver<bool>,
        checker: Checker,
        delivery: Option<Tracker>,
        who: (Instant, u64),
    ) -> Self {
        Io {
            ws: None,
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
            who,
            wall: WallClock::new(),
            delivery,
        }
    }

    /// Hands an outbound text frame to the checker (judged unless `unchecked`), records
    /// the verdict, and returns what the checker read.
    pub fn check_out<'t>(&mut self, text: &'t str, unchecked: bool) -> Checked<'t> {
        let c = self.checker.outbound(text, unchecked);
        self.record(&c.verdict, text);
        c
    }

    /// Counts a judged frame and what it broke; nothing for a frame not judged.
    fn record(&self, verdict: &Verdict, frame: &str) {
        let found = match verdict {
            Verdict::Unchecked => return,
            Verdict::Clean => None,
            Verdict::Broke(vs) => Some(vs),
        };
        let mut rec = self.rec.borrow_mut();
        rec.checked();
        if let Some(vs) = found {
            let (start, vu) = self.who;
            rec.violations(vs, frame, start.elapsed().as_secs_f64(), vu);
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
                self.record(&self.checker.binary(Direction::In, b.len()), "");
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
        let wall = &mut self.wall;
        let read = self.checker.inbound(text.as_str(), || wall.at(at));
        self.record(&read.verdict, text.as_str());
        let frame = Frame::new(text.as_str(), at, read);
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
        let checker = &self.checker;
        let idx = self.mailbox.iter().position(|h| {
            let text = h.text.as_str();
            h.at >= since && want(&Frame::new(text, h.at, checker.read(text)))
        })?;
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
        if let WsError::Utf8(detail) = e {
            self.record(&self.checker.not_utf8(&detail.to_string()), "");
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
        self.checker.new_connection();
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
