//! Runs the real `squall-server` binary: first stdout line, serving, and exit 0 on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn prints_address_serves_and_exits_cleanly_on_sigterm() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_squall-server"));
    server.args([
        "--listen",
        "127.0.0.1:0",
        "--profile",
        "kite",
        "--threads",
        "1",
    ]);
    let (mut child, addr) = start(server);
    let addr = addr.as_str();
    assert!(!addr.ends_with(":0"), "{addr}");

    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success(), "exit code 0 after SIGTERM");
}

#[test]
fn a_sigterm_right_after_the_address_line_still_exits_cleanly() {
    // Whoever reads the address may signal at once: the handler must already be in place.
    for _ in 0..20 {
        let mut server = Command::new(env!("CARGO_BIN_EXE_squall-server"));
        server.args(["--listen", "127.0.0.1:0", "--profile", "kite"]);
        let (mut child, _addr) = start(server);
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = child.wait().unwrap();
        assert!(status.success(), "after an early SIGTERM: {status}");
    }
}

/// Spawns `cmd` (the server, perhaps under a wrapper) and reads the address from its first
/// stdout line, `listening on ADDR`.
fn start(mut cmd: Command) -> (std::process::Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, addr)
}

/// Starts the binary under `prlimit` (util-linux) with few file descriptors.
fn start_limited(nofile: u32) -> (std::process::Child, String) {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_squall-server"))
        .args(["--listen", "127.0.0.1:0", "--threads", "1", "--events", "0"])
        .args(["--no-limit", "rate", "--log", "error"]);
    start(cmd)
}

#[tokio::test]
async fn out_of_file_descriptors_backs_off_and_keeps_serving() {
    use futures_util::{SinkExt, StreamExt};
    use tokio::time::timeout;
    use tokio_tungstenite::tungstenite::Message;

    let (mut child, addr) = start_limited(40);
    let url = format!("ws://{addr}/kite/ws");
    let connect = || async {
        let (mut ws, _) = timeout(
            Duration::from_millis(500),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        .ok()?
        .ok()?;
        // The welcome proves the connection was accepted and served.
        timeout(Duration::from_secs(2), ws.next())
            .await
            .ok()??
            .ok()?;
        Some(ws)
    };
    let mut open = Vec::new();
    while open.len() < 100 {
        match connect().await {
            Some(ws) => open.push(ws),
            None => break,
        }
    }
    assert!(open.len() < 100, "the descriptor limit was never reached");
    assert!(!open.is_empty(), "no connection was served at all");
    // Every connection accepted before the limit still works.
    for ws in &mut open {
        ws.send(Message::text(r#"{"type":"ping","id":1}"#))
            .await
            .unwrap();
        let reply = timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(reply.to_text().unwrap().contains("pong"), "{reply:?}");
    }
    // Freeing descriptors lets the accept loop recover.
    open.truncate(open.len().saturating_sub(10));
    let mut recovered = None;
    for _ in 0..20 {
        recovered = connect().await;
        if recovered.is_some() {
            break;
        }
    }
    assert!(
        recovered.is_some(),
        "no new connection served after descriptors were freed"
    );
    drop(recovered);
    drop(open);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "/metrics never answered"
        );
        // The scrape itself needs a descriptor; retry while the closes are processed.
        if let Ok(mut tcp) = TcpStream::connect(&addr) {
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
            let mut reply = String::new();
            if tcp.read_to_string(&mut reply).is_ok() && reply.starts_with("HTTP/1.1 200") {
                break reply;
            }
        }
        tokio::task::yield_now().await;
    };
    let errors: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("squall_server_accept_errors_total ")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(errors > 0, "accept errors were counted:\n{metrics}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}
