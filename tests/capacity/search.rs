//! `squall capacity` against squall-server's `--capacity N/s`: the search finds N for two
//! budgets, and bad input, an unreachable target and a target that breaks at once exit as
//! the CLI promises. (The tight SLO and the starved generator have test files of their
//! own: test binaries run one after another, so no search shares the cores with another.)
//!
//! Steps are short (2 s, 0.5 s of warm-up): a search takes about 20 s.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{self, assert_found_near, schema, search_server, server, shipped};
use squall::report::capacity::Verdict;

#[test]
fn the_search_finds_the_servers_capacity_within_5_percent_for_two_budgets() {
    let _one_search_at_a_time = support::serial();
    // Rates a debug build on a busy 2-core machine offers without falling behind itself
    // (each arrival is a whole connection): the search tries up to 320/s.
    for n in [120.0, 240.0] {
        // A loose SLO: the steady-state test, not the SLO, finds the knee.
        let (done, dir) = search_server(shipped(), n);
        let c = done.capacity();
        assert_found_near(c, n);
        assert_eq!(done.exit_code(), 0);
        let found = c.sustained_rate.unwrap();
        // Above the budget the queue grows: the steps that broke say so.
        let over = c.steps.iter().filter(|s| s.offered_rate > n * 1.05);
        for s in over {
            assert_eq!(s.verdict, Verdict::Bad, "{s:?}");
        }
        assert!(c.answer.starts_with("sustains "), "{}", c.answer);
        // The file says the same, and meets the results schema.
        let text = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["capacity"]["sustained_rate"], serde_json::json!(found));
        assert_eq!(doc["capacity"]["slo"][0], "latency.rtt.p99 < 200ms");
        let errors: Vec<String> = schema().iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

fn squall(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_exits_2_pointing_at_the_place() {
    let sc = shipped();
    let sc = sc.to_str().unwrap();
    let (code, _, err) = squall(&["capacity", sc, "--slo", "latency.rtt.p99 < 50xs"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown time unit 'xs'"), "{err}");
    assert!(
        err.contains("  latency.rtt.p99 < 50xs\n                      ^"),
        "{err}"
    );
    let (code, _, err) = squall(&["capacity", sc, "--slo", "latency.rpc.p99 < 50ms"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no latency metric 'rpc'"), "{err}");
    let (code, _, err) = squall(&[
        "capacity",
        sc,
        "--slo",
        "latency.rtt.p99 < 50ms",
        "--step",
        "2s",
        "--warmup",
        "2s",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--step"), "{err}");
    let closed = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kite/smoke.yaml");
    let (code, _, err) = squall(&[
        "capacity",
        closed.to_str().unwrap(),
        "--slo",
        "latency.rtt.p99 < 50ms",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("open model"), "{err}");
    // What it can drive instead, and why this file offers neither.
    assert!(
        err.contains("exactly one `pace: { rate: R/s, ... }`"),
        "{err}"
    );
    assert!(
        err.contains("closed model (VUs) with no `pace` step"),
        "{err}"
    );
}

#[test]
fn an_unreachable_target_exits_3_and_a_target_that_breaks_at_once_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/kite/ws", free.local_addr().unwrap());
    drop(free);
    let sc = shipped();
    let out = dir.path().join("a");
    let common = [
        "capacity",
        sc.to_str().unwrap(),
        "--slo",
        "latency.rtt.p99 < 50ms",
        "--step",
        "1.5s",
        "--warmup",
        "0.5s",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, _, err) = squall(&[&common[..], &["--target", &url]].concat());
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("target unreachable"), "{err}");
    // 20 answers a second, and the search starts at 200/s: the very first step breaks.
    let srv = server(20.0, Duration::from_millis(20));
    let url = format!("ws://{}/kite/ws", srv.addr());
    let (code, stdout, err) =
        squall(&[&common[..], &["--target", &url, "--from", "200/s"]].concat());
    srv.shutdown();
    assert_eq!(code, Some(1), "{stdout}{err}");
    // The answer comes first.
    assert!(
        stdout
            .trim_start()
            .starts_with("breaks already at --from 200/s"),
        "{stdout}"
    );
}
