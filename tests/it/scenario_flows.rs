//! The scenario library's constructs: `delivery:`, `upload`, `pace: { mix }`,
//! `burst: { rejected }`, `{{blob}}`, `{{now_us}}`, and their thresholds. Valid files lower to
//! the expected plan; invalid ones fail at the exact line and column.

use std::time::Duration;

use squall::scenario::plan::{MetricId, Payload, RejectBy, Step};
use squall::scenario::thresholds::{Cmp, DeliveryStat, Quantity, UploadStat};
use squall::scenario::{load_str, LoadError, LoadOptions, Plan};

const VALID: &str = r#"
name: flows
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
delivery: { seq: /seq, sent_at: /timestamp, key: [/type, /data/room], kinds: [event, message], metric: fanout }
behaviours:
  - name: uploader
    connect: { query: { role: "up-{{vu}}" }, headers: { X-Up: "1" } }
    steps:
      - upload:
          size: 1MiB
          chunk_size: 64KiB
          id: "up-{{vu}}-{{seq}}"
          name: "f-{{upload.id}}.csv"
          start: { type: file_upload_start, id: "{{upload.id}}", data: { filename: "{{upload.name}}", size: "{{upload.size}}", sha: "{{upload.sha256}}" } }
          started: { kind: upload_started, match: { /id: "{{upload.id}}" }, within: 2s }
          chunk: { type: file_chunk, data: { index: "{{chunk.index}}", of: "{{upload.chunks}}", data: "{{chunk.base64}}", sum: "{{chunk.sha256}}", at: "{{chunk.offset}}", n: "{{chunk.size}}", last: "{{chunk.last}}" } }
          chunk_ack: { kind: chunk_ack, match: { /index: "{{chunk.index}}" } }
          in_flight: 4
          finish: { type: done, id: "{{upload.id}}" }
          complete: { kind: file_upload_complete, match: { /data/upload_id: "{{upload.id}}" }, within: 10s }
          metric: up_1m
        unchecked: true
      - upload:
          size: 100
          chunk_size: 30
          start: { type: s, id: "{{upload.id}}" }
          chunk: { type: c, i: "{{chunk.index}}" }
          complete: { kind: done }
          corrupt: 2
          expect_error: { kind: error, match: { /data/details/chunk_index: "{{upload.corrupt}}" } }
          metric: up_bad
  - name: rpc
    steps:
      - pace:
          rate: 10/s
          count: 20
          in_flight: 2
          reply: { kind: rpc_response }
          mix:
            - { weight: 3, send: { type: rpc_call, id: "{{seq}}", method: a }, metric: rpc_a }
            - { weight: 1, send: { type: rpc_call, id: "{{seq}}", method: nope }, reply: { kind: rpc_error }, metric: rpc_unknown }
            - { weight: 0, send_text: "x" }
      - burst: { send: { type: ping, id: "{{seq}}" }, count: 300, rejected: { kind: error, match: { /code: RATE_LIMITED }, within: 2s, metric: first_reject } }
      - burst: { send_text: "{{blob 600KiB}}", count: 1, rejected: { close: 1009, metric: too_big } }
      - burst: { send: { t: "{{now_us}}" }, count: 2, rejected: { close: any } }
thresholds:
  - "delivery.gaps == 0"
  - "delivery.completeness >= 99.9%"
  - "latency.fanout.p99 < 50ms"
  - "upload.up_1m.mbps > 10"
  - "upload.up_bad.rejected >= 1"
  - "delivery.received > 0"
  - "delivery.reordered == 0"
  - "delivery.duplicates == 0"
  - "upload.up_1m.mbps > 2.5MB/s"
  - "upload.up_bad.failed == 0"
  - "upload.up_1m.completed >= 1"
"#;

