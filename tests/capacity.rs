//! `squall capacity` against squall-server's `--capacity N/s`: the search finds N, an SLO
//! tighter than the server binds below it, a starved generator is reported as the limit,
//! and bad input, an unreachable target and a target that breaks at once exit as the CLI
//! promises.
//!
//! Steps are short (2 s, 0.5 s of warm-up) so a search takes about 20 s; the two budgets
//! are searched one after the other, so neither search shares the cores with the other.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use squall::capacity::{execute, CapacityArgs};
use squall::report::capacity::{Outcome, Verdict};
use squall::run::RunArgs;

fn server(capacity: f64, slack: Duration) -> squall_server::ServerHandle {
    squall_server::spawn(squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        events_per_sec: 0.0,
        capacity: Some(capacity),
        capacity_slack: slack,
        ..squall_server::Config::default()
    })
    .unwrap()
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kite/capacity.yaml")
}

fn args(scenario: PathBuf, target: String, out: &Path, slo: &str, from: f64) -> CapacityArgs {
    CapacityArgs {
        run: RunArgs {
            scenario,
            target: Some(target),
            out: Some(out.to_path_buf()),
            quiet: true,
            schemas: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")),
            ..RunArgs::default()
        },
        slo: vec![slo.into()],
        from,
        step: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        precision: 0.03,
        ..CapacityArgs::default()
    }
}

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

#[test]
fn the_search_finds_the_servers_capacity_within_5_percent_for_two_budgets() {
    for n in [150.0, 320.0] {
        let srv = server(n, Duration::from_millis(20));
        let dir = tempfile::tempdir().unwrap();
        let target = format!("ws://{}/kite/ws", srv.addr());
        // A loose SLO: the steady-state test, not the SLO, finds the knee.
        let a = args(
            shipped(),
            target,
            dir.path(),
            "latency.rtt.p99 < 200ms",
            100.0,
        );
        let done = execute(a).unwrap();
        srv.shutdown();
        let c = done.capacity();
        assert_eq!(c.outcome, Outcome::Found, "{}", c.answer);
        assert_eq!(done.exit_code(), 0);
        let found = c.sustained_rate.unwrap();
        assert!(
            (found - n).abs() / n <= 0.05,
            "capacity {n}/s, found {found}/s: {}\n{:#?}",
            c.answer,
            c.steps
                .iter()
                .map(|s| (s.offered_rate, s.verdict, &s.why))
                .collect::<Vec<_>>()
        );
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

/// Arrivals at random instants (a uniform wait of up to 1 s before the request), each one
/// request: against a server without slack, a single-server queue, latency climbs well
/// before the budget, and a tight SLO binds first.
const RANDOM_ARRIVALS: &str = "name: random-arrivals
protocol: kite
graceful_stop: 1s
load: { model: open, max_vus: 2000, phases: [{ hold: 1s, rate: 1/s }] }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - think: 0ms..1s
      - send: { type: ping, id: \"{{seq}}\" }
      - expect: { kind: pong, id: \"{{sent./id}}\", within: 1s, metric: rtt }
";

#[test]
fn a_tight_slo_binds_below_the_capacity() {
    let n = 200.0;
    let srv = server(n, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("random.yaml");
    std::fs::write(&sc, RANDOM_ARRIVALS).unwrap();
    let target = format!("ws://{}/kite/ws", srv.addr());
    let mut a = args(
        sc,
        target,
        &dir.path().join("out"),
        "latency.rtt.p99 < 25ms",
        40.0,
    );
    a.precision = 0.1;
    let done = execute(a).unwrap();
    srv.shutdown();
    let c = done.capacity();
    assert_eq!(c.outcome, Outcome::Found, "{}", c.answer);
    let (found, broke) = (c.sustained_rate.unwrap(), c.breaking_rate.unwrap());
    assert!(
        found < n * 0.85,
        "the SLO should bind below {n}/s: {}",
        c.answer
    );
    let breaking = c.steps.iter().find(|s| s.offered_rate == broke).unwrap();
    assert!(
        breaking.slo.iter().any(|t| !t.pass),
        "the breaking step broke the SLO: {breaking:?}"
    );
}

#[test]
fn a_starved_generator_is_reported_as_the_limit_not_the_target() {
    // Far more arrivals than one worker thread can start: squall, not the target, falls
    // behind, and the search must say so instead of giving a number.
    let srv = squall_server::spawn(squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        events_per_sec: 0.0,
        ..squall_server::Config::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://{}/kite/ws", srv.addr());
    let mut a = args(
        shipped(),
        target,
        dir.path(),
        "latency.rtt.p99 < 200ms",
        50_000.0,
    );
    a.run.threads = Some(1);
    a.run.no_check = true;
    a.step = Duration::from_millis(1500);
    let done = execute(a).unwrap();
    srv.shutdown();
    let c = done.capacity();
    assert_eq!(c.outcome, Outcome::GeneratorLimited, "{c:#?}");
    assert_eq!(done.exit_code(), 3);
    assert!(
        c.answer
            .starts_with("capacity is above what this generator can offer: use --procs or shards"),
        "{}",
        c.answer
    );
    assert_eq!(c.sustained_rate, None);
    assert_eq!(c.breaking_rate, None);
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
