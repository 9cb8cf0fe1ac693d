//! `squall run --metrics-listen`: Prometheus text served while the run goes, labelled by
//! shard, and the Grafana dashboard in deploy/ asks only for what is served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const LIVE: &str = r#"
name: live
target: ws://127.0.0.1:1/ws
seed: 5
load: { vus: 3, duration: 6s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - pace: { send: { type: ping, id: "{{vu}}-{{seq}}" }, rate: 20/s, duration: 1s, in_flight: 4, reply: { kind: pong }, metric: rtt }
"#;

/// One HTTP/1.0 GET; the whole response (the server closes after it).
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the first sample line starting with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

#[test]
fn prometheus_text_is_served_mid_run_labelled_by_shard() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "live.yaml", LIVE);
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--serve", "--quiet", "--no-report", "--shard", "2/3"])
        .args(["--metrics-listen", "127.0.0.1:0", "--out"])
        .arg(dir.path().join("out"))
        .arg(&sc)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address is named on stderr before any load.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let rest = l.strip_prefix("squall: metrics at http://")?;
            rest.strip_suffix("/metrics")?.parse().ok()
        })
        .expect("the metrics address on stderr");
    // Drain the rest of stderr so the child never blocks on it.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let requests = r#"squall_requests_total{shard="2/3"} "#;
    let p99 = r#"squall_latency_seconds{shard="2/3",metric="rtt",quantile="0.99"} "#;
    let mut text = String::new();
    wait_until(
        "requests and an rtt p99 in the scrape",
        Duration::from_secs(10),
        || {
            text = get(addr, "/metrics");
            value(&text, requests).is_some_and(|n| n > 0.0)
                && value(&text, p99).is_some_and(|v| v > 0.0)
        },
    );
    // Mid-run: the run had not ended when the figures were there.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run was still going"
    );
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    for family in [
        "# TYPE squall_requests_total counter",
        "# TYPE squall_latency_seconds summary",
        "# TYPE squall_errors_total counter",
        "# TYPE squall_violations_total counter",
        "# TYPE squall_connections_active gauge",
        "# TYPE squall_generator_lag_seconds gauge",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    // One of three shards of 3 VUs runs one VU.
    assert_eq!(
        value(&text, r#"squall_vus_active{shard="2/3"} "#),
        Some(1.0),
        "{text}"
    );
    assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));

    // The dashboard asks only for metric names the run serves.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/squall-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut asked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("squall_"))
            {
                asked += 1;
                // A family is served when it is declared (a counter with nothing counted
                // yet has no sample); a summary's _sum and _count belong to its family.
                let family = name.trim_end_matches("_sum").trim_end_matches("_count");
                assert!(
                    text.contains(&format!("# TYPE {family} ")),
                    "dashboard asks for {name}, which is not served"
                );
            }
        }
    }
    assert!(asked >= 10);

    let status = child.wait().unwrap();
    let rest = rest.join().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    let doc = results(&dir.path().join("out"));
    assert_eq!(doc["shard"]["index"], 2);
}

#[test]
fn an_address_that_cannot_be_listened_on_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "live.yaml", LIVE);
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "run",
            "--serve",
            "--quiet",
            "--no-report",
            "--metrics-listen",
        ])
        .arg(addr.to_string())
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&sc)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot listen there") && err.contains("port 0"),
        "{err}"
    );
}
