//! The per-second series and the generator's health, end to end: every event counts in
//! the second it happened in (so the series adds up to the totals and a steady schedule
//! reads steady), the last partial second says how long it was, a stopped generator is
//! flagged with its stall, and an idle one on a busy machine is not.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;
use squall::run::{execute, RunArgs};

/// The tests here measure timing: one at a time, so one's load is not another's noise.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two VUs pacing 250 pings/s each for 5.5 s of a 6 s run, on two worker threads.
const STEADY: &str = r#"
name: steady
target: ws://127.0.0.1:1/ws
graceful_stop: 3s
load: { vus: 2, duration: 6s }
behaviours:
  - steps:
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 250/s, duration: 5500ms, in_flight: 16, within: 2s, reply: { kind: pong }, metric: rtt }
      - listen: 1s
"#;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn sum(series: &[Value], field: &str) -> u64 {
    series.iter().map(|p| u(&p[field])).sum()
}

#[test]
fn the_series_adds_up_reads_a_steady_pace_steadily_and_ends_with_its_real_length() {
    let _one = serial();
    let srv = reference_server(|c| c.limits.rate = false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let done = execute(RunArgs {
        scenario: scenario(dir.path(), "steady.yaml", STEADY),
        out: Some(out.clone()),
        target: Some(format!("ws://{}/ws", srv.addr())),
        quiet: true,
        threads: Some(2),
        ..RunArgs::default()
    })
    .unwrap();
    let doc = results(&out);
    assert_schema_valid(&doc);
    let series = doc["series"].as_array().unwrap();
    let c = &doc["counters"];

    // (b) Every full second inside the pace (it runs from ~0.0x s to ~5.5 s: the points
    // ending at t = 2, 3, 4, 5) reads its 500 sends within ±2%: no second at 0 and the
    // next doubled. (Before, this run read 251, 250, 989, 253.)
    let full: Vec<&Value> = series
        .iter()
        .filter(|p| (1.5..5.5).contains(&p["t"].as_f64().unwrap()))
        .collect();
    assert_eq!(full.len(), 4, "{series:#?}");
    let rates: Vec<f64> = series
        .iter()
        .map(|p| p["msgs_out"].as_f64().unwrap())
        .collect();
    for p in &full {
        let rate = p["msgs_out"].as_f64().unwrap();
        assert!(
            (490.0..=510.0).contains(&rate),
            "second ending at t={}: {rate} sends/s of 500 ({rates:?})",
            p["t"],
        );
        assert_eq!(p["span_s"].as_f64(), Some(1.0));
        assert!((rate - u(&p["frames_out"]) as f64).abs() < 1e-9);
    }

    // (a) Every event is in exactly one point: the series adds up to the totals.
    assert_eq!(sum(series, "frames_out"), u(&c["frames_out"]));
    assert_eq!(sum(series, "frames_in"), u(&c["frames_in"]));
    assert_eq!(sum(series, "errors"), u(&c["errors"]));
    assert_eq!(sum(series, "missed"), u(&c["missed"]));
    assert_eq!(sum(series, "violations"), u(&doc["violations"]["total"]));
    assert_eq!(
        sum(series, "samples"),
        u(&doc["metrics"]["rtt"]["latency"]["count"])
    );
    assert!(u(&c["frames_out"]) > 2_000, "the pace ran: {c}");

    // (c) The last point is the partial second the run really ended in, and its rate is
    // over that length, not over a whole tick.
    let last = series.last().unwrap();
    let (t, span) = (
        last["t"].as_f64().unwrap(),
        last["span_s"].as_f64().unwrap(),
    );
    let duration = doc["meta"]["duration_s"].as_f64().unwrap();
    assert!(
        (t - duration).abs() < 0.05,
        "last point t={t}, run {duration}s"
    );
    assert!(span > 0.0 && span < 1.0, "last span {span}");
    assert!(
        (t - span - t.floor()).abs() < 1e-6,
        "starts on a second: {last}"
    );
    let rate = last["msgs_in"].as_f64().unwrap();
    assert!((rate * span - u(&last["frames_in"]) as f64).abs() < 1e-6);
    let before: &Value = &series[series.len() - 2];
    assert_eq!(before["span_s"].as_f64(), Some(1.0));
    assert_eq!(done.results.series.len(), series.len());
}

/// One VU pacing 20 pings/s: a generator with almost nothing to do.
const LIGHT: &str = r#"
name: light
graceful_stop: 2s
load: { vus: 1, duration: 3s }
behaviours:
  - steps:
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 20/s, duration: 10s, in_flight: 1, within: 1s, reply: { kind: pong }, metric: rtt }
"#;

