//! Every failed connect keeps its cause and a detail, in results.json and in the summary:
//! a wrong Sec-WebSocket-Accept, an HTTP/1.0 404 from a server that is no WebSocket server,
//! and a process out of file descriptors.

use std::process::Command;

use crate::support::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LISTEN: &str = r#"
name: causes
target: ws://127.0.0.1:1/ws
load: { vus: 2, duration: 1s }
graceful_stop: 300ms
behaviours:
  - steps:
      - listen: 200ms
"#;

/// Reads the upgrade request, then writes `answer` and hangs up.
fn answers(answer: &'static str) -> TestServer {
    TestServer::start_tcp(move |mut tcp: TcpStream, _| async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
}

/// The details kept for `cause`, which must be the only cause counted.
fn only_cause<'d>(doc: &'d Value, cause: &str) -> &'d Vec<Value> {
    let c = &doc["counters"]["connections"];
    let by = c["failed_by_cause"].as_object().unwrap();
    assert_eq!(by.keys().collect::<Vec<_>>(), [cause], "{c}");
    assert_eq!(by[cause], c["failed"], "{c}");
    assert_eq!(
        doc["counters"]["errors_by_kind"][format!("connect_{cause}").as_str()]
            .as_u64()
            .or_else(|| doc["counters"]["errors_by_kind"][cause].as_u64()),
        c["failed"].as_u64(),
        "{}",
        doc["counters"]
    );
    c["failed_samples"][cause].as_array().unwrap()
}

#[test]
fn a_wrong_accept_key_is_its_own_cause() {
    let srv = answers(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    );
    let (done, doc) = run_yaml(&srv.url(), LISTEN);
    let samples = only_cause(&doc, "bad_accept");
    assert!(
        samples[0]
            .as_str()
            .unwrap()
            .contains("Sec-WebSocket-Accept"),
        "{samples:?}"
    );
    assert_eq!(done.exit_code(), 3);
}

#[test]
fn an_http_1_0_404_keeps_its_status_and_reason() {
    let srv = answers("HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such page");
    let (_, doc) = run_yaml(&srv.url(), LISTEN);
    let samples = only_cause(&doc, "http_404");
    assert_eq!(
        samples[0], "upgrade answered with HTTP/1.0 404 Not Found",
        "{samples:?}"
    );
    let summary = squall::report::render_summary(&serde_json::from_value(doc).unwrap());
    assert!(
        summary.contains("http_404: upgrade answered with HTTP/1.0 404 Not Found"),
        "{summary}"
    );
}

#[test]
fn running_out_of_file_descriptors_says_the_limit_and_what_to_do() {
    use std::os::unix::process::CommandExt;
    // Upgrades and holds every connection until the client leaves.
    let srv = TestServer::start(|mut ws, _| async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = ws.next().await {}
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "s.yaml",
        &LISTEN.replace("vus: 2", "vus: 60").replace("200ms", "1s"),
    );
    let out_dir = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
    cmd.args([
        "run",
        "--no-report",
        "--threads",
        "1",
        "--target",
        &srv.url(),
    ])
    .arg("--out")
    .arg(&out_dir)
    .arg(&sc);
    // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 48,
                rlim_max: 48,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc = results(&out_dir);
    assert_schema_valid(&doc);
    let c = &doc["counters"]["connections"];
    assert!(c["failed_by_cause"]["emfile"].as_u64().unwrap() >= 1, "{c}");
    let sample = c["failed_samples"]["emfile"][0].as_str().unwrap();
    assert!(sample.contains("the limit is 48 open files"), "{sample}");
    assert!(sample.contains("ulimit -n"), "{sample}");
    assert!(stdout.contains("emfile: "), "{stdout}");
}
