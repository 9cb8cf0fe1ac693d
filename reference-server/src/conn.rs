//! One client connection: HTTP routing, admission, the upgrade, and the loop driving its
//! protocol session, with batched writes and close codes for protocol errors.

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::clock::monotonic_ns;
use crate::http::{self, HeadError, Route};
use crate::hub::{ClientSlot, RoomKey};
use crate::proto::Proto;
use crate::protocols;
use crate::rooms::Outbox;
use crate::session::{Cx, Effects, Refusal, Session, Upgrade};
use crate::stats::{prometheus, Tally};
use crate::worker::{Admission, Mode, Worker};

type Ws = WebSocketStream<TcpStream>;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Most ready inbound messages handled before the replies are flushed.
const READ_BATCH: usize = 64;

/// Serves one accepted TCP connection to completion.
pub(crate) async fn serve(worker: Rc<Worker>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let limit = worker.shared.config.handshake_timeout;
    let upgraded = match timeout(limit, handshake(&worker, &mut stream)).await {
        Ok(Some(upgraded)) => upgraded,
        Ok(None) => return,
        Err(_) => {
            worker.shared.hub.count(None, "handshake_timeouts", "", 1);
            return;
        }
    };
    let Upgraded {
        rest,
        proto,
        session,
        slots,
    } = upgraded;
    let config = Some(worker.ws_configs[proto.index()]);
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, config).await;
    let live = worker.enter(proto);
    run(&worker, ws, proto, session).await;
    // Free the slots before counting the close, so a client that saw the count drop can reconnect.
    drop(slots);
    drop(live);
}

/// An accepted upgrade: the bytes past the head, the session, and the slots it holds.
struct Upgraded {
    rest: Vec<u8>,
    proto: Proto,
    session: Box<dyn Session>,
    slots: (Admission, Option<ClientSlot>),
}

/// Reads the request head and answers it; `Some` once upgraded.
async fn handshake(worker: &Worker, stream: &mut TcpStream) -> Option<Upgraded> {
    let head = match http::read_head(stream).await {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            worker
                .shared
                .hub
                .count(None, "http_rejects", "header_too_large", 1);
            let _ = http::respond(
                stream,
                "431 Request Header Fields Too Large",
                "",
                "text/plain",
                "",
            )
            .await;
            return None;
        }
        Err(HeadError::Io) => return None,
    };
    let text = "text/plain; charset=utf-8";
    let route = match http::route(&head, worker.shared.config.profile) {
        // No document defines a publish endpoint.
        Route::Publish { .. } if worker.shared.config.strict_doc => Route::NotFound,
        route => route,
    };
    let result = match route {
        Route::Health => http::respond(stream, "200 OK", "", text, "ok\n").await,
        Route::Publish { query, length } => {
            let (status, body) = match http::read_body(stream, head.rest(), length).await {
                Ok(body) => protocols::publish(&worker.shared.hub, &query, &body),
                Err(e) => (
                    400,
                    format!("{{\"error\":\"cannot read the body: {e}\"}}\n"),
                ),
            };
            let status = http::status_line(status);
            http::respond(stream, &status, "", "application/json", &body).await
        }
        Route::Metrics => {
            let body = prometheus(&worker.shared.stats, &worker.shared.hub);
            http::respond(stream, "200 OK", "", "text/plain; version=0.0.4", &body).await
        }
        Route::UpgradeRequired => {
            let headers = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
            let body = "WebSocket upgrade required\n";
            http::respond(stream, "426 Upgrade Required", headers, text, body).await
        }
        Route::NotFound => http::respond(stream, "404 Not Found", "", text, "not found\n").await,
        Route::BadRequest => {
            http::respond(stream, "400 Bad Request", "", text, "bad request\n").await
        }
        Route::TooLarge => {
            http::respond(stream, "431 Request Header Fields Too Large", "", text, "").await
        }
        Route::Upgrade(req) => return upgrade(worker, stream, req, &head).await,
    };
    let _ = result;
    None
}

/// What an admitted connection holds: its place under `--max-connections`, its place among
/// its client's connections (when the protocol limits them), and its session.
type Admitted = (Admission, Option<ClientSlot>, Box<dyn Session>);

