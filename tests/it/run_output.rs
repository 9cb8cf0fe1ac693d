//! Where the results go when the output misbehaves: an unwritable `--out` fails before any
//! load, a final write that fails still prints the summary and names a fallback, and an
//! interrupt during the start-up check still leaves results behind.

use crate::support;
use crate::support::squall_cmd;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::StreamExt;

const LISTEN: &str = r#"
name: output
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 3s }
graceful_stop: 1s
behaviours:
  - steps:
      - listen: 500ms
"#;

/// Upgrades every connection and reads until the client goes; counts accepted TCP
/// connections in `sent`.
fn quiet_server() -> TestServer {
    TestServer::start_tcp(|tcp, accepted| async move {
        accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
}

#[test]
fn an_unwritable_output_folder_fails_before_any_connection() {
    let srv = quiet_server();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", LISTEN);
    let started = Instant::now();
    // An existing folder nobody may create files in, root included.
    let out = squall_cmd()
        .args([
            "run",
            "-q",
            "--no-report",
            "--target",
            &srv.url(),
            "--out",
            "/proc/self",
        ])
        .arg(&sc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("/proc/self"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the planned 3 s ran first"
    );
    assert_eq!(
        srv.sent.load(Ordering::SeqCst),
        0,
        "the target was contacted before the output was checked"
    );
}

#[test]
fn a_failed_final_write_still_prints_the_summary_and_names_the_fallback() {
    let srv = quiet_server();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", LISTEN);
    let out_dir = dir.path().join("out");
    let child = squall_cmd()
        .args(["run", "--no-report", "--target", &srv.url(), "--out"])
        .arg(&out_dir)
        .arg(&sc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = out_dir.join("results.json");
    wait_until("results.json", Duration::from_secs(10), || results.exists());
    // The folder turns into a file mid-run: every later write fails.
    std::fs::remove_dir_all(&out_dir).unwrap();
    std::fs::write(&out_dir, "not a folder").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("squall complete"), "no summary: {stdout}");
    let fallback = stderr
        .lines()
        .find_map(|l| l.strip_prefix("squall: results written to the fallback "))
        .and_then(|l| l.strip_suffix(" instead"))
        .unwrap_or_else(|| panic!("no fallback named: {stderr}"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fallback).unwrap()).unwrap();
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "complete");
    let _ = std::fs::remove_dir_all(std::path::Path::new(fallback).parent().unwrap());
}

#[test]
fn an_interrupt_during_the_start_up_check_writes_results() {
    // A listener that never accepts, its queue full: the start-up check's TCP connect hangs.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "the listener's queue did not fill ({} fillers)",
        fillers.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "s.yaml",
        &LISTEN.replace("graceful_stop: 1s", "connect: { timeout: 20s }"),
    );
    let out_dir = dir.path().join("out");
    let mut child = squall_cmd()
        .args(["run", "-q", "--no-report", "--target"])
        .arg(format!("ws://{addr}/ws"))
        .arg("--out")
        .arg(&out_dir)
        .arg(&sc)
        .spawn()
        .unwrap();
    let results = out_dir.join("results.json");
    wait_until(
        "results.json before the check ends",
        Duration::from_secs(10),
        || results.exists(),
    );
    let started = Instant::now();
    // SAFETY: kill only sends a signal to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
    let doc = support::results(&out_dir);
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "interrupted");
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "results.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(fillers);
}

#[test]
fn a_full_disk_prints_the_summary_and_leaves_no_temporary_file() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "s.yaml",
        r#"
name: full
load: { vus: 1, duration: 2s }
graceful_stop: 300ms
behaviours:
  - steps:
      - send: { type: ping, id: "{{seq}}" }
      - expect: { kind: pong, id: "{{sent./id}}", within: 1s, metric: rtt }
"#,
    );
    let out_dir = dir.path().join("out");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut cmd = squall_cmd();
    cmd.args(["run", "--serve", "--no-report", "--out"])
        .arg(&out_dir)
        .arg(&sc)
        .env("TMPDIR", &tmp);
    // SAFETY: setrlimit and signal are async-signal-safe and touch only the child. Files
    // past 4000 bytes fail with EFBIG, as on a full disk: the first results.json (~2.6 kB)
    // fits, the final one (~5 kB, with a histogram) does not.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 4000,
                rlim_max: 4000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("squall complete"), "no summary: {stdout}");
    assert!(stderr.contains("not written anywhere"), "{stderr}");
    let names = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names(&out_dir),
        ["results.json"],
        "a temporary file was left"
    );
    // The fallback failed the same way and left nothing either.
    let fallbacks = tmp.join("squall");
    assert!(
        !fallbacks.exists() || names(&fallbacks).is_empty(),
        "{:?}",
        names(&fallbacks)
    );
}

#[test]
fn a_target_unreachable_at_the_start_leaves_results_that_say_so() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", LISTEN);
    let out_dir = dir.path().join("out");
    let out = squall_cmd()
        .args(["run", "-q", "--no-report", "--target"])
        .arg(format!("ws://127.0.0.1:{port}/ws"))
        .arg("--out")
        .arg(&out_dir)
        .arg(&sc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc = support::results(&out_dir);
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "aborted");
    let reason = doc["status_reason"].as_str().unwrap();
    assert!(reason.contains("connection refused"), "{reason}");
}
