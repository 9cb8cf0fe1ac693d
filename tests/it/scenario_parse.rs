//! A valid scenario using every feature lowers to the expected plan, and its templates render.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use squall::scenario::plan::{Backoff, LoadModel, MetricId, Payload, Stage, Step, Think};
use squall::scenario::template::Fixed;
use squall::scenario::thresholds::{Cmp, Quantity, Stat};
use squall::scenario::{load_file, load_str, LoadOptions, Plan};

fn fake() -> Fixed {
    let mut f = Fixed::new(4, 9, 7);
    f.vars = HashMap::from([("cid".to_string(), json!({"n": 1, "q": "a\"b"}))]);
    f.sent = json!({"rid": 12, "room": "cases:NZ"});
    f
}

fn opts() -> LoadOptions {
    let mut o = LoadOptions::default();
    o.env.insert("KITE_TOKEN".into(), "tok\"en".into());
    o
}

fn full() -> Plan {
    load_file(Path::new("tests/scenarios/full.yaml"), &opts()).unwrap_or_else(|e| panic!("{e}"))
}

fn json_of(p: &Payload, ctx: &mut Fixed) -> Value {
    let Payload::Json(t) = p else {
        panic!("not JSON: {p:?}")
    };
    let mut out = String::new();
    t.render(ctx, &mut out);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"))
}

#[test]
fn top_level_settings() {
    let p = full();
    assert_eq!(p.name, "kite-full");
    assert_eq!(p.protocol.as_deref(), Some("kite"));
    assert_eq!(p.target, "ws://127.0.0.1:8080/ws");
    assert_eq!(p.seed, 42);
    assert_eq!(p.graceful_stop, Duration::from_secs(2));
    assert_eq!(p.kind_pointers, vec!["/type", "/payload/eventType"]);
    assert_eq!(p.id_pointer, "/rid");
    assert_eq!(
        p.vars,
        vec![
            ("room".to_string(), json!("scrape:all")),
            ("limit".to_string(), json!(3))
        ]
    );
    let text = std::fs::read_to_string("tests/scenarios/full.yaml").unwrap();
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(p.source_sha256, hex);
}

#[test]
fn connect_options_and_env() {
    let c = full().connect;
    let mut out = String::new();
    c.headers[0].1.render(&mut fake(), &mut out);
    assert_eq!(
        (c.headers[0].0.as_str(), out.as_str()),
        ("X-Client", "squall-4")
    );
    assert_eq!(c.query[0].0, "token");
    assert_eq!(c.query[0].1.as_literal(), Some("tok\"en"));
    assert_eq!(c.subprotocols, vec!["kite.v1"]);
    assert_eq!(c.timeout, Duration::from_secs(3));
    assert!(c.insecure);
    assert_eq!(c.max_message_size, 1 << 20);
}

#[test]
fn closed_load_stages() {
    let l = full().load;
    assert_eq!(l.model, LoadModel::Closed);
    let st = |ms: u64, t: f64| Stage {
        duration: Duration::from_millis(ms),
        target: t,
    };
    assert_eq!(
        l.stages,
        vec![
            st(10_000, 100.0),
            st(30_000, 100.0),
            st(0, 10.0),
            st(5_000, 10.0),
            st(5_000, 0.0)
        ]
    );
    assert_eq!(l.level_at(Duration::from_secs(5)), 50.0);
    assert_eq!(l.level_at(Duration::from_secs(41)), 10.0);
    assert_eq!(l.duration(), Duration::from_secs(50));
    assert_eq!(l.with_peak(50.0).peak(), 50.0);
    assert_eq!(
        l.with_duration(Duration::from_secs(60)).duration(),
        Duration::from_secs(60)
    );
}

