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

/// One search at a time: a test holds this for its whole search, so no other search in
/// this binary loads the machine while it measures latency.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A search that panicked held it: the next one may still run.
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
