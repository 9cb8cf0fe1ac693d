//! Test servers with one odd behaviour each, on 127.0.0.1:0, and helpers shared by the
//! integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A server connection.
pub type Conn = WebSocketStream<TcpStream>;

/// A test server running on its own thread until the process ends.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Frames the server sent (its own count, to compare with squall's).
    pub sent: Arc<AtomicU64>,
}

impl TestServer {
    /// Serves every connection with `handler(conn, sent_counter)`.
    pub fn start<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(Conn, Arc<AtomicU64>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let handler = Arc::new(handler);
        TestServer::start_tcp(move |tcp, sent| {
            let handler = handler.clone();
            async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    handler(ws, sent).await;
                }
            }
        })
    }

    /// Serves every accepted TCP connection with `handler(tcp, sent_counter)`, upgrade
    /// included (for tests that look at or refuse the handshake).
    pub fn start_tcp<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(TcpStream, Arc<AtomicU64>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::task::spawn_local(handler(tcp, counter.clone()));
                }
            });
        });
        let addr = rx.recv().unwrap();
        TestServer { addr, sent }
    }

    /// `ws://addr/ws`
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// Sends a text frame and counts it.
pub async fn send(ws: &mut Conn, sent: &AtomicU64, text: String) -> bool {
    sent.fetch_add(1, Ordering::Relaxed);
    ws.send(Message::text(text)).await.is_ok()
}

/// Sends each frame in turn, as [`send`]; stops at the first that does not go out.
pub async fn send_all(ws: &mut Conn, sent: &AtomicU64, frames: impl IntoIterator<Item = Value>) {
    for f in frames {
        if !send(ws, sent, f.to_string()).await {
            return;
        }
    }
}

/// Reads the next text message that is JSON (others are skipped); `None` when the
/// connection ends.
pub async fn next_json(ws: &mut Conn) -> Option<Value> {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                return Some(v);
            }
        }
    }
    None
}

/// Reads the next ping request and returns its id.
pub async fn next_ping(ws: &mut Conn) -> Option<Value> {
    while let Some(v) = next_json(ws).await {
        if v["type"] == "ping" {
            return Some(v["id"].clone());
        }
    }
    None
}

/// [`run_yaml`] against a test server.
pub fn run_on(server: &TestServer, yaml: &str) -> (squall::run::Finished, Value) {
    run_yaml(&server.url(), yaml)
}

/// Runs `yaml` against `target` (one worker thread, quiet) in a temporary folder; returns how
/// it finished and its results.json, checked against the committed schema.
pub fn run_yaml(target: &str, yaml: &str) -> (squall::run::Finished, Value) {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", yaml);
    let out = dir.path().join("out");
    let done = squall::run::execute(squall::run::RunArgs {
        scenario: sc,
        out: Some(out.clone()),
        target: Some(target.to_string()),
        quiet: true,
        threads: Some(1),
        ..squall::run::RunArgs::default()
    })
    .unwrap();
    let doc = results(&out);
    assert_schema_valid(&doc);
    (done, doc)
}

/// Writes a scenario file into `dir` and returns its path.
pub fn scenario(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads results.json from an output folder.
pub fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Validates a results document against the committed schema.
pub fn assert_schema_valid(doc: &Value) {
    let schema_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/results.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "results.json invalid: {errors:#?}");
}

/// Waits (bounded) until `cond` holds, polling; panics with `what` on timeout.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// squall-server on 127.0.0.1 with an ephemeral port; `tweak` adjusts the rest of its config.
pub fn reference_server(
    tweak: impl FnOnce(&mut squall_server::Config),
) -> squall_server::ServerHandle {
    let mut cfg = squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        ..squall_server::Config::default()
    };
    tweak(&mut cfg);
    squall_server::spawn(cfg).unwrap()
}

/// How to run a library scenario in a test.
pub struct Library<'a> {
    /// The scenario file, relative to the repository (e.g. `scenarios/kite/smoke.yaml`).
    pub file: &'a str,
    /// The WebSocket path on the server (e.g. `/kite/ws`), with any query the scenario's
    /// own `target:` carries.
    pub path: &'a str,
    /// Cuts the load to this duration (the CI's shortened run); `None` runs it as written.
    pub duration: Option<Duration>,
    /// Scales the peak VUs (closed model) to this; `None` keeps the scenario's.
    pub vus: Option<u64>,
}

/// How many library runs go side by side in a test process. A shipped scenario shortened
/// for the tests mostly waits on its own pacing: on a debug build a run takes 0.2–1.5 s of
/// CPU in 4–9 s of wall time (server included), so three share two cores with room to spare
/// for their latency budgets, which are budgets for one run on a machine.
const LIBRARY_SLOTS: u32 = 3;

