//! Targets that try to make squall grow without bound, each against the `squall` binary run as
//! a child, whose peak RSS it reports itself (`health.rss_peak_kib`, its own `VmHWM`): a new message kind
//! (and new fields) in every frame; big frames nobody waits for; a peer that pings and never
//! reads; a peer that never reads what the scenario sends.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Longest a child may run before the test kills it (a hang is a failure, not a wait).
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// How a child run ended: its exit code and peak resident set, KiB.
struct ChildRun {
    code: Option<i32>,
    peak_rss_kib: u64,
    stdout: String,
}

/// Runs `squall run SCENARIO --target URL --out OUT --no-report`, killing it after
/// [`CHILD_LIMIT`], and returns its exit code and output (the peak RSS is filled in from its
/// results). Not the `ru_maxrss` that `wait4` reports: a child spawned by `vfork` inherits its
/// parent's mark, and this test process's own peak (other tests' runs in it) showed there.
// Reaped with `waitpid` by pid, so the watchdog can kill it by pid meanwhile.
#[allow(clippy::zombie_processes)]
fn run_squall(scenario: &Path, url: &str, out: &Path) -> ChildRun {
    let child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("run")
        .arg(scenario)
        .args(["--target", url, "--no-report", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(CHILD_LIMIT).is_err() {
            // Still running past the limit: the child is ours, by pid, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut status = 0;
    let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    assert_eq!(reaped, pid, "waitpid failed");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    ChildRun {
        code,
        peak_rss_kib: 0,
        stdout: reader.join().unwrap(),
    }
}

/// Frames the new-kind server sends per connection before its `end` frame.
const NEW_KIND_FRAMES: u64 = 20_000;

/// Sends [`NEW_KIND_FRAMES`] frames, each of a kind never seen before (200-byte names) with a
/// field never seen before, then `end`, then reads until the client leaves.
async fn new_kind_every_frame(mut ws: Conn, sent: Arc<AtomicU64>) {
    let pad = "x".repeat(200);
    for n in 0..NEW_KIND_FRAMES {
        let mut frame = json!({"type": format!("k{n:08}{pad}"), "id": n});
        frame[format!("field{n}")] = json!(format!("{n:x}"));
        if !send(&mut ws, &sent, frame.to_string()).await {
            return;
        }
    }
    send(&mut ws, &sent, json!({"type": "end"}).to_string()).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// One arrival, one connection: every frame is checked against the kite profile, where each
/// is an unknown kind.
const ONE_LISTENER: &str = r#"
name: hostile-kinds
protocol: kite
target: ws://127.0.0.1:1/ws
graceful_stop: 50s
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - expect: { kind: end, within: 50s }
      - close: 1000
"#;

#[test]
fn a_new_kind_in_every_frame_keeps_results_small_and_memory_bounded() {
    let srv = TestServer::start(new_kind_every_frame);
    let (run, doc, results_bytes) = run_hostile(&srv, ONE_LISTENER, "new kinds");
    let v = &doc["violations"];
    assert!(
        v["total"].as_u64().unwrap() >= NEW_KIND_FRAMES,
        "every frame is a violation: {}",
        v["total"]
    );
    let groups = v["groups"].as_array().unwrap();
    assert!(groups.len() <= 128, "{} groups", groups.len());
    let folded = v["folded"].as_u64().unwrap();
    let grouped: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(grouped + folded, v["total"].as_u64().unwrap());
    assert!(folded > 0);
    let kinds = doc["counters"]["kinds_in"].as_object().unwrap();
    assert!(kinds.len() <= 258, "{} kinds", kinds.len());
    assert!(kinds.keys().all(|k| k.len() <= 64 + "…".len()));
    assert!(kinds.contains_key("(other)"));
    assert!(
        run.stdout.contains("folded"),
        "the summary says violations were folded: {}",
        run.stdout
    );
    // Measured (debug build): before the caps 20,001 groups, a 20 MB results.json and a
    // 100 MB peak RSS; with them 146 KB and 36 MB.
    assert!(
        results_bytes < 1_000_000,
        "results.json is {results_bytes} bytes"
    );
    assert!(
        run.peak_rss_kib < 80 * 1024,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
}

/// Big frames the server sends before its `end` frame, and their size.
const BIG_FRAMES: usize = 32;
const BIG_FRAME_BYTES: usize = 4 << 20;

/// Sends [`BIG_FRAMES`] JSON frames of [`BIG_FRAME_BYTES`] that no step waits for, then `end`,
/// then reads until the client leaves.
async fn big_unwanted_frames(mut ws: Conn, sent: Arc<AtomicU64>) {
    let pad = "x".repeat(BIG_FRAME_BYTES);
    for n in 0..BIG_FRAMES {
        let frame = json!({"type": "big", "n": n, "pad": pad}).to_string();
        if !send(&mut ws, &sent, frame).await {
            return;
        }
    }
    send(&mut ws, &sent, json!({"type": "end"}).to_string()).await;
    while let Some(Ok(_)) = ws.next().await {}
}

#[test]
fn big_frames_nobody_waits_for_do_not_fill_memory() {
    let srv = TestServer::start(big_unwanted_frames);
    let yaml = r#"
name: hostile-big
target: ws://127.0.0.1:1/ws
graceful_stop: 50s
connect: { max_message_size: 8MiB }
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - expect: { kind: end, within: 50s }
      - close: 1000
"#;
    let (run, doc, _) = run_hostile(&srv, yaml, "big frames");
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let kinds = &doc["counters"]["kinds_in"];
    assert_eq!(
        kinds["big"]["frames"], BIG_FRAMES as u64,
        "every frame counted"
    );
    // 32 frames of 4 MiB held in the mailbox are 128 MiB (measured, debug build: 150 MB peak
    // before the byte cap, 31 MB with it).
    assert!(
        run.peak_rss_kib < 96 * 1024,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
}

#[test]
fn check_refuses_a_message_that_could_render_256_mib() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"name: four-blobs
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { a: "{{blob 64MiB}}", b: "{{blob 64MiB}}", c: "{{blob 64MiB}}", d: "{{blob 64MiB}}" }
"#;
    let sc = scenario(dir.path(), "blobs.yaml", yaml);
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("check")
        .arg(&sc)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("blobs.yaml:6:15") && err.contains("over the 64MiB limit of one message"),
        "{err}"
    );
}

/// Most pings the flooding server sends (each makes squall queue a 131-byte pong), and the
/// longest it floods.
const FLOOD_PINGS: u64 = 3_000_000;
const FLOOD_FOR: Duration = Duration::from_secs(20);

/// Sends pings with 125-byte payloads, 64 per write, and never reads: squall's pongs pile up
/// in its receive buffer and then in squall. Stops when squall hangs up, or after
/// [`FLOOD_PINGS`] or [`FLOOD_FOR`].
async fn pings_and_never_reads(mut ws: Conn, _sent: Arc<AtomicU64>) {
    let payload = vec![b'p'; 125];
    let started = Instant::now();
    let mut n = 0;
    while n < FLOOD_PINGS && started.elapsed() < FLOOD_FOR {
        for _ in 0..64 {
            if ws
                .feed(Message::Ping(payload.clone().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        n += 64;
    }
}

/// One connection that only listens.
const LISTEN_ONLY: &str = r#"
name: hostile-pings
target: ws://127.0.0.1:1/ws
graceful_stop: 50s
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - listen: 30s
      - close: 1000
"#;

#[test]
fn a_peer_that_pings_and_never_reads_is_closed_and_counted() {
    let srv = TestServer::start(pings_and_never_reads);
    // Measured (debug build): without the pong cap squall grew by the pongs it could not
    // write, hundreds of MB over the flood; with it 256 KiB piles up before the hang-up.
    assert_hung_up_on_once(&srv, LISTEN_ONLY, "pings");
}

/// Runs `yaml` against a peer that reads nothing: squall hangs up on it once, counts it as
/// `peer_not_reading`, and stays under 96 MiB.
fn assert_hung_up_on_once(srv: &TestServer, yaml: &str, label: &str) {
    let (run, doc, _) = run_hostile(srv, yaml, label);
    let c = &doc["counters"];
    assert_eq!(c["errors_by_kind"]["peer_not_reading"], 1, "{c}");
    assert_eq!(c["connections"]["closed"], 1, "{c}");
    assert!(
        run.peak_rss_kib < 96 * 1024,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
}

/// Reads nothing at all after the handshake, for at most [`FLOOD_FOR`].
async fn never_reads(ws: Conn, _sent: Arc<AtomicU64>) {
    tokio::time::sleep(FLOOD_FOR).await;
    drop(ws);
}

#[test]
fn a_peer_that_never_reads_what_we_send_is_closed_and_counted() {
    let srv = TestServer::start(never_reads);
    // 64 KiB messages, far more than the socket buffers hold.
    let yaml = r#"
name: hostile-deaf
target: ws://127.0.0.1:1/ws
graceful_stop: 50s
load: { rate: 10/s, duration: 100ms, max_vus: 1 }
behaviours:
  - steps:
      - repeat: 2000
        steps:
          - send_text: "{{blob 64KiB}}"
      - close: 1000
"#;
    assert_hung_up_on_once(&srv, yaml, "deaf");
}

/// Runs `yaml` as a child against `srv`: how it ran, its results (checked against the
/// schema) and their size in bytes; says on stderr what it measured.
fn run_hostile(srv: &TestServer, yaml: &str, label: &str) -> (ChildRun, serde_json::Value, u64) {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", yaml);
    let out = dir.path().join("out");
    let started = Instant::now();
    let mut run = run_squall(&sc, &srv.url(), &out);
    let bytes = std::fs::metadata(out.join("results.json")).unwrap().len();
    let doc = results(&out);
    assert_schema_valid(&doc);
    run.peak_rss_kib = doc["health"]["rss_peak_kib"]
        .as_u64()
        .expect("squall reports its peak RSS on Linux");
    eprintln!(
        "{label}: exit {:?}, {bytes} bytes of results, peak RSS {} KiB, {:?}, errors {}",
        run.code,
        run.peak_rss_kib,
        started.elapsed(),
        doc["counters"]["errors_by_kind"]
    );
    (run, doc, bytes)
}
