//! What the capacity tests share: squall-server with a budget, and a short search.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use squall::capacity::CapacityArgs;
use squall::run::RunArgs;

/// squall-server answering `capacity` messages a second, keeping `slack` of unused budget.
pub fn server(capacity: f64, slack: Duration) -> squall_server::ServerHandle {
    squall_server::spawn(squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        events_per_sec: 0.0,
        capacity: Some(capacity),
        capacity_slack: slack,
        ..squall_server::Config::default()
    })
    .unwrap()
}

/// scenarios/kite/capacity.yaml.
pub fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kite/capacity.yaml")
}

/// A quiet search of 2 s steps (0.5 s of warm-up) to 3 %, without a report.
pub fn args(scenario: PathBuf, target: String, out: &Path, slo: &str, from: f64) -> CapacityArgs {
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

/// A search of `scenario` from 80/s with a loose SLO (p99 < 200 ms: the steady-state test,
/// not the SLO, finds the knee) against a server of capacity `n`; the output folder lives
/// as long as the returned directory.
pub fn search_server(scenario: PathBuf, n: f64) -> (squall::capacity::Finished, tempfile::TempDir) {
    let srv = server(n, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://{}/kite/ws", srv.addr());
    let a = args(
        scenario,
        target,
        dir.path(),
        "latency.rtt.p99 < 200ms",
        80.0,
    );
    let done = squall::capacity::execute(a).unwrap();
    srv.shutdown();
    (done, dir)
}

/// Asserts the search found `n` within ±5 %, listing its steps when not.
pub fn assert_found_near(c: &squall::report::capacity::Capacity, n: f64) {
    let steps: Vec<_> = c
        .steps
        .iter()
        .map(|s| (s.offered_rate, s.achieved_rate, s.verdict, &s.why))
        .collect();
    assert_eq!(
        c.outcome,
        squall::report::capacity::Outcome::Found,
        "{}\n{steps:#?}",
        c.answer
    );
    let found = c.sustained_rate.unwrap();
    assert!(
        (found - n).abs() / n <= 0.05,
        "capacity {n}/s, found {found}/s: {}\n{steps:#?}",
        c.answer
    );
}

/// The results schema (schemas/results.schema.json).
pub fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// One search at a time: a test holds this for its whole search, so no other search in
/// this binary loads the machine while it measures latency.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A search that panicked held it: the next one may still run.
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
