//! `squall run --metrics-listen ADDR`: the run's figures in the Prometheus text exposition
//! format (0.0.4) at `GET /metrics` while it goes, so a Prometheus and a Grafana can watch a
//! soak or the shards of a distributed run (each labelled `shard="I/N"`).
//!
//! The text is rendered from the results document once per tick (the same figures
//! results.json has) and served from memory; a scrape never touches the workers.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::report::{Results, Summary};

/// Largest request head read before answering; longer ones are cut off.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The latest exposition text, shared by the run (which writes it every tick) and the server.
pub type Exposition = Arc<Mutex<String>>;

/// Serves `text` at `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, text: Exposition) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(answer(stream, text.clone()));
    }
}

/// Reads one request head (bounded in size and time) and answers it, then closes.
async fn answer(mut stream: TcpStream, text: Exposition) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let path = path.map(|p| p.split('?').next().unwrap_or(p));
    let response = match (method, path) {
        (Some("GET"), Some("/metrics")) => {
            let body = text.lock().map(|t| t.clone()).unwrap_or_default();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 20\r\nConnection: close\r\n\r\nonly GET /metrics \r\n"
            .to_string(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Binds `addr` (port 0: any free port); the address it got.
pub fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std)?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// `"` `\` and line breaks escaped for a label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes metric families: HELP and TYPE once, then each labelled sample.
struct Out {
    text: String,
    /// `shard="I/N"` (or empty), first in every sample's labels.
    base: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP squall_{name} {help}");
        let _ = writeln!(self.text, "# TYPE squall_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let mut all: Vec<String> = Vec::new();
        if !self.base.is_empty() {
            all.push(self.base.clone());
        }
        all.extend(labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))));
        let labels = if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        };
        let _ = writeln!(self.text, "squall_{name}{labels} {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn summary(&mut self, name: &str, metric: &str, s: &Summary) {
        for (q, v) in [
            ("0.5", s.p50),
            ("0.9", s.p90),
            ("0.99", s.p99),
            ("0.999", s.p99_9),
        ] {
            self.sample(name, &[("metric", metric), ("quantile", q)], v as f64 / 1e6);
        }
        let sum = s.mean * s.count as f64 / 1e6;
        self.sample(&format!("{name}_sum"), &[("metric", metric)], sum);
        self.sample(
            &format!("{name}_count"),
            &[("metric", metric)],
            s.count as f64,
        );
    }
}

/// The exposition text of `r` (a run's results so far).
pub fn render(r: &Results) -> String {
    let mut o = Out {
        text: String::with_capacity(4096),
        base: r.shard.as_ref().map_or_else(String::new, |s| {
            format!("shard=\"{}/{}\"", s.index, s.count)
        }),
    };
    counters(&mut o, r);
    by_label(&mut o, r);
    gauges(&mut o, r);
    summaries(&mut o, r);
    o.text
}

/// The run's totals, one counter each.
fn counters(o: &mut Out, r: &Results) {
    let c = &r.counters;
    let counts = [
        (
            "requests_total",
            "Requests waited on (paced requests and expects).",
            c.requests.sent,
        ),
        (
            "replies_total",
            "Requests answered in time.",
            c.requests.replies,
        ),
        (
            "request_timeouts_total",
            "Requests whose deadline passed first.",
            c.requests.timeouts,
        ),
        ("frames_in_total", "Data frames received.", c.frames_in),
        ("frames_out_total", "Data frames sent.", c.frames_out),
        ("bytes_in_total", "Payload bytes received.", c.bytes_in),
        ("bytes_out_total", "Payload bytes sent.", c.bytes_out),
        (
            "connections_opened_total",
            "WebSocket connections opened.",
            c.connections.opened,
        ),
        (
            "iterations_total",
            "Iterations ended (ok or failed).",
            r.load.iterations_ok + r.load.iterations_failed,
        ),
        (
            "missed_total",
            "Sends that could not happen at their intended time.",
            c.missed,
        ),
    ];
    for (name, help, v) in counts {
        o.one(name, "counter", help, v as f64);
    }
}