/// Admits the connection under the server's and the client's connection limits and the
/// protocol's rules, or says why not.
fn admit(worker: &Worker, req: &http::Request) -> Result<Admitted, Refusal> {
    let hub = &worker.shared.hub;
    let refuse = |status: u16, reason: &'static str, body: String| Refusal {
        status,
        reason,
        body,
    };
    let Some(admission) = Admission::try_new(&worker.shared) else {
        return Err(refuse(
            429,
            "max_connections",
            "too many connections\n".into(),
        ));
    };
    let up = Upgrade {
        query: &req.query,
        headers: &req.headers,
    };
    let admitted = protocols::admit(req.proto, &up, &worker.shared.config)?;
    match admitted.per_client {
        None => Ok((admission, None, admitted.session)),
        Some((client, limit)) => match hub.client_enter(req.proto, client, limit) {
            Some(slot) => Ok((admission, Some(slot), admitted.session)),
            None => Err(refuse(
                429,
                "per_client_limit",
                format!("too many connections for this client (at most {limit})\n"),
            )),
        },
    }
}

/// Admits the connection (or refuses it with the protocol's status) and writes the 101.
async fn upgrade(
    worker: &Worker,
    stream: &mut TcpStream,
    req: http::Request,
    head: &http::Head,
) -> Option<Upgraded> {
    let hub = &worker.shared.hub;
    let (admission, slot, session) = match admit(worker, &req) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            hub.count(Some(req.proto), "rejects", refusal.reason, 1);
            tracing::debug!(
                protocol = req.proto.name(),
                path = %req.path,
                query = %http::redact_query(&req.query),
                status = refusal.status,
                reason = refusal.reason,
                "upgrade refused"
            );
            let status = http::status_line(refusal.status);
            let _ = http::respond(stream, &status, "", "text/plain", &refusal.body).await;
            return None;
        }
    };
    if *worker.mode.borrow() != Mode::Running
        || http::switch_protocols(stream, &req.key).await.is_err()
    {
        return None;
    }
    tracing::debug!(
        protocol = req.proto.name(),
        path = %req.path,
        query = %http::redact_query(&req.query),
        "upgraded"
    );
    Some(Upgraded {
        rest: head.rest(),
        proto: req.proto,
        session,
        slots: (admission, slot),
    })
}

/// Why a session loop ended.
enum End {
    /// The peer closed or the socket failed.
    Gone,
    Shutdown,
    SlowConsumer,
    /// The session (or a protocol error) asked for this close.
    Close(u16, String),
}

