//! Hostile clients over raw sockets: none may crash the server, stall other connections or
//! grow its memory without bound; each gets the documented reply or close code, and a
//! counter in /metrics moves.

use squall_server::{spawn, Config, Profile, ServerHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn server(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        events_per_sec: 0.0,
        threads: 2,
        ..Config::default()
    };
    tweak(&mut config);
    spawn(config).expect("server starts")
}

/// A WebSocket client on a bare TCP socket, so it can send what no library would.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

/// One frame from the server.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl Frame {
    fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl Raw {
    async fn connect(server: &ServerHandle, path: &str) -> Raw {
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Raw {
            tcp,
            buf: Vec::new(),
        };
        let head = raw.head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// Reads up to the end of the HTTP response head.
    async fn head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = timeout(WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("server answers in time")
            .unwrap();
        assert!(n > 0, "server closed the socket");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Sends one masked frame with an explicit payload length (which may lie).
    async fn frame_with_len(&mut self, fin: bool, opcode: u8, payload: &[u8], len: u64) {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        let mask = [1u8, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&out).await.unwrap();
    }

    async fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.frame_with_len(fin, opcode, payload, payload.len() as u64)
            .await
    }

    async fn text(&mut self, text: &str) {
        self.frame(true, 1, text.as_bytes()).await
    }

    /// The next frame the server sends.
    async fn recv(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return frame;
            }
            self.fill().await;
        }
    }

    /// The next text frame, skipping pongs.
    async fn recv_text(&mut self) -> serde_json::Value {
        loop {
            let f = self.recv().await;
            match f.opcode {
                1 => return serde_json::from_slice(&f.payload).expect("JSON text"),
                10 => continue,
                _ => panic!("expected text, got {f:?}"),
            }
        }
    }
}

/// An unmasked server frame at the start of `buf`, with the bytes it used.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (fin, opcode) = (buf[0] & 0x80 != 0, buf[0] & 0x0f);
    let (len, at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    ))
}

