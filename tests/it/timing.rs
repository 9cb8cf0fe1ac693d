//! Timing causality: every latency squall records contains the server's own hold for that
//! reply. squall-server (`stamp`) adds its CLOCK_MONOTONIC receive and send instants to each
//! reply; `squall run --samples` writes each sample's instants on the same clock. On one
//! host, client send < server receive <= server send < client receive must hold for every
//! sample of every sending step. And the inbox's ordering rule: an `expect` never takes a
//! frame read before the send it follows.

use crate::support::squall_cmd;
use std::path::Path;

use crate::support::*;
use serde_json::Value;

/// Every sending step, each with its own metric: send + expect, paced pings at two rates
/// with 1 and 16 in flight, closed-loop pings with 16 in flight, and a burst timed to its
/// first reply.
fn scenario_yaml(addr: &str) -> String {
    format!(
        r#"
name: timing
target: ws://{addr}/kite/ws
seed: 7
graceful_stop: 60s
load: {{ model: open, max_vus: 4, phases: [{{ hold: 1s, rate: 4/s }}] }}
thresholds:
  - "errors.count == 0"
behaviours:
  - name: kite
    steps:
      - expect: {{ kind: welcome, within: 2s, metric: welcome }}
      - repeat: {{ count: 50 }}
        steps:
          - send: {{ type: ping, id: "{{{{seq}}}}" }}
          - expect: {{ kind: pong, id: "{{{{sent./id}}}}", within: 2s, metric: expect_rtt }}
      - pace: {{ send: {{ type: ping, id: "{{{{seq}}}}" }}, rate: 200/s, count: 60, in_flight: 1, reply: {{ kind: pong }}, metric: paced_200_1 }}
      - pace: {{ send: {{ type: ping, id: "{{{{seq}}}}" }}, rate: 1000/s, count: 200, in_flight: 16, reply: {{ kind: pong }}, metric: paced_1000_16 }}
      - pace: {{ send: {{ type: ping, id: "{{{{seq}}}}" }}, count: 300, in_flight: 16, reply: {{ kind: pong }}, metric: closed_16 }}
      - burst: {{ send: {{ type: ping, id: "{{{{seq}}}}" }}, count: 20, rejected: {{ kind: pong, within: 2s, metric: burst_first }} }}
      - listen: 100ms
"#
    )
}

/// Runs `yaml` with `--samples`; the samples as JSON values.
fn run_with_samples(dir: &Path, yaml: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    let sc = scenario(dir, "timing.yaml", yaml);
    let samples = dir.join("samples.jsonl");
    let status = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--quiet", "--no-report", "--no-check", "--threads", "2"])
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--samples")
        .arg(&samples)
        .args(extra)
        .status()
        .expect("squall runs");
    let text = std::fs::read_to_string(&samples).expect("samples file written");
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a sample is a JSON line"))
        .collect();
    (status.code().unwrap_or(-1), lines)
}

