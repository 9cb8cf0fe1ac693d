//! `raw-client`: a minimal tokio-tungstenite load client (no squall code), the baseline squall
//! (and squall-server) is measured with.
//!
//! Throughput mode keeps `--in-flight` requests (`--request`, by default
//! `{"type":"ping","id":N}`) outstanding on each of `--connections` connections for
//! `--duration` and prints one JSON line with the round-trip rate. Fan-out mode
//! (`--fanout`) subscribes every connection and measures event delivery. Idle mode
//! (`--idle N`) opens N connections and prints the client's RSS per connection. Loopback
//! targets only; every phase is bounded in time.

// Cargo also discovers this file as a libtest bench target, where `main` is unused.
#![cfg_attr(test, allow(dead_code))]

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "raw_fanout.rs"]
mod fanout;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Time allowed to connect and receive the welcome frame.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections opened concurrently per thread, so the server's accept backlog never overflows.
const CONNECT_CONCURRENCY: usize = 64;

/// Most ready replies handled before the new requests are flushed.
const READ_BATCH: usize = 64;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "raw-client",
    about = "Baseline WebSocket ping/pong benchmark client"
)]
struct Args {
    /// Target URL (loopback), e.g. ws://127.0.0.1:8080/ws.
    #[arg(long)]
    url: String,
    /// Connections in throughput mode.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Requests outstanding per connection.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// How long to measure, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Runtime threads (connections sharded across them) [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Idle mode: open this many connections and report memory instead of throughput.
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Idle mode: how long to keep the connections open after measuring.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// The server sends nothing on connect (echo servers): do not wait for a welcome.
    #[arg(long)]
    no_welcome: bool,
    /// The request, with `{id}` where the request id goes; the reply's top-level `id`
    /// (number or string of digits) is matched against it.
    #[arg(long, default_value = r#"{"type":"ping","id":{id}}"#)]
    request: String,
    /// Fan-out mode: send this message on every connection, then count the events that
    /// arrive (`seq` and `timestamp` at the top level) for `--duration`.
    #[arg(long, value_name = "SUBSCRIBE")]
    fanout: Option<String>,
}

/// The one field of a reply this client reads: its id, verbatim.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default, borrow)]
    id: Option<&'a serde_json::value::RawValue>,
}

/// A request id from a reply's raw `id`: a number, or a string of digits.
fn reply_id(raw: &serde_json::value::RawValue) -> Option<u64> {
    raw.get().trim_matches('"').parse().ok()
}

/// The request template split around its `{id}`.
#[derive(Clone)]
struct Template {
    head: String,
    tail: String,
}

impl Template {
    fn new(text: &str) -> Template {
        let (head, tail) = text.split_once("{id}").unwrap_or((text, ""));
        Template {
            head: head.to_owned(),
            tail: tail.to_owned(),
        }
    }