#[test]
fn open_load_and_shorthand() {
    let p = load_file(
        Path::new("tests/scenarios/open.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(p.load.model, LoadModel::Open { max_vus: 500 });
    assert_eq!(p.load.stages[0].target, 100.0);
    assert_eq!(
        p.load.stages[1],
        Stage {
            duration: Duration::from_secs(30),
            target: 100.0
        }
    );
    // Defaults.
    assert_eq!(p.kind_pointers, vec!["/type"]);
    assert_eq!(p.id_pointer, "/id");
    assert_eq!(p.graceful_stop, Duration::from_secs(5));
    assert_eq!(p.connect.max_message_size, 16 << 20);
    assert_eq!(p.behaviours[0].name, "behaviour-1");

    // No target in the file: --target supplies it; --seed wins.
    let mut o = LoadOptions {
        target: Some("ws://10.0.0.1:9/x".into()),
        seed: Some(5),
        ..LoadOptions::default()
    };
    let p = load_file(Path::new("tests/scenarios/shorthand.yaml"), &o).unwrap();
    assert_eq!((p.target.as_str(), p.seed), ("ws://10.0.0.1:9/x", 5));
    assert_eq!(p.load.model, LoadModel::Open { max_vus: 100 });
    assert_eq!(p.load.peak(), 50.0);
    assert_eq!(p.load.duration(), Duration::from_secs(10));
    o.target = None;
    let e = load_file(Path::new("tests/scenarios/shorthand.yaml"), &o).unwrap_err();
    assert!(
        e.to_string().contains("missing required key 'target'"),
        "{e}"
    );
}

#[test]
fn seed_is_drawn_when_not_given() {
    let text = "name: s\ntarget: ws://h/\nload: { vus: 1, duration: 1s }\nbehaviours: [ { steps: [ { close: 1000 } ] } ]\n";
    let a = load_str("s.yaml", text, &LoadOptions::default()).unwrap();
    let b = load_str("s.yaml", text, &LoadOptions::default()).unwrap();
    assert_ne!(a.seed, b.seed, "two draws of a random u64 should differ");
}

#[test]
fn metrics_are_interned_and_thresholds_parsed() {
    let p = full();
    assert_eq!(p.metrics, vec!["subscribe_ack", "rtt"]);
    assert_eq!(p.thresholds.len(), 6);
    let t = &p.thresholds[0];
    assert_eq!(
        t.lhs,
        Quantity::Latency {
            metric: "subscribe_ack".into(),
            stat: Stat::Percentile(99.0)
        }
    );
    assert_eq!((t.op, t.rhs), (Cmp::Lt, 50_000.0));
    assert_eq!((t.pos.line, t.pos.col), (63, 6));
    assert_eq!(p.thresholds[1].rhs, 1_500_000.0);
    assert_eq!(p.thresholds[2].rhs, 0.001);
    assert_eq!(
        p.thresholds[3].lhs,
        Quantity::Connect(Stat::Percentile(95.0))
    );
    assert_eq!(p.thresholds[4].lhs, Quantity::ThroughputIn);
    assert_eq!(p.thresholds[5].lhs, Quantity::ErrorsCount);
}

#[test]
fn auto_replies() {
    let p = full();
    assert_eq!(p.replies.len(), 2);
    assert_eq!(p.replies[0].on.kind.as_deref(), Some("ping"));
    let v = json_of(&p.replies[0].reply, &mut fake());
    assert_eq!(v["type"], "pong");
    humantime::parse_rfc3339(v["at"].as_str().unwrap()).unwrap();
    assert_eq!(p.replies[1].on.fields[0].0, "/op");
    assert_eq!(p.replies[1].on.fields[0].1.as_literal(), Some("heartbeat"));
    assert!(matches!(&p.replies[1].reply, Payload::Text(t) if t.as_literal() == Some("hb")));
}

#[test]
fn every_step_kind_lowers() {
    let p = full();
    assert_eq!(p.behaviours.len(), 2);
    let storm = &p.behaviours[0];
    assert_eq!((storm.name.as_str(), storm.weight), ("storm", 3.0));
    let s = &storm.steps;
    assert_eq!(s.len(), 16);
    let Step::Expect(welcome) = &s[0] else {
        panic!("{:?}", s[0])
    };
    assert_eq!(welcome.matcher.kind.as_deref(), Some("welcome"));
    assert_eq!(welcome.within, Duration::from_secs(2));
    assert_eq!(
        welcome.capture,
        vec![("cid".to_string(), "/data/client_id".to_string())]
    );
    let Step::Repeat {
        count: Some(50),
        duration: None,
        steps,
    } = &s[1]
    else {
        panic!()
    };
    let Step::Expect(ack) = &steps[1] else {
        panic!()
    };
    assert_eq!(ack.metric, Some(MetricId(0)));
    assert_eq!(ack.within, Duration::from_secs(1));
    assert_eq!(ack.matcher.fields[0].0, "/data/room");
    let mut ctx = fake();
    let mut out = String::new();
    ack.matcher.id.as_ref().unwrap().render(&mut ctx, &mut out);
    ack.matcher.fields[0].1.render(&mut ctx, &mut out);
    assert_eq!(out, "12cases:NZ");
    assert!(matches!(s[2], Step::Listen { duration } if duration == Duration::from_secs(10)));
    assert!(matches!(s[3], Step::Listen { duration } if duration == Duration::from_secs(1)));
    assert!(matches!(s[4], Step::Think(Think::Fixed(d)) if d == Duration::from_secs(1)));
    assert!(
        matches!(s[5], Step::Think(Think::Range(a, b)) if a == Duration::from_secs(1) && b == Duration::from_secs(3))
    );
    assert!(
        matches!(s[6], Step::Think(Think::Range(a, b)) if a == Duration::from_millis(100) && b == Duration::from_millis(200))
    );
    let Step::Choose { branches } = &s[7] else {
        panic!()
    };
    assert_eq!(
        branches.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![3.0, 1.0]
    );
    let Step::Pace(pace) = &s[8] else { panic!() };
    assert_eq!(pace.rate, Some(100.0));
    assert_eq!(
        (pace.count, pace.duration),
        (Some(1000), Some(Duration::from_secs(10)))
    );
    assert_eq!((pace.in_flight, pace.within), (16, Duration::from_secs(5)));
    assert_eq!(pace.requests.len(), 1);
    assert_eq!(pace.requests[0].reply.kind.as_deref(), Some("pong"));
    assert_eq!(pace.requests[0].metric, MetricId(1));
    assert!(!pace.unchecked);
    let Step::Burst {
        count: 200,
        rate: Some(r),
        unchecked: true,
        ..
    } = &s[9]
    else {
        panic!("{:?}", s[9])
    };
    assert_eq!(*r, 500.0);
    assert!(
        matches!(&s[10], Step::Send { payload: Payload::Binary(b), unchecked: true } if b == &[0, 1, 2])
    );
    assert!(
        matches!(&s[11], Step::Send { payload: Payload::Binary(b), unchecked: false } if b.len() == 65536)
    );
    assert!(
        matches!(s[12], Step::ExpectClose { code: Some(1008), within } if within == Duration::from_secs(2))
    );
    let default_backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        factor: 2.0,
        jitter: 0.2,
        max_tries: 5,
    };
    assert!(matches!(s[13], Step::Reconnect(b) if b == default_backoff));
    assert!(matches!(s[14], Step::Reconnect(b) if b == default_backoff));
    assert!(matches!(s[15], Step::Close { code: 1000 }));

    let other = &p.behaviours[1];
    assert_eq!((other.name.as_str(), other.weight), ("behaviour-2", 1.0));
    let Step::Repeat {
        count: None,
        duration: Some(d),
        steps,
    } = &other.steps[0]
    else {
        panic!()
    };
    assert_eq!(*d, Duration::from_secs(10));
    let Step::Pace(p2) = &steps[0] else { panic!() };
    assert_eq!(
        (p2.count, p2.in_flight, p2.requests[0].metric, p2.rate),
        (Some(5), 1, MetricId(1), None)
    );
    assert!(matches!(other.steps[1], Step::Close { code: 4000 }));
    assert!(matches!(other.steps[2], Step::Close { code: 1000 }));
}

#[test]
fn templates_render_typed_and_escaped() {
    let p = full();
    let Step::Repeat { steps, .. } = &p.behaviours[0].steps[1] else {
        panic!()
    };
    let Step::Send { payload, .. } = &steps[0] else {
        panic!()
    };
    let mut ctx = fake();
    let first = json_of(payload, &mut ctx);
    let second = json_of(payload, &mut ctx);
    // `{{seq}}` alone is a number and counts up per render.
    assert_eq!(first["rid"], json!(1));
    assert_eq!(second["rid"], json!(2));
    // A captured value renders as its JSON.
    assert_eq!(first["who"], json!({"n": 1, "q": "a\"b"}));
    let n = first["n"].as_i64().unwrap();
    assert!((1..=6).contains(&n));
    let room = first["room"].as_str().unwrap();
    assert!(
        ["cases:AU", "cases:NZ", "cases:UK"].contains(&room),
        "{room}"
    );

    // Interpolated text: vu, iter, pick a b, a var; quotes are escaped in JSON strings.
    let Step::Choose { branches } = &p.behaviours[0].steps[7] else {
        panic!()
    };
    let Step::Send {
        payload: Payload::Text(t),
        ..
    } = &branches[1].1[0]
    else {
        panic!()
    };
    let mut out = String::new();
    let mut ctx = fake();
    ctx.vars.insert("room".into(), json!("scrape:all"));
    t.render(&mut ctx, &mut out);
    assert!(
        out == "not json 4/9 a scrape:all" || out == "not json 4/9 b scrape:all",
        "{out}"
    );
    let Step::Send { payload, .. } = &branches[0].1[0] else {
        panic!()
    };
    let v = json_of(payload, &mut fake());
    let id = uuid::Uuid::parse_str(v["rid"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
}

#[test]
fn interpolated_quotes_are_escaped_and_literals_preserialized() {
    let text = r#"
name: esc
target: ws://h/
vars: { who: "x" }
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: hello, capture: { q: /q } }
      - send: { msg: "say \"{{q}}\" to {{who}}", n: 5, list: [1, "two", null], fixed: "a\"b" }
"#;
    let p = load_str("esc.yaml", text, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let Step::Send {
        payload: Payload::Json(t),
        ..
    } = &p.behaviours[0].steps[1]
    else {
        panic!()
    };
    let mut ctx = fake();
    ctx.vars.insert("q".into(), json!("he said \"hi\"\n"));
    ctx.vars.insert("who".into(), json!("x"));
    let mut out = String::new();
    t.render(&mut ctx, &mut out);
    assert_eq!(
        out,
        r#"{"msg":"say \"he said \"hi\"\n\" to x","n":5,"list":[1,"two",null],"fixed":"a\"b"}"#
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["msg"], "say \"he said \"hi\"\n\" to x");
    assert_eq!(v["fixed"], "a\"b");
}

#[test]
fn a_mix_whose_entries_name_their_metrics_has_no_rtt_metric() {
    let text = r#"
name: mix
target: ws://h/
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - pace:
          rate: 5/s
          duration: 1s
          mix:
            - { weight: 1, send: { type: a, id: "{{seq}}" }, reply: { kind: a }, metric: a_rtt }
            - { weight: 1, send: { type: b, id: "{{seq}}" }, reply: { kind: b } }
"#;
    let p = load_str("m.yaml", text, &LoadOptions::default()).unwrap();
    assert_eq!(
        p.metrics,
        vec!["a_rtt", "rtt"],
        "an entry without a metric records rtt"
    );
    let named = text.replace(
        "reply: { kind: b } }",
        "reply: { kind: b }, metric: b_rtt }",
    );
    let p = load_str("m.yaml", &named, &LoadOptions::default()).unwrap();
    assert_eq!(p.metrics, vec!["a_rtt", "b_rtt"], "no phantom rtt");
}
