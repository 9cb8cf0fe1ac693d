//! One client connection: HTTP routing, the upgrade, and the Kite session loop with batched writes.

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::rc::Rc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::http::{self, HeadError, Route};
use crate::kite::{self, Effect, Session};
use crate::rooms::Outbox;
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
    let (rest, admission) = match timeout(limit, handshake(&worker, &mut stream)).await {
        Ok(Some(upgraded)) => upgraded,
        _ => return,
    };
    let config = Some(worker.ws_config);
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, config).await;
    let live = worker.enter();
    session(&worker, ws).await;
    // Free the slot before counting the close, so a client that saw the count drop can reconnect.
    drop(admission);
    drop(live);
}

/// Reads the request head and answers it; once upgraded, the bytes past the head and
/// the connection's admission slot.
async fn handshake(worker: &Worker, stream: &mut TcpStream) -> Option<(Vec<u8>, Admission)> {
    let head = match http::read_head(stream).await {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
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
    let result = match http::route(&head) {
        Route::Health => http::respond(stream, "200 OK", "", text, "ok\n").await,
        Route::Metrics => {
            let body = prometheus(&worker.shared.stats.snapshot());
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
        Route::Upgrade(key) => return upgrade(worker, stream, &key, &head).await,
    };
    let _ = result;
    None
}

/// Admits the connection (or answers 429) and writes the 101.
async fn upgrade(
    worker: &Worker,
    stream: &mut TcpStream,
    key: &str,
    head: &http::Head,
) -> Option<(Vec<u8>, Admission)> {
    let Some(admission) = Admission::try_new(&worker.shared) else {
        let body = "too many connections\n";
        let _ = http::respond(stream, "429 Too Many Requests", "", "text/plain", body).await;
        return None;
    };
    if *worker.mode.borrow() != Mode::Running || http::switch_protocols(stream, key).await.is_err()
    {
        return None;
    }
    Some((head.rest(), admission))
}

/// Why a session loop ended.
enum End {
    /// The peer closed or the socket failed.
    Gone,
    Shutdown,
    SlowConsumer,
    TooBig,
}

/// Runs the Kite protocol on an upgraded connection.
async fn session(worker: &Worker, mut ws: Ws) {
    let mut mode = worker.mode.clone();
    let outbox = Rc::new(Outbox::new(worker.shared.config.queue_depth));
    let id = worker.next_id();
    let mut kite = Session::new();
    let mut tally = Tally::default();
    let mut out: Vec<Utf8Bytes> = Vec::new();
    push(&mut out, &mut tally, kite.welcome().into());
    let mut dirty = false;
    let end = loop {
        if *mode.borrow_and_update() != Mode::Running {
            break End::Shutdown;
        }
        if outbox.kicked() {
            break End::SlowConsumer;
        }
        for text in outbox.drain() {
            push(&mut out, &mut tally, text);
        }
        if !out.is_empty() || dirty {
            // Count before the bytes leave, so a client that has seen a frame can trust stats().
            worker.shared.stats.flush(worker.index, &mut tally);
            dirty = false;
            if !worker.shared.config.reply_delay.is_zero() {
                tokio::time::sleep(worker.shared.config.reply_delay).await;
            }
            tokio::select! {
                biased;
                _ = mode.changed() => break End::Shutdown,
                _ = outbox.wait_kicked() => break End::SlowConsumer,
                written = write_all(&mut ws, &mut out) => if written.is_err() { break End::Gone },
            }
        }
        tokio::select! {
            biased;
            _ = mode.changed() => break End::Shutdown,
            _ = outbox.wait() => {}
            first = ws.next() => {
                let mut next = Some(first);
                let mut handled = 0;
                while let Some(item) = next {
                    // Events queued before this message go out before its reply, so an
                    // unsubscribe ack is the last frame of that room the client sees.
                    for text in outbox.drain() {
                        push(&mut out, &mut tally, text);
                    }
                    match inbound(worker, id, &outbox, &mut kite, &mut tally, &mut out, item) {
                        Ok(()) => dirty = true,
                        Err(end) => {
                            worker.shared.stats.flush(worker.index, &mut tally);
                            return finish(worker, id, &kite, ws, end).await;
                        }
                    }
                    handled += 1;
                    next = if handled < READ_BATCH { ws.next().now_or_never() } else { None };
                }
            }
        }
    };
    worker.shared.stats.flush(worker.index, &mut tally);
    finish(worker, id, &kite, ws, end).await
}

fn push(out: &mut Vec<Utf8Bytes>, tally: &mut Tally, text: Utf8Bytes) {
    tally.frames_out += 1;
    tally.bytes_out += text.len() as u64;
    out.push(text);
}

/// Feeds every pending frame, then flushes once.
async fn write_all(ws: &mut Ws, out: &mut Vec<Utf8Bytes>) -> Result<(), WsError> {
    for text in out.drain(..) {
        ws.feed(Message::Text(text)).await?;
    }
    ws.flush().await
}

/// Handles one item from the stream: a reply is queued in `out`; `Err` ends the session.
fn inbound(
    worker: &Worker,
    id: u64,
    outbox: &Rc<Outbox>,
    kite: &mut Session,
    tally: &mut Tally,
    out: &mut Vec<Utf8Bytes>,
    item: Option<Result<Message, WsError>>,
) -> Result<(), End> {
    let reply = match item {
        None => return Err(End::Gone),
        Some(Err(WsError::Capacity(_))) => return Err(End::TooBig),
        Some(Err(_)) => return Err(End::Gone),
        Some(Ok(Message::Text(text))) => {
            tally.frames_in += 1;
            tally.bytes_in += text.len() as u64;
            let (reply, effect) = kite.handle(&text);
            apply(worker, id, outbox, effect);
            reply
        }
        Some(Ok(Message::Binary(bytes))) => {
            tally.frames_in += 1;
            tally.bytes_in += bytes.len() as u64;
            kite::error("binary frames are not supported; send JSON text", None)
        }
        // Control frames: tungstenite queues the pong or close reply; the flush sends it.
        Some(Ok(_)) => return Ok(()),
    };
    push(out, tally, reply.into());
    Ok(())
}

fn apply(worker: &Worker, id: u64, outbox: &Rc<Outbox>, effect: Effect) {
    let audience = &worker.shared.audience;
    match effect {
        Effect::None => {}
        Effect::Join(feed) => {
            worker.rooms.borrow_mut().join(feed, id, outbox.clone());
            audience.join(feed);
        }
        Effect::Leave(feed) => {
            if worker.rooms.borrow_mut().leave(feed, id) {
                audience.leave(feed);
            }
        }
    }
}

/// Leaves every room, then closes the way `end` calls for.
async fn finish(worker: &Worker, id: u64, kite: &Session, mut ws: Ws, end: End) {
    for feed in kite.feeds() {
        if worker.rooms.borrow_mut().leave(feed, id) {
            worker.shared.audience.leave(feed);
        }
    }
    let (code, reason) = match end {
        End::Gone => return,
        End::Shutdown if *worker.mode.borrow() == Mode::Kill => return,
        End::Shutdown => (CloseCode::Away, "server shutting down"),
        End::SlowConsumer => {
            worker.shared.stats.slow_consumer(worker.index);
            (CloseCode::Policy, "slow consumer: outbound queue full")
        }
        End::TooBig => (CloseCode::Size, "message too big"),
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let oversized = matches!(end, End::TooBig);
    // Send our close, then read until the peer's close (or the deadline) ends the stream.
    let _ = timeout(CLOSE_TIMEOUT, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        if oversized {
            // The rest of the oversized message is still arriving and is no frame boundary
            // tungstenite could resync on. Discard raw bytes until the peer closes: dropping
            // the socket with unread data would send a reset, and the peer would lose our
            // close frame (and its 1009) with it.
            let mut sink = [0u8; 4096];
            let tcp = ws.get_mut();
            while matches!(tokio::io::AsyncReadExt::read(tcp, &mut sink).await, Ok(n) if n > 0) {}
        } else {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
