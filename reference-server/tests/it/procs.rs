//! `squall-server --procs N`: N processes on one port, `/metrics` on any of them the sum of
//! all, and a SIGTERM to the first ends them all and removes the shared counters file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, Message};

const CONNS: u64 = 30;

fn start(procs: &str) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall-server"))
        .args(["--listen", "127.0.0.1:0", "--procs", procs])
        .args(["--threads", "1", "--events", "0", "--log", "error"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let line = out.lines().next().unwrap().unwrap();
    (child, line.replace("listening on ", ""))
}

fn get(addr: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    reply
}

/// One `squall_server_<name>{protocol="kite"}` value.
fn kite(text: &str, name: &str) -> u64 {
    let key = format!("squall_server_{name}{{protocol=\"kite\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// One connection: the welcome, one ping answered by a pong, a clean close.
fn ping_once(addr: &str) {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/kite/ws"), tcp).unwrap();
    ws.send(Message::text(r#"{"type":"ping","id":"p"}"#))
        .unwrap();
    loop {
        match ws.read().unwrap() {
            Message::Text(t) if t.contains("\"pong\"") => break,
            _ => {}
        }
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
}

#[test]
fn every_process_reports_the_sum_of_all() {
    let (mut child, addr) = start("3");
    let pid = child.id();
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    assert_eq!(
        kids.split_whitespace().count(),
        2,
        "two more processes: {kids}"
    );
    let file = std::env::temp_dir().join(format!("squall-server-{pid}.stats"));
    assert!(file.is_file());
    for _ in 0..CONNS {
        ping_once(&addr);
    }
    // Each GET lands on whichever process the kernel picks; every one must give the sum.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while seen < 9 {
        let text = get(&addr, "/metrics");
        if kite(&text, "connections_active") > 0 {
            assert!(
                Instant::now() < deadline,
                "connections never closed: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(kite(&text, "connections_total"), CONNS, "{text}");
        assert_eq!(kite(&text, "frames_in_total"), CONNS, "{text}");
        seen += 1;
    }
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    assert!(!file.exists(), "the shared counters file is removed");
    for k in kids.split_whitespace() {
        assert!(
            !std::path::Path::new(&format!("/proc/{k}")).exists()
                || std::fs::read_to_string(format!("/proc/{k}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {k} ended with the first"
        );
    }
}

#[test]
fn procs_zero_is_refused() {
    let o = Command::new(env!("CARGO_BIN_EXE_squall-server"))
        .args(["--listen", "127.0.0.1:0", "--procs", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--procs"));
}