/// Errors by kind, failed connections by cause, violations by message kind.
fn by_label(o: &mut Out, r: &Results) {
    let c = &r.counters;
    o.family(
        "errors_total",
        "counter",
        "Errors by kind (connect failures included).",
    );
    for (kind, n) in &c.errors_by_kind {
        o.sample("errors_total", &[("kind", kind)], *n as f64);
    }
    o.family(
        "connections_failed_total",
        "counter",
        "Failed connection attempts by cause.",
    );
    for (cause, n) in &c.connections.failed_by_cause {
        o.sample("connections_failed_total", &[("cause", cause)], *n as f64);
    }
    o.family(
        "violations_total",
        "counter",
        "Protocol violations by message kind.",
    );
    let mut by_kind: std::collections::BTreeMap<&str, u64> = Default::default();
    for g in &r.violations.groups {
        *by_kind.entry(g.kind.as_str()).or_default() += g.count;
    }
    if r.violations.folded > 0 {
        by_kind.insert("(folded)", r.violations.folded);
    }
    for (kind, n) in by_kind {
        o.sample("violations_total", &[("kind", kind)], n as f64);
    }
}

/// Connections and VUs at the last tick, the generator's health, the time elapsed.
fn gauges(o: &mut Out, r: &Results) {
    let last = r.series.last();
    let gauges = [
        (
            "connections_active",
            "Open connections at the last tick.",
            last.map_or(0, |p| p.active_connections),
        ),
        (
            "vus_active",
            "Running VUs at the last tick.",
            last.map_or(0, |p| p.active_vus),
        ),
    ];
    for (name, help, v) in gauges {
        o.one(name, "gauge", help, v as f64);
    }
    let h = &r.health;
    o.family(
        "generator_lag_seconds",
        "gauge",
        "The generator's own lateness so far (p99 and max).",
    );
    o.sample(
        "generator_lag_seconds",
        &[("stat", "p99")],
        h.lag_p99_us as f64 / 1e6,
    );
    o.sample(
        "generator_lag_seconds",
        &[("stat", "max")],
        h.lag_max_us as f64 / 1e6,
    );
    o.one(
        "generator_saturated",
        "gauge",
        "1 when the generator was the bottleneck.",
        f64::from(u8::from(h.generator_saturated)),
    );
    o.one(
        "elapsed_seconds",
        "gauge",
        "Seconds since the load began.",
        r.meta.duration_s,
    );
}

/// Each metric's latency and service time, as summaries.
fn summaries(o: &mut Out, r: &Results) {
    type Pick = fn(&crate::report::MetricResult) -> &Summary;
    let summaries: [(&str, &str, Pick); 2] = [
        (
            "latency_seconds",
            "Latency from the intended send time, per metric, since the start.",
            |m| &m.latency,
        ),
        (
            "service_seconds",
            "Latency from the actual send, per metric, since the start.",
            |m| &m.service,
        ),
    ];
    for (family, help, pick) in summaries {
        o.family(family, "summary", help);
        for (name, m) in &r.metrics {
            o.summary(family, name, pick(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Aggregate;
    use crate::report::{RunMeta, ShardInfo, Status};

    fn results() -> Results {
        let meta = RunMeta {
            tool_version: "0".into(),
            scenario_name: "p".into(),
            scenario_file: "p.yaml".into(),
            scenario_sha256: String::new(),
            protocol: None,
            conformance: None,
            target: "ws://h/".into(),
            seed: 1,
            threads: 1,
            started_at: "2026-12-07T00:00:00Z".into(),
            ended_at: None,
            duration_s: 3.0,
            planned_duration_s: 3.0,
            load_model: "closed".into(),
            host: "h".into(),
            phases: vec![],
        };
        let mut r = Aggregate::new(vec!["a \"b\"".into()]).results(meta, Status::Running);
        r.counters.errors_by_kind.insert("timeout".into(), 2);
        r
    }

    #[test]
    fn families_once_labels_escaped_shard_first() {
        let mut r = results();
        let plain = render(&r);
        assert!(
            plain.contains("squall_errors_total{kind=\"timeout\"} 2\n"),
            "{plain}"
        );
        assert!(plain.contains(r#"squall_latency_seconds{metric="a \"b\"",quantile="0.99"} 0"#));
        assert_eq!(
            plain
                .matches("# TYPE squall_latency_seconds summary")
                .count(),
            1
        );
        r.shard = Some(ShardInfo {
            index: 3,
            count: 8,
            start_at: None,
        });
        let sharded = render(&r);
        assert!(
            sharded.contains("squall_elapsed_seconds{shard=\"3/8\"} 3\n"),
            "{sharded}"
        );
        assert!(sharded.contains("squall_errors_total{shard=\"3/8\",kind=\"timeout\"} 2\n"));
    }
}