/// `squall run --serve` as a child process writing into `out`.
fn spawn_squall(scenario: &Path, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--serve", "--quiet", "--no-report", "--threads", "1"])
        .arg("--out")
        .arg(out)
        .arg(scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start squall")
}

/// Waits (bounded) for the child to exit; kills it if it does not.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("squall did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child, which has not been reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig})");
}

#[test]
fn a_stopped_generator_is_flagged_with_the_length_of_its_stall() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "light.yaml", LIGHT);
    let out = dir.path().join("out");
    let mut child = spawn_squall(&sc, &out);
    // results.json is written before the load begins (to prove the folder takes files); a
    // second in its series means the load is under way and its first second is final.
    wait_until(
        "the first second of results",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(out.join("results.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| v["series"].as_array().is_some_and(|s| !s.is_empty()))
        },
    );
    signal(&child, libc::SIGSTOP);
    // The stimulus itself, not synchronisation: the generator stays stopped this long.
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGCONT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.code().is_some(), "{status:?}");
    let h = &results(&out)["health"];
    assert_eq!(h["generator_saturated"], true, "{h:#}");
    let longest = u(&h["longest_stall_us"]);
    assert!(
        (400_000..5_000_000).contains(&longest),
        "stall {longest} µs: {h:#}"
    );
    assert!(u(&h["stalls"]) >= 1);
    let reasons = h["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("stalled")),
        "{h:#}"
    );
    assert!(h["longest_stall_at_s"].as_f64().is_some());
}

/// 100 VUs that each hold a connection: more sockets than a limit of 64 files allows.
const CROWD: &str = r#"
name: crowd
graceful_stop: 1s
load: { vus: 100, duration: 2s }
behaviours:
  - steps:
      - listen: 3s
"#;

#[test]
fn running_out_of_file_descriptors_is_flagged_with_the_limit() {
    use std::os::unix::process::CommandExt;
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "crowd.yaml", CROWD);
    let out = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
    cmd.args(["run", "--serve", "--quiet", "--no-report", "--threads", "1"])
        .arg("--out")
        .arg(&out)
        .arg(&sc)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only setrlimit between fork and exec, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start squall");
    wait_exit(&mut child, Duration::from_secs(30));
    let h = &results(&out)["health"];
    assert_eq!(h["generator_saturated"], true, "{h:#}");
    assert_eq!(u(&h["fd_limit"]), 64, "{h:#}");
    assert!(u(&h["fd_peak"]) + 16 >= 64, "{h:#}");
    let reasons = h["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("file descriptors exhausted")),
        "{h:#}"
    );
}

/// Threads that keep every core busy until dropped (or for at most `limit`).
struct Burner {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Burner {
    fn start(limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let until = Instant::now() + limit;
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Burner { stop, threads }
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn an_idle_generator_on_a_busy_machine_is_not_flagged() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "light.yaml", LIGHT);
    let out = dir.path().join("out");
    // Another process (this test) keeps every core busy while squall runs.
    let burner = Burner::start(Duration::from_secs(30));
    let mut child = spawn_squall(&sc, &out);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    drop(burner);
    assert!(status.code().is_some(), "{status:?}");
    let doc = results(&out);
    let h = &doc["health"];
    assert_eq!(h["generator_saturated"], false, "{h:#}");
    assert_eq!(h["reasons"], serde_json::json!([]), "{h:#}");
    assert_eq!(u(&h["stalls"]), 0, "{h:#}");
    assert_eq!(u(&h["missed_sends"]), 0, "{h:#}");
    // Own threads only: the bundled server's work and the burners are not squall's.
    let peak = h["cpu_peak"].as_f64().expect("CPU sampled");
    assert!(peak < 0.5, "own CPU peak {peak}: {h:#}");
    for w in h["warnings"].as_array().unwrap() {
        assert!(!w.as_str().unwrap().contains("overloaded"), "{h:#}");
    }
    assert!(u(&doc["counters"]["frames_out"]) >= 40, "{doc:#}");
}
