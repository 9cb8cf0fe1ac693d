//! `squall run --procs N`: shard processes of the binary, merged into one result that adds
//! up to what the server counted, each process connecting from its own loopback address;
//! a process that dies is named, and Ctrl-C/SIGTERM reaches every process.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const SIX: &str = r#"
name: procs-six
target: ws://127.0.0.1:1/ws
seed: 5
load: { vus: 6, duration: 2s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - repeat: { count: 20 }
        steps:
          - send: { type: ping, id: "{{vu}}-{{seq}}" }
          - expect: { kind: pong, within: 2s, metric: rtt }
thresholds: ["errors.count == 0"]
"#;

fn procs_run(sc: &Path, url: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    squall_cmd()
        .arg("run")
        .arg(sc)
        .args(["--target", url, "--quiet", "--no-report"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn three_processes_merge_into_what_the_server_counted() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "six.yaml", SIX);
    let out = dir.path().join("out");
    let url = format!("ws://{}/ws", srv.addr());
    let o = procs_run(&sc, &url, &out, &["--procs", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let text = settled_metrics(&srv);
    let doc = results(&out);
    assert_schema_valid(&doc);
    let c = &doc["counters"];
    assert!(c["connections"]["opened"].as_u64().unwrap() >= 6);
    assert_counts_match_server(&doc, &text);
    assert_eq!(doc["shards"].as_array().unwrap().len(), 3);
    assert_eq!(doc["load"]["peak_vus"], 6);
    for i in 1..=3 {
        assert!(out.join(format!("shards/{i}/results.json")).is_file());
    }
    assert!(out.join("junit.xml").is_file());
    assert!(out.join("histograms.hlog").is_file());
}

#[test]
fn each_process_connects_from_its_own_loopback_address() {
    let peers = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = peers.clone();
    // Upgraded connections only: each process's start-up check opens TCP alone.
    let srv = TestServer::start_tcp(move |tcp, _| {
        let peer = tcp.peer_addr().map(|p| p.ip().to_string());
        let seen = seen.clone();
        async move {
            use futures_util::StreamExt;
            if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                if let Ok(p) = peer {
                    seen.lock().unwrap().insert(p);
                }
                while let Some(Ok(_)) = ws.next().await {}
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "idle.yaml",
        "name: idle\nload: { vus: 6, duration: 1s }\nbehaviours:\n  - steps:\n      - listen: 300ms\n",
    );
    let out = dir.path().join("out");
    let o = procs_run(&sc, &srv.url(), &out, &["--procs", "3"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let seen: Vec<String> = peers.lock().unwrap().iter().cloned().collect();
    assert_eq!(seen, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    // --source-ip without --procs: every connection from the one address given.
    peers.lock().unwrap().clear();
    let o = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--target", &srv.url(), "--quiet", "--no-report"])
        .args(["--source-ip", "127.0.0.9"])
        .arg("--out")
        .arg(dir.path().join("one"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let seen: Vec<String> = peers.lock().unwrap().iter().cloned().collect();
    assert_eq!(seen, ["127.0.0.9"]);
}

/// The pids of `parent`'s children, once there are `n` (bounded wait).
fn children_of(parent: u32, n: usize) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    let mut found = Vec::new();
    wait_until("the shard processes", Duration::from_secs(20), || {
        found = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        found.len() >= n
    });
    found
}

/// Waits (bounded) for the process to end; its exit code and stderr.
fn finish(child: std::process::Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "squall run --procs did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const LONG: &str = "name: long\nload: { vus: 4, duration: 30s }\nbehaviours:\n  - steps:\n      - expect: { kind: welcome, within: 2s, metric: welcome }\n      - listen: 500ms\n";

fn start_long(dir: &Path, url: &str) -> std::process::Child {
    let sc = scenario(dir, "long.yaml", LONG);
    squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--target", url, "--quiet", "--no-report", "--procs", "2"])
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until every shard has connected: its results.json counts a connection.
fn wait_for_load(out: &Path, n: u32) {
    wait_until("every shard under load", Duration::from_secs(20), || {
        (1..=n).all(|i| {
            std::fs::read_to_string(out.join(format!("shards/{i}/results.json")))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|d| d["counters"]["connections"]["opened"].as_u64())
                .is_some_and(|n| n > 0)
        })
    });
}

#[test]
fn a_shard_process_that_dies_is_named_and_the_run_fails() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let child = start_long(dir.path(), &format!("ws://{}/ws", srv.addr()));
    let kids = children_of(child.id(), 2);
    wait_for_load(&dir.path().join("out"), 2);
    // SAFETY: SIGKILL to a process this test's child started and still waits for.
    unsafe { libc::kill(kids[0] as libc::pid_t, libc::SIGKILL) };
    // The other shard is stopped the way a user would, so the test stays short.
    unsafe { libc::kill(kids[1] as libc::pid_t, libc::SIGINT) };
    let (code, err) = finish(child);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!("(pid {}) died, killed by signal 9", kids[0])),
        "{err}"
    );
    assert!(
        err.contains("shard 1/2") || err.contains("shard 2/2"),
        "{err}"
    );
}

#[test]
fn sigterm_reaches_every_shard_process_and_the_merge_says_interrupted() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let child = start_long(dir.path(), &format!("ws://{}/ws", srv.addr()));
    children_of(child.id(), 2);
    wait_for_load(&dir.path().join("out"), 2);
    // SAFETY: SIGTERM to the process this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    let doc = results(&dir.path().join("out"));
    assert_eq!(doc["shards"].as_array().unwrap().len(), 2, "{err}");
    assert!(doc["counters"]["connections"]["opened"].as_u64().unwrap() >= 2);
}

#[test]
fn bad_procs_input_is_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", "name: s\ntarget: ws://127.0.0.1:1/ws\nload: { vus: 1, duration: 1s }\nbehaviours:\n  - steps:\n      - listen: 1s\n");
    for (extra, says) in [
        (&["--procs", "0"][..], "at least 1"),
        (&["--procs", "2", "--shard", "1/2"][..], "leave out --shard"),
        (
            &["--procs", "3", "--source-ip", "127.0.0.2,127.0.0.3"][..],
            "needs at least 3 --source-ip",
        ),
        (&["--source-ip", "nope"][..], "not an IP address"),
    ] {
        let o = squall_cmd()
            .arg("run")
            .arg(&sc)
            .args(["--quiet"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