fn valid() -> Plan {
    load_str("flows.yaml", VALID, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn metric(p: &Plan, name: &str) -> MetricId {
    let i = p.metrics.iter().position(|m| m == name);
    MetricId(i.unwrap_or_else(|| panic!("no metric {name} in {:?}", p.metrics)) as u16)
}

#[test]
fn delivery_lowers_with_its_metric() {
    let p = valid();
    let d = p.delivery.as_deref().expect("delivery");
    assert_eq!(d.seq, "/seq");
    assert_eq!(d.sent_at.as_deref(), Some("/timestamp"));
    assert_eq!(d.key, vec!["/type", "/data/room"]);
    assert_eq!(d.kinds, vec!["event", "message"]);
    assert_eq!(d.metric, Some(metric(&p, "fanout")));

    let one = VALID.replace(
        "key: [/type, /data/room], kinds: [event, message], metric: fanout",
        "key: /room",
    );
    let one = one.replace("latency.fanout", "latency.delivery");
    let p = load_str("f.yaml", &one, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let d = p.delivery.as_deref().unwrap();
    assert_eq!(
        (d.key.clone(), d.kinds.len()),
        (vec!["/room".to_string()], 0)
    );
    assert_eq!(
        d.metric,
        Some(metric(&p, "delivery")),
        "default metric name"
    );

    let untimed = VALID
        .replace(", sent_at: /timestamp", "")
        .replace(", metric: fanout", "")
        .replace("  - \"latency.fanout.p99 < 50ms\"\n", "");
    let p = load_str("f.yaml", &untimed, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let d = p.delivery.as_deref().unwrap();
    assert_eq!((d.sent_at.as_deref(), d.metric), (None, None));
    assert!(!p.metrics.iter().any(|m| m == "delivery"));
}

#[test]
fn behaviours_lower_their_connect_options() {
    let p = valid();
    let b = &p.behaviours[0];
    assert_eq!((b.query.len(), b.query[0].0.as_str()), (1, "role"));
    assert_eq!(
        (b.headers[0].0.as_str(), b.headers[0].1.as_literal()),
        ("X-Up", Some("1"))
    );
    assert!(p.behaviours[1].query.is_empty() && p.behaviours[1].headers.is_empty());
    let text = r#"name: t
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - connect: { timeout: 1s, query: { a: "{{nope}}" } }
    steps: [ { listen: 1s } ]
"#;
    assert_eq!(
        errors(text),
        vec![
            "bad.yaml:5:16: unknown key 'timeout'",
            "bad.yaml:5:44: undefined variable 'nope'",
        ]
    );
}

#[test]
fn uploads_lower_with_defaults_and_hash_detection() {
    let p = valid();
    let s = &p.behaviours[0].steps;
    let Step::Upload(u) = &s[0] else {
        panic!("{:?}", s[0])
    };
    assert_eq!((u.size, u.chunk_size, u.chunks()), (1 << 20, 64 << 10, 16));
    assert_eq!(u.in_flight, 4);
    assert_eq!(u.started.as_ref().unwrap().within, Duration::from_secs(2));
    assert_eq!(u.chunk_ack.as_ref().unwrap().within, Duration::from_secs(5));
    assert_eq!(u.complete.within, Duration::from_secs(10));
    assert!(u.finish.is_some() && u.id.is_some() && u.name.is_some());
    assert!(u.unchecked && u.needs_file_hash);
    assert_eq!((u.corrupt, u.expect_error.is_some()), (None, false));
    assert_eq!(u.metric, metric(&p, "up_1m"));
    assert!(matches!(u.start, Payload::Json(_)));

    let Step::Upload(bad) = &s[1] else { panic!() };
    assert_eq!((bad.chunks(), bad.corrupt), (4, Some(2)));
    assert!(!bad.needs_file_hash && !bad.unchecked);
    assert_eq!((bad.in_flight, bad.id.is_none()), (1, true));
    assert_eq!(bad.expect_error.as_ref().unwrap().matcher.fields.len(), 1);
    assert_eq!(bad.metric, metric(&p, "up_bad"));

    let default_metric = VALID.replace("          metric: up_bad\n", "");
    let default_metric = default_metric.replace("upload.up_bad.", "upload.upload.");
    let p = load_str("f.yaml", &default_metric, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let Step::Upload(u) = &p.behaviours[0].steps[1] else {
        panic!()
    };
    assert_eq!(u.metric, metric(&p, "upload"));
}

#[test]
fn pace_mix_and_burst_refusals_lower() {
    let p = valid();
    let s = &p.behaviours[1].steps;
    let Step::Pace(pace) = &s[0] else { panic!() };
    // The weight-0 entry is checked, then dropped.
    assert_eq!(pace.requests.len(), 2);
    let (a, b) = (&pace.requests[0], &pace.requests[1]);
    assert_eq!((a.weight, b.weight), (3.0, 1.0));
    assert_eq!(
        a.reply.kind.as_deref(),
        Some("rpc_response"),
        "pace-level default"
    );
    assert_eq!(b.reply.kind.as_deref(), Some("rpc_error"));
    assert_eq!(
        (a.metric, b.metric),
        (metric(&p, "rpc_a"), metric(&p, "rpc_unknown"))
    );
    assert_eq!(
        (pace.rate, pace.count, pace.in_flight),
        (Some(10.0), Some(20), 2)
    );

    let Step::Burst {
        count: 300,
        rejected: Some(r),
        ..
    } = &s[1]
    else {
        panic!("{:?}", s[1])
    };
    let RejectBy::Frame(m) = &r.by else { panic!() };
    assert_eq!(m.kind.as_deref(), Some("error"));
    assert_eq!(r.within, Duration::from_secs(2));
    assert_eq!(r.metric, Some(metric(&p, "first_reject")));
    let Step::Burst {
        rejected: Some(r), ..
    } = &s[2]
    else {
        panic!()
    };
    assert!(matches!(r.by, RejectBy::Close(Some(1009))));
    assert_eq!(r.within, Duration::from_secs(5));
    let Step::Burst {
        rejected: Some(r), ..
    } = &s[3]
    else {
        panic!()
    };
    assert!(matches!(r.by, RejectBy::Close(None)) && r.metric.is_none());
}

#[test]
fn flow_thresholds_parse() {
    let p = valid();
    let q: Vec<&Quantity> = p.thresholds.iter().map(|t| &t.lhs).collect();
    assert_eq!(q[0], &Quantity::Delivery(DeliveryStat::Gaps));
    assert_eq!(
        (q[1], p.thresholds[1].op),
        (&Quantity::Delivery(DeliveryStat::Completeness), Cmp::Ge)
    );
    assert!((p.thresholds[1].rhs - 0.999).abs() < 1e-12);
    let up = |m: &str, stat| Quantity::Upload {
        metric: m.into(),
        stat,
    };
    assert_eq!(q[3], &up("up_1m", UploadStat::Mbps));
    assert_eq!(p.thresholds[3].rhs, 10.0);
    assert_eq!(q[4], &up("up_bad", UploadStat::Rejected));
    assert_eq!(q[5], &Quantity::Delivery(DeliveryStat::Received));
    assert_eq!(q[6], &Quantity::Delivery(DeliveryStat::Reordered));
    assert_eq!(q[7], &Quantity::Delivery(DeliveryStat::Duplicates));
    assert_eq!(p.thresholds[8].rhs, 2.5);
    assert_eq!(q[9], &up("up_bad", UploadStat::Failed));
    assert_eq!(q[10], &up("up_1m", UploadStat::Completed));
}

/// Every diagnostic headline of an invalid file.
fn errors(text: &str) -> Vec<String> {
    match load_str("bad.yaml", text, &LoadOptions::default()) {
        Err(LoadError::Invalid(d)) => d.items.iter().map(|i| i.headline()).collect(),
        Err(e) => panic!("expected diagnostics, got {e}"),
        Ok(_) => panic!("loaded, but it is invalid"),
    }
}

const BAD_UPLOADS: &str = r#"name: bad
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - upload: { chunk_size: 1KiB, start: { t: s }, chunk: { t: c }, complete: { kind: done } }
      - upload: { size: 10, start: { t: "{{chunk.index}}" }, chunk: { t: c }, complete: { kind: done } }
      - send: { t: "{{upload.id}}" }
      - upload: { size: 10, chunk_size: 5, start: { t: s }, chunk: { t: c }, complete: { kind: done }, corrupt: 2, expect_error: { kind: e } }
      - upload: { size: 10, start: { t: s }, chunk: { t: c }, complete: { kind: done }, corrupt: 0 }
      - upload: { size: 10, start: { t: s }, chunk: { t: c }, complete: { kind: done }, in_flight: 2 }
      - upload: { size: 2GiB, start: { t: s }, chunk: { t: c }, complete: { kind: done } }
      - upload: { size: 1MiB, chunk_size: 1, start: { t: s }, chunk: { t: c }, complete: { kind: done } }
      - upload: { size: 10, start: { t: "{{upload.sha}}" }, chunk: { t: c }, complete: { kind: done } }
      - upload: { size: 10, chunk_sise: 5, start: { t: s }, chunk: { t: c }, complete: { kind: done } }
      - upload: { size: 10, start: { t: s }, complete: { kind: done } }
      - upload: { size: 10, start: { t: s }, chunk: { t: c }, complete: {} }
      - upload: { size: 10, start: { t: s }, chunk: { t: c } }
"#;

#[test]
fn invalid_uploads_point_at_the_place() {
    let p = "bad.yaml";
    assert_eq!(
        errors(BAD_UPLOADS),
        vec![
            format!("{p}:6:17: upload needs size:"),
            format!("{p}:7:44: 'chunk.index' is only defined in an upload step's chunk: and chunk_ack:"),
            format!("{p}:8:23: 'upload.id' is only defined inside an upload step"),
            format!("{p}:9:113: corrupt: 2 is past the last chunk (2 chunks, from 0)"),
            format!("{p}:10:98: corrupt: needs expect_error: (the reply the server sends for the bad chunk)"),
            format!("{p}:11:100: in_flight needs chunk_ack:"),
            format!("{p}:12:25: upload size is limited to 1GiB"),
            format!("{p}:13:43: 1048576 chunks is more than the 100000 an upload may have"),
            format!("{p}:14:51: unknown field 'sha' of upload (did you mean 'sha256'?)"),
            format!("{p}:15:29: unknown key 'chunk_sise' (did you mean 'chunk_size'?)"),
            format!("{p}:16:17: upload needs chunk:"),
            format!("{p}:17:73: complete needs at least one of kind, id or match"),
            format!("{p}:18:17: upload needs complete:"),
        ]
    );
}

const BAD_OTHERS: &str = r#"name: bad
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
delivery: { sent_at: timestamp, key: { room: /r } }
behaviours:
  - steps:
      - send_text: "a {{blob}}"
      - send_text: "{{blob 65MiB}}"
      - send_text: "{{ blob 5 parsecs }}"
      - send_text: "{{blob 5parsecs}}"
      - send_text: "{{now_us 1}}"
      - pace: { send: { id: 1 }, mix: [ { send: { id: 2 } } ], count: 1 }
      - pace: { mix: [ { weight: 0, send: { id: 2 } } ], count: 1 }
      - burst: { send: { id: 1 }, count: 1, rejected: { kind: error, close: 1008 } }
      - burst: { send: { id: 1 }, count: 1, rejected: { close: 999 } }
      - burst: { send: { id: 1 }, count: 1, rejected: { within: 1s } }
thresholds:
  - "upload.nope.mbps > 1"
  - "upload.x.speed > 1"
  - "upload.x.mbps > 1 GB/s"
"#;

#[test]
fn invalid_flows_point_at_the_place() {
    let p = "bad.yaml";
    assert_eq!(
        errors(BAD_OTHERS),
        vec![
            format!("{p}:4:11: delivery needs seq:"),
            format!("{p}:4:22: 'timestamp' is not a JSON pointer"),
            format!("{p}:4:38: key: is a JSON pointer or a list of them"),
            format!("{p}:7:25: blob needs a size"),
            format!("{p}:8:28: blob of 68157440 bytes is over the 64MiB limit"),
            format!("{p}:9:29: blob takes one size"),
            format!("{p}:10:28: unknown size unit 'parsecs' in '5parsecs'"),
            format!("{p}:11:30: 'now_us' takes no arguments"),
            format!("{p}:12:23: pace takes send:/send_text: or mix:, not both"),
            format!("{p}:13:22: mix weights sum to 0"),
            format!("{p}:14:77: rejected: takes a frame matcher or close:, not both"),
            format!("{p}:15:64: '999' is not a close code"),
            format!("{p}:16:55: rejected: needs kind, id, match or close"),
            format!("{p}:18:13: threshold on 'nope', which is not the metric of an upload step"),
            format!(
                "{p}:19:15: unknown upload figure 'speed': use mbps, completed, rejected or failed"
            ),
            format!("{p}:20:24: upload throughput is in MB/s (10 or 10MB/s), not 'GB/s'"),
        ]
    );
}

#[test]
fn a_delivery_metric_needs_a_send_time() {
    let text = r#"name: t
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
delivery: { seq: /seq, metric: lat }
behaviours: [ { steps: [ { listen: 1s } ] } ]
"#;
    assert_eq!(
        errors(text),
        vec!["bad.yaml:4:32: metric: needs sent_at: (the send time the latency counts from)"]
    );
}

#[test]
fn delivery_thresholds_need_a_delivery_block() {
    let text = r#"name: t
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours: [ { steps: [ { listen: 1s } ] } ]
thresholds:
  - "  delivery.gaps == 0"
"#;
    assert_eq!(
        errors(text),
        vec!["bad.yaml:6:8: threshold on delivery, but the scenario has no delivery: block"]
    );
}

#[test]
fn a_message_that_can_render_past_64mib_is_refused_where_it_stands() {
    let text = r#"name: t
target: ws://127.0.0.1:1/ws
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { a: "{{blob 64MiB}}", b: "{{blob 64MiB}}", c: "{{blob 64MiB}}", d: "{{blob 64MiB}}" }
      - send_text: "{{blob 40MiB}}{{blob 40MiB}}"
      - send: { ok: "{{blob 63MiB}}", pick: "{{pick a b}}", n: "{{seq}}" }
      - send_text: "{{blob 64MiB}}"
"#;
    let p = "bad.yaml";
    assert_eq!(
        errors(text),
        vec![
            format!(
                "{p}:6:15: this can render 268435485 bytes, over the 64MiB limit of one message"
            ),
            format!(
                "{p}:7:21: this can render 83886080 bytes, over the 64MiB limit of one message"
            ),
        ]
    );
}