/// The library runs that keep a core busy (the 8 MiB upload checks every chunk: ~13 s of
/// CPU in 9 s on a debug build): they take every slot and run alone.
const CPU_BOUND: [&str; 1] = ["scenarios/covetpy/upload.yaml"];

/// Slots for library runs: [`LIBRARY_SLOTS`] in all, taken and given back under one lock.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

/// Slots held by one run, given back when it ends (also when it panics).
struct Held<'a> {
    slots: &'a Slots,
    n: u32,
}

impl Slots {
    fn take(&self, n: u32) -> Held<'_> {
        // A run that panicked gave its slots back on unwinding: a poisoned lock is still good.
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < n {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= n;
        Held { slots: self, n }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.slots.free.lock().unwrap_or_else(|p| p.into_inner()) += self.n;
        self.slots.freed.notify_all();
    }
}

/// Runs a library scenario against a fresh squall-server configured by `tweak`, checking
/// every frame; returns the exit code and results.json (checked against its schema).
///
/// At most [`LIBRARY_SLOTS`] library runs at a time in a test process, and a CPU-bound one
/// alone: the other tests keep running meanwhile.
pub fn run_library(
    lib: Library<'_>,
    tweak: impl FnOnce(&mut squall_server::Config),
) -> (u8, Value) {
    static SLOTS: Slots = Slots {
        free: Mutex::new(LIBRARY_SLOTS),
        freed: Condvar::new(),
    };
    let weight = if CPU_BOUND.contains(&lib.file) {
        LIBRARY_SLOTS
    } else {
        1
    };
    let _slots = SLOTS.take(weight);
    let server = reference_server(tweak);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = squall::run::RunArgs {
        scenario: Path::new(env!("CARGO_MANIFEST_DIR")).join(lib.file),
        target: Some(format!("ws://{}{}", server.addr(), lib.path)),
        out: Some(out.clone()),
        duration: lib.duration,
        vus: lib.vus,
        threads: Some(2),
        quiet: true,
        schemas: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")),
        ..squall::run::RunArgs::default()
    };
    let done = match squall::run::execute(args) {
        Ok(done) => done,
        Err(e) => panic!("{}: {e}", lib.file),
    };
    server.shutdown();
    let doc = results(&out);
    assert_schema_valid(&doc);
    (done.exit_code(), doc)
}

/// The scenario files (`*.yaml`) of `scenarios/<protocol>/`, sorted.
pub fn library_files(protocol: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(protocol);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// A one-line account of a run's failed thresholds and violations, for assertion messages.
pub fn verdict(doc: &Value) -> String {
    let failed: Vec<String> = doc["thresholds"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| t["pass"] == false)
                .map(|t| format!("{} (actual {})", t["expr"], t["actual"]))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "failed thresholds {failed:?}; violations {}; errors {}",
        doc["violations"]["groups"], doc["counters"]["errors_by_kind"]
    )
}

/// The thresholds a run failed, as written.
pub fn failed(doc: &Value) -> Vec<String> {
    doc["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["pass"] == false)
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// Asserts the run failed on each of `expected` (and not on a schema violation).
pub fn assert_fails_on(what: &str, (code, doc): (u8, Value), expected: &[&str]) {
    assert_eq!(code, 1, "{what}: the run should fail: {}", verdict(&doc));
    let failed = failed(&doc);
    for e in expected {
        assert!(
            failed.iter().any(|f| f == e),
            "{what}: expected '{e}' to fail; failed {failed:?}"
        );
    }
    assert_eq!(doc["violations"]["total"], 0, "{what}: {}", verdict(&doc));
}

/// Sends one raw HTTP request to `addr` and reads the whole response (the server closes).
pub async fn http_exchange(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf))
        .await
        .expect("the server answers and closes in time")
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// squall-server's Prometheus text from `GET /metrics`.
pub async fn metrics_text(addr: SocketAddr) -> String {
    http_exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
}

/// Runs `squall check` on `files` (paths relative to the repository, or absolute) and asserts
/// every one is reported ok.
pub fn assert_squall_check<P: AsRef<std::ffi::OsStr>>(files: &[P]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("check")
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "squall check: {text}");
    assert_eq!(text.matches(": ok").count(), files.len(), "{text}");
}

