//! `squall capacity --procs 2` against squall-server's `--capacity N/s`: every step run by
//! two shard processes, judged on their figures added up, finds N as one process does.
//! (The real binary: the shard processes are this executable's `capacity --procs-worker`.)

use std::process::Command;
use std::time::Duration;

use crate::support::{self, schema, server, shipped};

#[test]
fn a_search_over_two_processes_finds_the_servers_capacity_within_5_percent() {
    let _one_search_at_a_time = support::serial();
    let n = 240.0;
    let srv = server(n, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://{}/kite/ws", srv.addr());
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["capacity", shipped().to_str().unwrap()])
        .args(["--target", &target, "--slo", "latency.rtt.p99 < 200ms"])
        .args(["--from", "80/s", "--step", "2s", "--warmup", "500ms"])
        .args(["--precision", "3%", "--procs", "2", "--threads", "1"])
        .args(["--quiet", "--no-report"])
        .arg("--schemas")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    srv.shutdown();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = &doc["capacity"];
    let steps: Vec<_> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["offered_rate"], &s["verdict"], &s["why"]))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{err}\n{}\n{steps:#?}",
        c["answer"]
    );
    let found = c["sustained_rate"].as_f64().unwrap();
    assert!(
        (found - n).abs() / n <= 0.05,
        "capacity {n}/s, found {found}/s: {}\n{steps:#?}",
        c["answer"]
    );
    // The steps were the two processes' together: both shards are named, and every step's
    // window holds what both answered.
    let shards: Vec<_> = doc["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["index"])
        .collect();
    assert_eq!(shards, [1, 2], "{}", doc["shards"]);
    let errors: Vec<String> = schema().iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        doc["meta"]["threads"].as_u64(),
        Some(2),
        "one thread each: {}",
        doc["meta"]
    );
    let first = &c["steps"][0];
    let achieved = first["achieved_rate"].as_f64().unwrap();
    assert!((achieved - 80.0).abs() / 80.0 < 0.1, "{first}");
}