async fn metrics(server: &ServerHandle) -> String {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// The value of one series in /metrics (0 when absent).
async fn metric(server: &ServerHandle, series: &str) -> u64 {
    let text = metrics(server).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// A fresh Kite connection still gets its welcome and a pong: the server is not stalled.
async fn assert_serving(server: &ServerHandle) {
    let mut ws = Raw::connect(server, "/kite/ws").await;
    assert_eq!(ws.recv_text().await["type"], "welcome");
    ws.text(r#"{"type":"ping","id":1}"#).await;
    assert_eq!(ws.recv_text().await["type"], "pong");
}

const KITE_REJECTS: &str = "squall_server_rejects_total{protocol=\"kite\",reason=";

#[tokio::test]
async fn garbage_text_gets_error_frames_and_counts() {
    let server = server(|_| {});
    let mut ws = Raw::connect(&server, "/kite/ws").await;
    assert_eq!(ws.recv_text().await["type"], "welcome");
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    for bad in ["not json", "{\"type\":", deep.as_str()] {
        ws.text(bad).await;
        assert_eq!(ws.recv_text().await["type"], "error", "{:.40}", bad);
    }
    ws.text(r#"{"type":"launch_missiles"}"#).await;
    assert_eq!(ws.recv_text().await["type"], "error");
    assert_eq!(
        metric(&server, &format!("{KITE_REJECTS}\"invalid_json\"}}")).await,
        3
    );
    assert_eq!(
        metric(&server, &format!("{KITE_REJECTS}\"unknown_type\"}}")).await,
        1
    );
    assert_serving(&server).await;
}

#[tokio::test]
async fn invalid_utf8_is_closed_with_1007() {
    let server = server(|_| {});
    let mut ws = Raw::connect(&server, "/kite/ws").await;
    ws.recv_text().await;
    ws.frame(true, 1, &[b'"', 0xff, 0xfe, b'"']).await;
    assert_eq!(ws.recv().await.close_code(), Some(1007));
    assert_eq!(
        metric(&server, &format!("{KITE_REJECTS}\"invalid_utf8\"}}")).await,
        1
    );
}

#[tokio::test]
async fn protocol_errors_are_closed_with_1002() {
    let server = server(|_| {});
    let mut ws = Raw::connect(&server, "/kite/ws").await;
    ws.recv_text().await;
    // A continuation frame with no message to continue.
    ws.frame(true, 0, b"orphan").await;
    assert_eq!(ws.recv().await.close_code(), Some(1002));
    assert_eq!(
        metric(&server, &format!("{KITE_REJECTS}\"protocol_error\"}}")).await,
        1
    );
}

#[tokio::test]
async fn a_frame_announcing_a_gigabyte_is_refused_before_its_payload() {
    let server = server(|_| {});
    let mut ws = Raw::connect(&server, "/kite/ws").await;
    ws.recv_text().await;
    // Only the header and 10 bytes are sent: an answer proves the server did not wait for
    // (or allocate) the announced gigabyte.
    ws.frame_with_len(true, 1, b"0123456789", 1 << 30).await;
    assert_eq!(ws.recv().await.close_code(), Some(1009));
    assert_eq!(
        metric(&server, &format!("{KITE_REJECTS}\"message_too_big\"}}")).await,
        1
    );
    assert_serving(&server).await;
}

#[tokio::test]
async fn fragments_never_finishing_are_bounded_by_the_message_limit() {
    let server = server(|c| c.max_message_size = Some(64 * 1024));
    let mut stalled = Raw::connect(&server, "/kite/ws").await;
    stalled.recv_text().await;
    stalled.frame(false, 1, b"{\"type\":").await;
    // The stalled message holds up nobody else.
    assert_serving(&server).await;
    let mut growing = Raw::connect(&server, "/kite/ws").await;
    growing.recv_text().await;
    growing.frame(false, 1, &[b' '; 1000]).await;
    let chunk = [b' '; 8 * 1024];
    let mut closed = None;
    for _ in 0..16 {
        growing.frame(false, 0, &chunk).await;
    }
    let deadline = Instant::now() + WAIT;
    while closed.is_none() && Instant::now() < deadline {
        closed = growing.recv().await.close_code();
    }
    assert_eq!(closed, Some(1009), "the message passed the 64 KiB limit");
}

#[tokio::test]
async fn a_ping_flood_stalls_neither_others_nor_the_flooder() {
    let server = server(|_| {});
    let mut flood = Raw::connect(&server, "/kite/ws").await;
    flood.recv_text().await;
    let mut burst = Vec::new();
    for _ in 0..20_000 {
        // A masked ping with a 4-byte payload, written as one buffer.
        burst.extend_from_slice(&[
            0x89,
            0x84,
            1,
            2,
            3,
            4,
            b'p' ^ 1,
            b'i' ^ 2,
            b'n' ^ 3,
            b'g' ^ 4,
        ]);
    }
    flood.tcp.write_all(&burst).await.unwrap();
    assert_serving(&server).await;
    // Pongs come back (tungstenite keeps only the latest one pending), and the connection
    // then still answers its protocol.
    flood.text(r#"{"type":"ping","id":7}"#).await;
    let mut pongs = 0;
    loop {
        let f = flood.recv().await;
        match f.opcode {
            10 => pongs += 1,
            1 => {
                let v: serde_json::Value = serde_json::from_slice(&f.payload).unwrap();
                assert_eq!(v["id"], 7);
                break;
            }
            _ => panic!("unexpected {f:?}"),
        }
    }
    assert!(pongs > 0, "no pong came back");
}

#[tokio::test]
async fn silent_tcp_connections_are_freed_by_the_handshake_timeout() {
    let server = server(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut silent = Vec::new();
    for _ in 0..2_000 {
        silent.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // They occupy no upgrade slot, and the server still serves.
    assert_serving(&server).await;
    for mut tcp in silent {
        let mut byte = [0u8; 1];
        let n = timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("closed by the server");
        assert!(matches!(n, Ok(0) | Err(_)), "the server hung up");
    }
    assert!(metric(&server, "squall_server_handshake_timeouts_total").await >= 2_000);
}

#[tokio::test]
async fn a_64_kib_header_gets_431() {
    let server = server(|_| {});
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let big = format!(
        "GET /kite/ws HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // The server may answer and close before reading it all.
    let _ = tcp.write_all(big.as_bytes()).await;
    let mut out = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut out)).await.unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        metric(
            &server,
            "squall_server_http_rejects_total{reason=\"header_too_large\"}"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn ten_thousand_subscribe_cycles_leave_nothing_behind() {
    let server = server(|c| c.limits.rate = false);
    let mut ws = Raw::connect(&server, "/kite/ws").await;
    ws.recv_text().await;
    let mut burst = String::new();
    for i in 0..10_000 {
        burst.push_str(&format!(
            "{{\"type\":\"subscribe\",\"room\":\"case:{i}\"}}\n"
        ));
        burst.push_str(&format!(
            "{{\"type\":\"unsubscribe\",\"room\":\"case:{i}\"}}\n"
        ));
    }
    for line in burst.lines() {
        ws.text(line).await;
    }
    let mut acks = 0;
    while acks < 20_000 {
        let v = ws.recv_text().await;
        assert!(
            v["type"] == "subscribe" || v["type"] == "unsubscribe",
            "{v}"
        );
        acks += 1;
    }
    assert_eq!(metric(&server, "squall_server_subscriptions").await, 0);
}

#[tokio::test]
async fn the_conformance_route_echoes_text_and_binary() {
    let server = server(|c| c.profile = Profile::Conformance);
    let mut ws = Raw::connect(&server, "/ws").await;
    ws.text("héllo").await;
    let f = ws.recv().await;
    assert_eq!(
        (f.fin, f.opcode, f.payload.as_slice()),
        (true, 1, "héllo".as_bytes())
    );
    ws.frame(true, 2, &[0, 159, 146, 150]).await;
    let f = ws.recv().await;
    assert_eq!((f.opcode, f.payload), (2, vec![0, 159, 146, 150]));
}