/// Runs a protocol session on an upgraded connection.
async fn run(worker: &Worker, mut ws: Ws, proto: Proto, mut session: Box<dyn Session>) {
    let outbox = Rc::new(Outbox::new(worker.shared.config.queue_depth));
    let id = worker.next_id();
    // Shutdown reaches the connection through its outbox, so the loop below waits on
    // nothing shared with other connections or threads.
    let _registered = worker.register(id, &outbox);
    let mut state = State::new(worker, proto, id, &outbox);
    state.call(&mut *session, |s, cx| s.open(cx));
    let end = loop {
        if outbox.stopped() {
            break End::Shutdown;
        }
        if outbox.kicked() {
            break End::SlowConsumer;
        }
        if outbox.has_queued() {
            state
                .fx
                .out
                .extend(outbox.drain().into_iter().map(Message::Text));
        }
        if !state.fx.out.is_empty() {
            match state.write_out(&mut ws, &mut *session).await {
                Turn::Served => {}
                Turn::Alarm => continue,
                Turn::Gone => break End::Gone,
            }
        }
        if let Some((code, reason)) = state.fx.close.take() {
            break End::Close(code, reason);
        }
        let deadline = session.deadline();
        let timer = async {
            match deadline {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Unbiased: neither a steady stream of events nor a flood of client messages may
        // starve the other, or the timer. Queued events still go out before each reply.
        tokio::select! {
            first = ws.next() => state.read_batch(&mut ws, &mut *session, first),
            _ = outbox.wait() => {}
            _ = timer, if deadline.is_some() => {
                state.call(&mut *session, |s, cx| s.timer(cx));
            }
        }
    };
    if matches!(end, End::Shutdown) && *worker.mode.borrow() == Mode::Graceful {
        state.call(&mut *session, |s, cx| s.shutdown(cx));
        let written = write_all(&mut ws, &mut state.fx.out, &mut state.tally, worker);
        let _ = timeout(CLOSE_TIMEOUT, written).await;
    }
    worker.shared.stats.flush(worker.index, &mut state.tally);
    let joined = std::mem::take(&mut state.fx.joined);
    finish(worker, proto, state.id, joined, ws, end).await
}

/// A connection's bookkeeping around its session.
struct State<'a> {
    worker: &'a Worker,
    proto: Proto,
    id: u64,
    outbox: &'a Rc<Outbox>,
    fx: Effects,
    tally: Tally,
    /// Data messages read since the last write: what the replies cost of `--capacity`.
    answered: u32,
}

/// How a wait for the `--capacity` service budget ended.
enum Turn {
    /// The replies may go.
    Served,
    /// Shutdown or a slow-consumer kick: the loop looks at it first.
    Alarm,
    /// The peer went away (or closed) while its replies queued.
    Gone,
}

impl<'a> State<'a> {
    /// Connection `id`'s bookkeeping, before anything was read or written.
    fn new(worker: &'a Worker, proto: Proto, id: u64, outbox: &'a Rc<Outbox>) -> Self {
        State {
            worker,
            proto,
            id,
            outbox,
            fx: Effects::default(),
            tally: Tally::new(proto),
            answered: 0,
        }
    }

    /// Writes the replies and events waiting, after `--reply-delay` and, under
    /// `--capacity`, the service budget's turn; a shutdown or slow-consumer alarm comes first.
    async fn write_out(&mut self, ws: &mut Ws, session: &mut dyn Session) -> Turn {
        let worker = self.worker;
        if !worker.shared.config.reply_delay.is_zero() {
            tokio::time::sleep(worker.shared.config.reply_delay).await;
        }
        if let Some(budget) = &worker.shared.budget {
            match self.await_turn(budget, ws, session).await {
                Turn::Served => {}
                other => return other,
            }
        }
        let outbox = self.outbox;
        tokio::select! {
            biased;
            _ = outbox.wait_alarm() => Turn::Alarm,
            written = write_all(ws, &mut self.fx.out, &mut self.tally, worker) => match written {
                Ok(_) => Turn::Served,
                Err(_) => Turn::Gone,
            },
        }
    }

    /// Handles `first` and the messages already read behind it (at most [`READ_BATCH`]),
    /// until one asks to close.
    fn read_batch(
        &mut self,
        ws: &mut Ws,
        session: &mut dyn Session,
        first: Option<Result<Message, WsError>>,
    ) {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(item) = next {
            // Events queued before this message go out before its reply, so an
            // unsubscribe ack is the last frame of that room the client sees.
            if self.outbox.has_queued() {
                let queued = self.outbox.drain().into_iter().map(Message::Text);
                self.fx.out.extend(queued);
            }
            self.inbound(session, item);
            if self.fx.close.is_some() {
                break;
            }
            handled += 1;
            next = if handled < READ_BATCH {
                ws.next().now_or_never()
            } else {
                None
            };
        }
        // Messages that got no reply are published now; the others with the write.
        if self.fx.out.is_empty() {
            self.answered = 0;
            let worker = self.worker;
            worker.shared.stats.flush(worker.index, &mut self.tally);
        }
    }

    /// Waits until the replies to the messages read since the last write have been served
    /// by the budget. Messages read meanwhile are handled and wait for the next turn; a
    /// peer that closes or drops gives its turn up, so a client gone leaves no backlog.
    async fn await_turn(
        &mut self,
        budget: &crate::capacity::Budget,
        ws: &mut Ws,
        session: &mut dyn Session,
    ) -> Turn {
        let cost = std::mem::take(&mut self.answered);
        if cost == 0 {
            return Turn::Served;
        }
        let mut turn = budget.reserve(cost);
        loop {
            tokio::select! {
                biased;
                _ = self.outbox.wait_alarm() => return Turn::Alarm,
                _ = &mut turn => return Turn::Served,
                item = ws.next() => match item {
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        self.inbound(session, Some(Ok(m)));
                        if self.fx.close.is_some() {
                            return Turn::Served;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    _ => return Turn::Gone,
                },
            }
        }
    }

    /// Calls the session with a fresh context; a panic inside closes the connection with 1011
    /// instead of taking the runtime thread down.
    fn call(&mut self, session: &mut dyn Session, f: impl FnOnce(&mut dyn Session, &mut Cx<'_>)) {
        let shared = &self.worker.shared;
        let mut cx = Cx {
            now: Instant::now(),
            config: &shared.config,
            proto: self.proto,
            conn: self.id,
            hub: &shared.hub,
            fx: &mut self.fx,
            local: Some((&self.worker.rooms, self.outbox)),
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(session, &mut cx)));
        if result.is_err() {
            shared
                .hub
                .count(Some(self.proto), "rejects", "handler_panic", 1);
            self.fx.close = Some((1011, "internal error".into()));
        }
    }

    /// Handles one item from the stream; a close (code 0: just drop) ends the session.
    fn inbound(&mut self, session: &mut dyn Session, item: Option<Result<Message, WsError>>) {
        let hub = &self.worker.shared.hub;
        let close = |code: u16, reason: &str| Some((code, reason.to_owned()));
        match item {
            None => self.fx.close = close(0, ""),
            Some(Ok(Message::Text(text))) => {
                self.answered += 1;
                self.tally.frames_in += 1;
                self.tally.bytes_in += text.len() as u64;
                let rx = self.worker.shared.config.stamp.then(monotonic_ns);
                let before = self.fx.out.len();
                self.call(session, |s, cx| s.text(&text, cx));
                if let Some(rx) = rx {
                    for reply in self.fx.out.iter_mut().skip(before) {
                        stamp(reply, rx);
                    }
                }
            }
            Some(Ok(Message::Binary(data))) => {
                self.answered += 1;
                self.tally.frames_in += 1;
                self.tally.bytes_in += data.len() as u64;
                self.call(session, |s, cx| s.binary(&data, cx));
            }
            // Control frames: tungstenite queues the pong or close reply; the flush sends it.
            Some(Ok(_)) => {}
            // RFC 6455 section 7.1.7: fail the connection with a close code saying why.
            Some(Err(WsError::Capacity(_))) => {
                hub.count(Some(self.proto), "rejects", "message_too_big", 1);
                // The protocol may say why in its own words before the close.
                self.call(session, |s, cx| s.too_big(cx));
                self.fx.close = close(1009, "message too big");
            }
            Some(Err(WsError::Utf8(_))) => {
                hub.count(Some(self.proto), "rejects", "invalid_utf8", 1);
                self.fx.close = close(1007, "invalid UTF-8 in a text message");
            }
            Some(Err(WsError::Protocol(e))) => {
                hub.count(Some(self.proto), "rejects", "protocol_error", 1);
                self.fx.close = close(1002, &e.to_string());
            }
            Some(Err(_)) => self.fx.close = close(0, ""),
        }
    }
}

/// Adds `"_stamp": {"rx_ns", "tx_ns"}` at the front of a reply that is a JSON object
/// (`Config::stamp`); other replies are left as they are.
fn stamp(reply: &mut Message, rx: u64) {
    let Message::Text(text) = reply else { return };
    let Some(rest) = text.as_str().strip_prefix('{') else {
        return;
    };
    let comma = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    let tx = monotonic_ns();
    let stamped = format!("{{\"_stamp\":{{\"rx_ns\":{rx},\"tx_ns\":{tx}}}{comma}{rest}");
    *reply = Message::Text(stamped.into());
}

/// Feeds every pending frame, then flushes once. Frames are counted as they are accepted
/// (one the socket refuses, e.g. after the peer's close, is not) and the counts published
/// before the flush, so a client that has seen a frame can trust `stats()`.
async fn write_all(
    ws: &mut Ws,
    out: &mut Vec<Message>,
    tally: &mut Tally,
    worker: &Worker,
) -> Result<(), WsError> {
    for msg in out.drain(..) {
        let len = msg.len() as u64;
        ws.feed(msg).await?;
        tally.frames_out += 1;
        tally.bytes_out += len;
    }
    worker.shared.stats.flush(worker.index, tally);
    ws.flush().await
}

/// Leaves every room, then closes the way `end` calls for.
async fn finish(
    worker: &Worker,
    proto: Proto,
    id: u64,
    joined: Vec<RoomKey>,
    mut ws: Ws,
    end: End,
) {
    for room in joined {
        if worker.rooms.borrow_mut().leave(&room, id) {
            worker.shared.hub.leave(&room);
        }
    }
    let (code, reason) = match end {
        End::Gone | End::Close(0, _) => return,
        End::Shutdown if *worker.mode.borrow() == Mode::Kill => return,
        End::Shutdown => (CloseCode::Away, "server shutting down".to_owned()),
        End::SlowConsumer => {
            worker.shared.stats.slow_consumer(worker.index, proto);
            (
                CloseCode::Policy,
                "slow consumer: outbound queue full".to_owned(),
            )
        }
        End::Close(code, reason) => (CloseCode::from(code), reason),
    };
    tracing::debug!(protocol = proto.name(), conn = id, code = u16::from(code), %reason, "closing");
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let unsynced = matches!(
        code,
        CloseCode::Size | CloseCode::Protocol | CloseCode::Invalid
    );
    // Send our close, then read until the peer's close (or the deadline) ends the stream.
    let _ = timeout(CLOSE_TIMEOUT, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        if unsynced {
            // After a protocol error the rest of the stream is no frame boundary tungstenite
            // could resync on. Discard raw bytes until the peer closes: dropping the socket
            // with unread data would send a reset, and the peer would lose our close frame
            // (and its code) with it.
            // On the heap: an array here would sit in every connection's task, idle or not.
            let mut sink = vec![0u8; 4096];
            let tcp = ws.get_mut();
            while matches!(tokio::io::AsyncReadExt::read(tcp, &mut sink).await, Ok(n) if n > 0) {}
        } else {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