    fn render(&self, id: u64) -> String {
        let mut s = String::with_capacity(self.head.len() + self.tail.len() + 20);
        s.push_str(&self.head);
        let _ = write!(s, "{id}");
        s.push_str(&self.tail);
        s
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !is_loopback(&args.url) {
        eprintln!("raw-client: refusing non-loopback target {}", args.url);
        return ExitCode::from(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let result = match (args.idle, &args.fanout) {
        (Some(n), _) => idle(&args, threads, n),
        (None, Some(_)) => fanout::run(&args, threads),
        (None, None) => throughput(&args, threads),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw-client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.strip_prefix("ws://").unwrap_or("");
    ["127.", "localhost", "[::1]"]
        .iter()
        .any(|p| rest.starts_with(p))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Connections for thread `t` of `threads` when `total` are spread round-robin.
fn share(total: usize, t: usize, threads: usize) -> usize {
    total / threads + usize::from(t < total % threads)
}

/// Opens one connection (4 KiB read buffer) and, unless `no_welcome`, waits for its
/// first text frame.
async fn open(url: &str, no_welcome: bool) -> Result<Ws, String> {
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let work = async {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        if no_welcome {
            return Ok(ws);
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => return Ok(ws),
                Some(Ok(_)) => continue,
                other => return Err(format!("no welcome frame: {other:?}")),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| format!("connect {url}: timed out"))?
}

/// Opens `n` connections, a bounded number at a time.
async fn open_all(url: &str, n: usize, no_welcome: bool) -> Result<Vec<Ws>, String> {
    futures_util::stream::iter(0..n)
        .map(|_| open(url, no_welcome))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Throughput mode: every thread connects its share, all start together after a barrier.
fn throughput(args: &Args, threads: usize) -> Result<(), String> {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let (args, barrier) = (args.clone(), barrier.clone());
        let n = share(args.connections, t, threads);
        handles.push(std::thread::spawn(move || -> Result<u64, String> {
            let rt = runtime().map_err(|e| e.to_string())?;
            let conns = rt.block_on(open_all(&args.url, n, args.no_welcome));
            barrier.wait(); // even on error, so the other threads are not stranded
            let conns = conns?;
            let deadline = tokio::time::Instant::now() + args.duration;
            let template = Template::new(&args.request);
            rt.block_on(async {
                let tasks: Vec<_> = conns
                    .into_iter()
                    .map(|ws| {
                        let t = template.clone();
                        tokio::spawn(drive(ws, t, args.in_flight.max(1), deadline))
                    })
                    .collect();
                let mut total = 0;
                for task in tasks {
                    total += task.await.map_err(|e| e.to_string())??;
                }
                Ok(total)
            })
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut round_trips = 0;
    for h in handles {
        round_trips += h.join().map_err(|_| "worker thread panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        r#"{{"round_trips":{round_trips},"duration_s":{secs:.3},"rate":{:.1}}}"#,
        round_trips as f64 / secs
    );
    Ok(())
}

/// Keeps `in_flight` pings outstanding on one connection until the deadline.
async fn drive(
    mut ws: Ws,
    template: Template,
    in_flight: usize,
    deadline: tokio::time::Instant,
) -> Result<u64, String> {
    // Slot `id % in_flight` holds the id it waits for, so matching is one array lookup.
    let mut slots: Vec<Option<u64>> = vec![None; in_flight];
    let mut next_id = 0u64;
    let mut done = 0u64;
    for slot in slots.iter_mut() {
        *slot = Some(next_id);
        feed(&mut ws, &template, next_id).await?;
        next_id += 1;
    }
    ws.flush().await.map_err(|e| e.to_string())?;
    loop {
        let first = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(item) => item,
            Err(_) => break,
        };
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(item) = next {
            match item {
                Some(Ok(Message::Text(text))) => {
                    let reply: Reply =
                        serde_json::from_str(&text).map_err(|e| format!("reply: {e}"))?;
                    let id = reply.id.and_then(reply_id);
                    let slot = id.map(|id| (id, (id % in_flight as u64) as usize));
                    if let Some((id, i)) = slot.filter(|(id, i)| slots[*i] == Some(*id)) {
                        debug_assert_eq!(slots[i], Some(id));
                        done += 1;
                        slots[i] = Some(next_id);
                        feed(&mut ws, &template, next_id).await?;
                        next_id += 1;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("server closed the connection".into()),
            }
            handled += 1;
            next = if handled < READ_BATCH {
                ws.next().now_or_never()
            } else {
                None
            };
        }
        ws.flush().await.map_err(|e| e.to_string())?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    Ok(done)
}

async fn feed(ws: &mut Ws, template: &Template, id: u64) -> Result<(), String> {
    ws.feed(Message::text(template.render(id)))
        .await
        .map_err(|e| format!("write: {e}"))
}

/// Idle mode: open `n` connections, report RSS growth per connection, hold, close.
fn idle(args: &Args, threads: usize, n: usize) -> Result<(), String> {
    let before = rss_kib()?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let release = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let no_welcome = args.no_welcome;
        let (url, hold, tx, release) = (
            args.url.clone(),
            args.hold,
            ready_tx.clone(),
            release.clone(),
        );
        let count = share(n, t, threads);
        handles.push(std::thread::spawn(move || {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e.to_string()))),
            };
            let conns = rt.block_on(open_all(&url, count, no_welcome));
            let failed = conns.is_err();
            let _ = tx.send(conns.as_ref().map(|_| ()).map_err(Clone::clone));
            release.wait();
            if !failed {
                // Keep the sockets open for the hold time; nothing needs reading meanwhile.
                rt.block_on(async { tokio::time::sleep(hold).await });
            }
            drop(conns);
        }));
    }
    drop(ready_tx);
    let mut outcome = Ok(());
    for _ in 0..threads {
        if let Ok(Err(e)) | Err(e) = ready_rx.recv().map_err(|e| e.to_string()) {
            outcome = Err(e);
        }
    }
    let after = rss_kib();
    let result = outcome.and(after).map(|after| {
        let per = after.saturating_sub(before) as f64 / n.max(1) as f64;
        // Printed before the hold so an outside script can measure the server meanwhile.
        println!(r#"{{"connections":{n},"rss_kib":{after},"rss_per_conn_kib":{per:.2}}}"#);
    });
    release.wait();
    for h in handles {
        let _ = h.join();
    }
    result
}

/// The process's resident set size in KiB, from /proc/self/status.
fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_string())
}
