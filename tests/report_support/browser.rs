//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on 127.0.0.1:
//! open a page, collect console errors, uncaught exceptions and failed loads, take a
//! full-page screenshot.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// How long any one browser step may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

/// What the browser made of a page.
pub struct Rendered {
    /// Console errors, exceptions and failed loads, one line each.
    pub problems: Vec<String>,
    /// Full-page screenshot at half scale (enough to tell a page from a blank), PNG bytes.
    pub screenshot: Vec<u8>,
}

/// A running Chromium and a DevTools session on one page.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

fn chromium() -> String {
    std::env::var("SQUALL_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

impl Browser {
    /// Starts headless Chromium with a fresh profile, no network beyond loopback, and
    /// connects to its DevTools endpoint. Panics (failing the test) when Chromium is missing.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start '{}': {e}. The browser test needs Debian's chromium \
                     (apt-get install chromium; .ci/run installs it) or SQUALL_CHROMIUM=path",
                    chromium()
                )
            });
        // Chromium says where DevTools listens on stderr; keep draining it afterwards so
        // the pipe never fills.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(STEP)
            .expect("chromium printed no DevTools address");
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        assert!(host.starts_with("127.0.0.1:"), "DevTools on {host}");
        let tcp = TcpStream::connect(&host).unwrap();
        tcp.set_read_timeout(Some(STEP)).unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), tcp).expect("DevTools handshake");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: None,
            events: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].clone();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        b.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b
    }

    /// Sends a command (to the page's session once attached) and returns its result;
    /// events read meanwhile are kept.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        let deadline = Instant::now() + STEP;
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let v = self.read();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("DevTools connection") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(_) => panic!("DevTools closed the connection"),
                _ => {}
            }
        }
    }

    /// Reads until the event `name` arrives.
    fn wait_event(&mut self, name: &str) {
        let deadline = Instant::now() + STEP;
        while !self.events.iter().any(|e| e["method"] == name) {
            assert!(Instant::now() < deadline, "no {name}");
            let v = self.read();
            self.events.push(v);
        }
    }

    /// Opens `page` (a file), waits for its load event, and returns what went wrong and
    /// a full-page screenshot.
    pub fn render(&mut self, page: &Path) -> Rendered {
        self.events.clear();
        let url = format!("file://{}", page.canonicalize().unwrap().display());
        let nav = self.call("Page.navigate", json!({"url": url}));
        let mut problems = Vec::new();
        if let Some(e) = nav.get("errorText") {
            problems.push(format!("navigation: {e}"));
        } else {
            self.wait_event("Page.loadEventFired");
        }
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(1200.0).ceil(),
            size["height"]
                .as_f64()
                .unwrap_or(900.0)
                .ceil()
                .min(16_000.0),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 0.5}}),
        );
        use base64::Engine as _;
        let screenshot = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        // Everything the page did before the screenshot's answer has been read by now.
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => {
                    problems.push(format!("exception: {}", p["exceptionDetails"]))
                }
                Some("Runtime.consoleAPICalled")
                    if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                {
                    problems.push(format!("console.{}: {}", p["type"], p["args"]))
                }
                Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                    problems.push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]))
                }
                _ => {}
            }
        }
        Rendered {
            problems,
            screenshot,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session = None;
        let close = json!({"id": 0, "method": "Browser.close"}).to_string();
        // Chromium drops the connection as it exits; the read timeout bounds the wait, and
        // a browser that outlives it is killed.
        let mut exiting = false;
        if self.ws.send(Message::text(close)).is_ok() {
            exiting = loop {
                match self.ws.read() {
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break false
                    }
                    Err(_) => break true,
                }
            };
        }
        if !exiting {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