/// `squall_server_<name>{...} N` lines of a Prometheus text, summed over their labels.
pub fn server_total(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("squall_server_{name}{{")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// squall-server's `/metrics` text once every connection it had has closed (bounded wait).
pub fn settled_metrics(srv: &squall_server::ServerHandle) -> String {
    wait_until(
        "server connections to close",
        Duration::from_secs(10),
        || srv.stats().connections_active == 0,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(metrics_text(srv.addr()))
}

/// A results document's connection, frame and byte counts equal squall-server's own (its
/// `/metrics` text): what squall sent the server received, and the other way round.
pub fn assert_counts_match_server(doc: &Value, text: &str) {
    let c = &doc["counters"];
    assert_eq!(
        c["connections"]["opened"],
        server_total(text, "connections_total")
    );
    assert_eq!(c["frames_out"], server_total(text, "frames_in_total"));
    assert_eq!(c["frames_in"], server_total(text, "frames_out_total"));
    assert_eq!(c["bytes_out"], server_total(text, "bytes_in_total"));
}

/// The `squall` binary under test, as a command to add arguments to.
pub fn squall_cmd() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
}

/// The profile under `schemas/NAME`, loaded once per test process.
pub fn profile(name: &str) -> &'static squall::protocol::Profile {
    static LOADED: Mutex<Vec<(String, &'static squall::protocol::Profile)>> =
        Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = loaded.iter().find(|(n, _)| n == name) {
        return p;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let p: &'static _ = Box::leak(Box::new(
        squall::protocol::Profile::load(&dir).unwrap_or_else(|e| panic!("schemas/{name}: {e}")),
    ));
    loaded.push((name.to_string(), p));
    p
}

/// How long a [`Checked`] client waits for a frame or a close.
pub const CHECKED_WAIT: Duration = Duration::from_secs(5);

/// A client of a reference-server protocol whose every frame is checked against the
/// protocol's profile: the test's own frames before they go (so a test knows what it sends
/// is valid, or invalid on purpose), the server's as they arrive.
pub struct Checked {
    /// The socket, for frames sent around the checks (binary, oversized, pipelined).
    pub ws: WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    profile: &'static squall::protocol::Profile,
}

impl Checked {
    /// Connects to `ws://ADDR{path_query}`, reading nothing.
    pub async fn connect(
        addr: SocketAddr,
        path_query: &str,
        profile: &'static squall::protocol::Profile,
    ) -> Checked {
        let url = format!("ws://{addr}{path_query}");
        let (ws, _) = tokio::time::timeout(CHECKED_WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connected within 5 s")
            .expect("the upgrade succeeds");
        Checked::wrap(ws, profile)
    }

    /// Checks a connection opened some other way (headers, cookies) from now on.
    pub fn wrap(
        ws: WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
        profile: &'static squall::protocol::Profile,
    ) -> Checked {
        Checked { ws, profile }
    }

    /// Sends a frame the profile accepts.
    pub async fn send(&mut self, frame: Value) {
        let text = frame.to_string();
        let out = squall::protocol::Direction::Out;
        if let Err(v) = self.profile.check_text(out, &text) {
            panic!("the test's own frame breaks the schemas: {text}\n{v:#?}");
        }
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a frame the profile rejects (bad input on purpose).
    pub async fn send_bad(&mut self, text: &str) {
        let out = squall::protocol::Direction::Out;
        assert!(
            self.profile.check_text(out, text).is_err(),
            "meant to be invalid: {text}"
        );
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// Sends anything, unchecked.
    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// A frame from the server, checked against the profile, as JSON.
    fn check_in(&self, text: &str) -> Value {
        let inbound = squall::protocol::Direction::In;
        if let Err(v) = self.profile.check_text(inbound, text) {
            panic!("the server's frame breaks the schemas: {text}\n{v:#?}");
        }
        serde_json::from_str(text).unwrap()
    }

    /// The next text frame, checked, or the close code (`Err`; 1005 for a close frame
    /// without one, 1006 for a connection that ended without a close frame).
    pub async fn next(&mut self) -> Result<Value, u16> {
        loop {
            let msg = tokio::time::timeout(CHECKED_WAIT, self.ws.next())
                .await
                .expect("a frame within 5 s");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(self.check_in(&t)),
                Some(Ok(Message::Close(c))) => return Err(c.map_or(1005, |c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error: {e}"),
                None => return Err(1006),
            }
        }
    }

    /// The next text frame, checked; a close is a failure.
    pub async fn recv(&mut self) -> Value {
        self.next()
            .await
            .unwrap_or_else(|code| panic!("unexpected close {code}"))
    }

    /// Reads until the server's close frame, checking every text frame before it.
    pub async fn closed(&mut self) -> Option<tokio_tungstenite::tungstenite::protocol::CloseFrame> {
        loop {
            let msg = tokio::time::timeout(CHECKED_WAIT, self.ws.next())
                .await
                .expect("a close within 5 s");
            match msg {
                Some(Ok(Message::Close(c))) => return c,
                Some(Ok(Message::Text(t))) => {
                    self.check_in(&t);
                }
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    }
}

/// A [`Checked`] client under a protocol's own name, with its own helpers beside it:
/// `checked_client!(Client);` in a protocol's test file.
#[macro_export]
macro_rules! checked_client {
    ($name:ident) => {
        /// A connection whose every frame is checked against the protocol's profile.
        struct $name($crate::support::Checked);

        impl std::ops::Deref for $name {
            type Target = $crate::support::Checked;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