fn ns(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn every_latency_contains_the_servers_hold() {
    // Kite's rate limit off: the pings here come faster than kite.md's limit allows.
    let srv = reference_server(|c| {
        c.stamp = true;
        c.events_per_sec = 0.0;
        c.limits.rate = false;
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml = scenario_yaml(&srv.addr().to_string());
    let (code, samples) = run_with_samples(dir.path(), &yaml, &[]);
    assert_eq!(code, 0, "the run passes");
    let doc = results(&dir.path().join("out"));
    assert_eq!(doc["counters"]["errors"], 0, "{}", doc["counters"]);
    let mut per_metric = std::collections::BTreeMap::<String, usize>::new();
    for s in &samples {
        let metric = s["metric"].as_str().unwrap().to_string();
        *per_metric.entry(metric.clone()).or_default() += 1;
        if metric == "welcome" {
            // Unsolicited: nothing the client sent is answered by it.
            continue;
        }
        let frame: Value = serde_json::from_str(s["frame"].as_str().unwrap()).unwrap();
        let stamp = &frame["_stamp"];
        let (rx, tx) = (ns(stamp, "rx_ns"), ns(stamp, "tx_ns"));
        let (sent, got) = (ns(s, "sent_ns"), ns(s, "received_ns"));
        let intended = ns(s, "intended_ns");
        assert!(
            intended <= sent,
            "{metric}: sent before its intended time: {s}"
        );
        assert!(
            sent < rx,
            "{metric}: client send after the server read it: {s}"
        );
        assert!(rx <= tx, "{metric}: server stamps out of order: {s}");
        assert!(
            tx < got,
            "{metric}: client read the reply before it was sent: {s}"
        );
        let hold_us = (tx - rx) / 1_000;
        let latency = s["latency_us"].as_u64().unwrap();
        let service = s["service_us"].as_u64().unwrap();
        assert!(
            latency >= hold_us && service >= hold_us,
            "{metric}: latency {latency} µs / service {service} µs below the server's hold {hold_us} µs: {s}"
        );
        // What was recorded is what the instants say.
        assert_eq!(latency, (got - intended.min(sent)) / 1_000, "{metric}: {s}");
    }
    for m in [
        "welcome",
        "expect_rtt",
        "paced_200_1",
        "paced_1000_16",
        "closed_16",
        "burst_first",
    ] {
        assert!(
            per_metric.get(m).copied().unwrap_or(0) >= 4,
            "metric {m} has samples: {per_metric:?}"
        );
    }
}

#[test]
fn an_expect_never_takes_a_frame_read_before_the_send_it_follows() {
    // The echo route answers each message with itself. The first echo is read (into the
    // inbox) during `listen`, before the second send; the `expect` after that send wants
    // kind `first`, which only the earlier echo has: it must time out, not take it (and,
    // with `on_fail: continue`, the next `expect` still runs).
    let srv = reference_server(|c| c.events_per_sec = 0.0);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
name: inbox-order
target: ws://{}/conformance/ws
load: {{ model: open, max_vus: 1, phases: [{{ hold: 1s, rate: 1/s }}] }}
behaviours:
  - name: one
    steps:
      - send: {{ type: first }}
      - listen: 200ms
      - send: {{ type: second }}
      - expect: {{ kind: first, within: 300ms, metric: stale }}
        on_fail: continue
      - expect: {{ kind: second, within: 1s, metric: fresh }}
thresholds:
  - "errors.count == 0"
"#,
        srv.addr()
    );
    let (code, samples) = run_with_samples(dir.path(), &yaml, &[]);
    assert_eq!(code, 1, "a timed-out expect fails the run");
    let doc = results(&dir.path().join("out"));
    let counters = &doc["counters"];
    assert_eq!(counters["errors_by_kind"]["timeout"], 1, "{counters}");
    let metrics: Vec<&str> = samples
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["fresh"], "no latency from the stale echo");
}

#[test]
fn closed_loop_metrics_are_labelled_with_the_coordinated_omission_note() {
    let srv = reference_server(|c| c.events_per_sec = 0.0);
    let yaml = r#"
name: labels
target: ws://127.0.0.1:1/kite/ws
load: { model: open, max_vus: 1, phases: [{ hold: 1s, rate: 1/s }] }
behaviours:
  - name: one
    steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: subscribe, within: 2s, metric: ack }
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 50/s, count: 5, reply: { kind: pong }, metric: rtt }
"#;
    let (done, doc) = run_yaml(&format!("ws://{}/kite/ws", srv.addr()), yaml);
    assert_eq!(doc["metrics"]["ack"]["timing"], "closed_loop");
    assert_eq!(doc["metrics"]["rtt"]["timing"], "paced");
    let summary = squall::report::render_summary(&done.results);
    let note = summary
        .lines()
        .find(|l| l.contains("closed loop ("))
        .unwrap_or_else(|| panic!("a closed-loop note in:\n{summary}"));
    assert!(note.contains("(ack)"), "only ack is closed loop: {note}");
    assert!(
        note.contains("coordinated omission") && note.contains("pace"),
        "{note}"
    );
    let dir = tempfile::tempdir().unwrap();
    let written = squall::report::write_report(&done.results, dir.path()).unwrap();
    let html = std::fs::read_to_string(written.html).unwrap();
    assert!(
        html.contains("<b>Closed loop</b> (ack)"),
        "the report says it too"
    );
}

#[test]
fn a_samples_file_that_cannot_be_made_fails_before_any_load() {
    // A refused target: were the load to start, the run would say so instead.
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: s\ntarget: ws://127.0.0.1:1/ws\nload: { vus: 1, duration: 1s }\n\
                behaviours:\n  - steps:\n      - listen: 10ms\n";
    let sc = scenario(dir.path(), "s.yaml", yaml);
    let out = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args([
            "--quiet",
            "--no-report",
            "--samples",
            "/nonexistent/dir/s.jsonl",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .expect("squall runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("/nonexistent/dir/s.jsonl"), "{stderr}");
    assert!(
        !stderr.contains("unreachable"),
        "no connection was tried: {stderr}"
    );
}
