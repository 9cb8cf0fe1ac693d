//! results.json from a real aggregate validates against the committed JSON Schema,
//! round-trips through serde, and is written atomically.

use std::time::Duration;

use squall::metrics::{Aggregate, FailCause, Recorder, Seen, UploadEvent};
use squall::report::{Results, ResultsWriter, RunMeta, Status};
use squall::scenario::plan::MetricId;

fn meta() -> RunMeta {
    RunMeta {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        scenario_name: "kite-smoke".into(),
        scenario_file: "scenarios/kite/smoke.yaml".into(),
        scenario_sha256: "ab".repeat(32),
        protocol: Some("kite".into()),
        conformance: None,
        target: "ws://127.0.0.1:9/ws".into(),
        seed: 42,
        threads: 2,
        started_at: "2026-11-22T02:30:00Z".into(),
        ended_at: Some("2026-11-22T02:30:02Z".into()),
        duration_s: 2.0,
        planned_duration_s: 2.0,
        load_model: "closed".into(),
        host: "test".into(),
        phases: vec![],
    }
}

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/results.schema.json");
    let text = std::fs::read_to_string(path).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

/// A run of two workers over two ticks, touching every counter.
fn run() -> Results {
    let names = vec!["ack".to_string(), "rpc".to_string()];
    let mut agg = Aggregate::new(names.clone());
    agg.track_delivery(Some("ack".into()));
    let mut a = Recorder::with_worker(0, &names);
    let mut b = Recorder::with_worker(1, &names);
    for r in [&mut a, &mut b] {
        r.vu_started();
        r.connect_ok(1_800);
        r.frame_out(Some("subscribe"), 40);
        r.frame_in(Some("welcome"), 120);
        r.frame_in(None, 8);
        r.op();
        r.latency(MetricId(0), 2_500, 2_000);
        r.lag(150);
    }
    a.connect_failed(FailCause::Http(429));
    a.timeout(Some(MetricId(1)), 1_000_000);
    a.missed(3);
    for seen in [
        Seen::First,
        Seen::Skipped(2),
        Seen::Late,
        Seen::Duplicate,
        Seen::Untracked,
    ] {
        a.delivered(seen);
    }
    b.upload(MetricId(1), UploadEvent::Started);
    b.upload(
        MetricId(1),
        UploadEvent::Completed {
            bytes: 4_000_000,
            us: 2_000_000,
        },
    );
    b.iteration(true);
    b.closed(Some(1000));
    agg.add(a.take());
    agg.add(b.take());
    agg.tick(Duration::from_secs(1), Some(0.4));
    a.closed(None);
    a.iteration(false);
    agg.add(a.take());
    agg.tick(Duration::from_secs(2), None);
    agg.note_arrival_rate(5.0);
    agg.results(meta(), Status::Complete)
}

#[test]
fn results_validate_against_the_schema_and_round_trip() {
    let r = run();
    let json = serde_json::to_value(&r).unwrap();
    let v = schema();
    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json["status"], "complete");
    assert_eq!(json["counters"]["connections"]["closed_by_code"]["none"], 1);
    assert_eq!(json["counters"]["errors_by_kind"]["http_429"], 1);
    assert_eq!(json["series"].as_array().unwrap().len(), 2);
    let d = &json["delivery"];
    assert_eq!(
        (&d["received"], &d["gaps"], &d["duplicates"]),
        (&3.into(), &1.into(), &1.into())
    );
    assert_eq!(d["completeness"], 0.75);
    assert_eq!(json["uploads"]["rpc"]["mbps"], 2.0);
    assert!(
        json["uploads"].get("ack").is_none(),
        "metrics without uploads are left out"
    );

    let back: Results = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_running_file_with_no_samples_is_valid_too() {
    let agg = Aggregate::new(vec!["ack".into()]);
    let mut m = meta();
    m.ended_at = None;
    m.duration_s = 0.0;
    let json = serde_json::to_value(agg.results(m, Status::Running)).unwrap();
    assert!(schema().is_valid(&json));
    assert_eq!(json["metrics"]["ack"]["latency"]["count"], 0);
    assert!(json["health"]["cpu_mean"].is_null());
    assert!(json["delivery"].is_null() && json["uploads"] == serde_json::json!({}));
}

#[test]
fn broken_documents_are_invalid() {
    let v = schema();
    let good = serde_json::to_value(run()).unwrap();
    let mut bad_status = good.clone();
    bad_status["status"] = "finished".into();
    let mut negative = good.clone();
    negative["counters"]["frames_in"] = (-1).into();
    let mut extra = good.clone();
    extra["meta"]["colour"] = "blue".into();
    let mut over = good.clone();
    over["delivery"]["completeness"] = 1.5.into();
    let mut missing = good.clone();
    missing["health"]
        .as_object_mut()
        .unwrap()
        .remove("lag_p99_us");
    for (what, doc) in [
        ("status", bad_status),
        ("negative count", negative),
        ("unknown field", extra),
        ("missing field", missing),
        ("completeness over 1", over),
        ("not an object", serde_json::json!([1, 2])),
    ] {
        assert!(!v.is_valid(&doc), "{what} should be invalid");
    }
}

#[test]
fn writer_replaces_results_atomically() {
    let dir = std::env::temp_dir().join(format!("squall-results-{}", std::process::id()));
    let w = ResultsWriter::create(&dir.join("run")).unwrap();
    let mut r = run();
    r.status = Status::Running;
    w.write(&r).unwrap();
    r.status = Status::Interrupted;
    r.status_reason = Some("interrupted by Ctrl-C".into());
    w.write(&r).unwrap();
    let text = std::fs::read_to_string(w.path()).unwrap();
    let back: Results = serde_json::from_str(&text).unwrap();
    assert_eq!(back.status, Status::Interrupted);
    let names: Vec<_> = std::fs::read_dir(dir.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["results.json"], "no temporary file left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shard_and_merge_fields_are_described_by_the_schema() {
    let v = schema();
    let mut r = run();
    r.interval_log = Some("histograms.hlog".into());
    r.shard = Some(squall::report::ShardInfo {
        index: 2,
        count: 4,
        start_at: Some("2026-11-22T02:30:00.000Z".into()),
    });
    r.shards = vec![squall::report::ShardRecord {
        index: 1,
        file: "shard-1/results.json".into(),
        host: "gen-1".into(),
        status: Status::Aborted,
        status_reason: Some("target unreachable".into()),
        started_at: "2026-11-22T02:30:00.000Z".into(),
        health: r.health.clone(),
    }];
    let good = serde_json::to_value(&r).unwrap();
    let errors: Vec<String> = v.iter_errors(&good).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let back: Results = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(back, r);
    // A single run's file has none of them.
    let plain = serde_json::to_value(run()).unwrap();
    for k in ["interval_log", "shard", "shards"] {
        assert!(plain.get(k).is_none(), "{k}");
    }
    let mut zero = good.clone();
    zero["shard"]["index"] = 0.into();
    let mut path = good.clone();
    path["interval_log"] = "../elsewhere.hlog".into();
    let mut no_health = good.clone();
    no_health["shards"][0]
        .as_object_mut()
        .unwrap()
        .remove("health");
    for (what, doc) in [
        ("shard 0", zero),
        ("a log outside the folder", path),
        ("a shard without its health", no_health),
    ] {
        assert!(!v.is_valid(&doc), "{what} should be invalid");
    }
}
