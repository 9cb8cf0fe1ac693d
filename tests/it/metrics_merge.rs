//! Exact merging: what several worker recorders measure adds up to what one would have.

use std::time::Duration;

use squall::metrics::{new_histogram, Aggregate, ErrorKind, FailCause, Recorder, MAX_KINDS};
use squall::report::{RunMeta, Status, Summary};
use squall::scenario::plan::MetricId;

fn meta() -> RunMeta {
    RunMeta {
        tool_version: "0".into(),
        scenario_name: "merge".into(),
        scenario_file: "merge.yaml".into(),
        scenario_sha256: String::new(),
        protocol: None,
        conformance: None,
        target: "ws://127.0.0.1:9/".into(),
        seed: 1,
        threads: 2,
        started_at: "2026-11-22T00:00:00Z".into(),
        ended_at: None,
        duration_s: 1.0,
        planned_duration_s: 1.0,
        load_model: "closed".into(),
        host: "test".into(),
        phases: vec![],
    }
}

/// A spread of latencies with a long tail, deterministic.
fn samples() -> Vec<u64> {
    (0..20_000u64)
        .map(|i| 100 + (i * 7919) % 5_000 + if i % 97 == 0 { 250_000 + i } else { 0 })
        .collect()
}

#[test]
fn two_recorders_merge_to_what_one_recorder_sees() {
    let names = vec!["ack".to_string()];
    let (mut one, mut a, mut b) = (
        Recorder::with_worker(0, &names),
        Recorder::with_worker(1, &names),
        Recorder::with_worker(2, &names),
    );
    for (i, us) in samples().into_iter().enumerate() {
        one.latency(MetricId(0), us, us / 2);
        let half = if i % 3 == 0 { &mut a } else { &mut b };
        half.latency(MetricId(0), us, us / 2);
    }
    let mut single = Aggregate::new(names.clone());
    single.add(one.take());
    let mut merged = Aggregate::new(names.clone());
    merged.add(a.take());
    merged.tick(Duration::from_secs(1), None);
    merged.add(b.take());
    merged.tick(Duration::from_secs(2), None);

    let s = single.results(meta(), Status::Complete).metrics["ack"].clone();
    let m = merged.results(meta(), Status::Complete).metrics["ack"].clone();
    assert_eq!(m.latency.count, 20_000);
    assert_eq!(
        (m.latency.count, m.latency.p99, m.latency.max),
        (s.latency.count, s.latency.p99, s.latency.max)
    );
    assert_eq!(m, s, "summaries and encoded histograms are identical");
    assert_eq!(merged.p99_us(), Some(m.latency.p99));

    let decoded = m.latency.histogram().unwrap();
    assert_eq!(decoded.len(), m.latency.count);
    assert_eq!(decoded.value_at_quantile(0.99), m.latency.p99);
    assert_eq!(Summary::from_histogram(&decoded), m.latency);
}

#[test]
fn summaries_merge_exactly_through_their_histograms() {
    let (mut h1, mut h2, mut all) = (new_histogram(), new_histogram(), new_histogram());
    for (i, us) in samples().into_iter().enumerate() {
        let h = if i % 2 == 0 { &mut h1 } else { &mut h2 };
        h.saturating_record(us);
        all.saturating_record(us);
    }
    let merged = squall::report::merge_summaries(
        &Summary::from_histogram(&h1),
        &Summary::from_histogram(&h2),
    )
    .unwrap();
    assert_eq!(merged, Summary::from_histogram(&all));
}

#[test]
fn values_beyond_an_hour_saturate_instead_of_vanishing() {
    let names = vec!["slow".to_string()];
    let mut r = Recorder::new(&names);
    r.latency(MetricId(0), 10 * 3_600_000_000, 5);
    let mut agg = Aggregate::new(names);
    agg.add(r.take());
    let s = &agg.results(meta(), Status::Complete).metrics["slow"].latency;
    assert_eq!(s.count, 1);
    assert!(s.max >= 3_599_000_000, "{}", s.max);
}

#[test]
fn gauges_sum_across_workers_and_replace_within_one() {
    let names: Vec<String> = vec![];
    let mut agg = Aggregate::new(names.clone());
    let mut w0 = Recorder::with_worker(0, &names);
    let mut w1 = Recorder::with_worker(1, &names);
    for _ in 0..3 {
        w0.connect_ok(100);
        w0.vu_started();
    }
    w1.connect_ok(100);
    w1.vu_started();
    agg.add(w0.take());
    agg.add(w1.take());
    assert_eq!((agg.active_connections(), agg.active_vus()), (4, 4));
    // A later snapshot of worker 0 replaces its gauges instead of adding to them.
    w0.closed(Some(1000));
    w0.vu_stopped();
    agg.add(w0.take());
    assert_eq!((agg.active_connections(), agg.active_vus()), (3, 3));
    agg.add(w0.take());
    assert_eq!(agg.active_connections(), 3);
    let p = agg.tick(Duration::from_secs(1), None).clone();
    assert_eq!((p.active_connections, p.active_vus), (3, 3));
    let r = agg.results(meta(), Status::Complete);
    assert_eq!((r.load.peak_connections, r.load.peak_vus), (4, 4));
    assert_eq!(r.counters.connections.opened, 4);
    assert_eq!(r.connect.count, 4);
}

#[test]
fn recorders_from_new_get_distinct_workers() {
    let names: Vec<String> = vec![];
    let (mut a, mut b) = (Recorder::new(&names), Recorder::new(&names));
    assert_ne!(a.worker(), b.worker());
    a.vu_started();
    b.vu_started();
    let mut agg = Aggregate::new(names);
    agg.add(a.take());
    agg.add(b.take());
    assert_eq!(agg.active_vus(), 2);
}

#[test]
fn counters_add_up_and_the_series_shows_each_interval() {
    let names = vec!["ack".to_string()];
    let mut agg = Aggregate::new(names.clone());
    let mut r = Recorder::with_worker(0, &names);
    for _ in 0..10 {
        r.frame_in(Some("event"), 100);
    }
    r.frame_out(Some("ping"), 4);
    r.error(ErrorKind::Protocol);
    r.connect_failed(FailCause::Refused);
    r.connect_failed(FailCause::Timeout);
    r.latency(MetricId(0), 900, 800);
    agg.add(r.take());
    let p = agg.tick(Duration::from_millis(500), Some(1.0)).clone();
    assert_eq!((p.msgs_in, p.bytes_in, p.msgs_out), (20.0, 2_000.0, 2.0));
    assert_eq!(p.errors, 3);
    assert!(p.p50_us.is_some_and(|v| (899..=901).contains(&v)));
    let q = agg.tick(Duration::from_millis(1_500), None).clone();
    assert_eq!((q.msgs_in, q.errors, q.p99_us), (0.0, 0, None));
    assert_eq!(
        (agg.frames_in(), agg.frames_out(), agg.errors()),
        (10, 1, 3)
    );

    let c = agg.results(meta(), Status::Complete).counters;
    assert_eq!(c.errors_by_kind["protocol"], 1);
    assert_eq!(c.errors_by_kind["connect_refused"], 1);
    assert_eq!(c.errors_by_kind["connect_timeout"], 1);
    assert_eq!(c.connections.failed_by_cause["timeout"], 1);
    assert_eq!((c.connections.failed, c.ops), (2, 2));
    assert_eq!(c.kinds_in["event"].bytes, 1_000);
}

#[test]
fn kinds_are_capped_per_recorder() {
    let names: Vec<String> = vec![];
    let mut r = Recorder::with_worker(0, &names);
    for i in 0..MAX_KINDS + 44 {
        r.frame_in(Some(&format!("kind-{i}")), 1);
    }
    r.frame_in(None, 1);
    let mut agg = Aggregate::new(names);
    agg.add(r.take());
    let c = agg.results(meta(), Status::Complete).counters;
    assert_eq!(c.kinds_in.len(), MAX_KINDS + 2);
    assert_eq!(c.kinds_in["(other)"].frames, 44);
    assert_eq!(c.kinds_in["(none)"].frames, 1);
    assert_eq!(c.frames_in, MAX_KINDS as u64 + 45);
}

#[test]
fn timeouts_are_errors_recorded_at_the_deadline() {
    let names = vec!["ack".to_string()];
    let mut r = Recorder::with_worker(0, &names);
    r.op();
    r.timeout(Some(MetricId(0)), 2_000_000);
    let mut agg = Aggregate::new(names);
    agg.add(r.take());
    let res = agg.results(meta(), Status::Complete);
    let m = &res.metrics["ack"];
    assert_eq!((m.latency.count, m.service.count), (1, 1));
    assert!(
        m.latency.max.abs_diff(2_000_000) <= 2_000,
        "{}",
        m.latency.max
    );
    assert_eq!(res.counters.errors_by_kind["timeout"], 1);
    assert_eq!((res.counters.errors, res.counters.ops), (1, 1));
}

#[test]
fn saturation_from_lag_shows_in_health() {
    let names: Vec<String> = vec![];
    let mut agg = Aggregate::new(names.clone());
    agg.set_cores(2.0);
    let mut r = Recorder::with_worker(0, &names);
    for _ in 0..100 {
        r.lag(25_000);
    }
    agg.add(r.take());
    agg.tick(Duration::from_secs(1), Some(0.5));
    let warnings = agg.drain_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(agg.drain_warnings().is_empty());
    let h = agg.results(meta(), Status::Complete).health;
    assert!(h.generator_saturated);
    assert_eq!(h.cpu_mean, Some(0.5));
    assert!(h.lag_p99_us >= 24_000);
    assert_eq!(h.warnings, warnings);
}

#[test]
fn busy_cpu_for_three_seconds_saturates() {
    let mut agg = Aggregate::new(vec![]);
    agg.set_cores(2.0);
    for t in 1..=2 {
        agg.tick(Duration::from_secs(t), Some(1.95));
    }
    assert!(
        !agg.results(meta(), Status::Running)
            .health
            .generator_saturated
    );
    agg.tick(Duration::from_secs(3), Some(1.85));
    let h = agg.results(meta(), Status::Complete).health;
    assert!(h.generator_saturated);
    assert_eq!(h.cpu_peak, Some(1.95));
    assert_eq!(h.warnings.len(), 1);
}

#[test]
fn an_empty_summary_decodes_and_merges() {
    let empty = Summary::empty();
    assert_eq!((empty.count, empty.p99, empty.max), (0, 0, 0));
    assert!(empty.histogram().unwrap().is_empty());
    let mut h = new_histogram();
    h.saturating_record(1_234);
    let one = Summary::from_histogram(&h);
    assert_eq!(empty.merge(&one).unwrap(), one);
    let broken = Summary {
        histogram: "not base64!".into(),
        ..one
    };
    assert!(broken.histogram().is_err());
}

#[test]
fn kinds_stay_capped_when_workers_saw_different_ones() {
    let names: Vec<String> = vec![];
    let mut agg = Aggregate::new(names.clone());
    for w in 0..4 {
        let mut r = Recorder::with_worker(w, &names);
        for i in 0..MAX_KINDS {
            r.frame_in(Some(&format!("w{w}-kind-{i}")), 1);
        }
        agg.add(r.take());
    }
    let mut late = Recorder::with_worker(9, &names);
    late.frame_in(None, 1);
    agg.add(late.take());
    let c = agg.results(meta(), Status::Complete).counters;
    assert!(c.kinds_in.len() <= MAX_KINDS + 2, "{}", c.kinds_in.len());
    let total: u64 = c.kinds_in.values().map(|k| k.frames).sum();
    assert_eq!(total, 4 * MAX_KINDS as u64 + 1, "folded, not lost");
    assert_eq!(c.kinds_in["(other)"].frames, 3 * MAX_KINDS as u64);
    assert_eq!(
        c.kinds_in["(none)"].frames, 1,
        "kindless frames keep their bucket"
    );
}

#[test]
fn a_second_waits_for_every_worker_and_counts_events_where_they_happened() {
    let names: Vec<String> = vec![];
    let mut agg = Aggregate::new(names.clone());
    agg.expect_workers([0, 1]);
    let (mut a, mut b) = (
        Recorder::with_worker(0, &names),
        Recorder::with_worker(1, &names),
    );
    for _ in 0..250 {
        a.frame_out(None, 1);
        b.frame_out(None, 1);
    }
    agg.add(a.roll(1));
    for _ in 0..250 {
        a.frame_out(None, 1);
    }
    // Worker 0 is a second ahead; worker 1's first second arrives late, as happens when
    // its tick and the aggregator's race on the same boundary.
    agg.add(a.roll(2));
    assert_eq!(agg.seal_ready(), 0, "second 0 waits for worker 1");
    agg.add(b.roll(1));
    assert_eq!(agg.seal_ready(), 1);
    assert_eq!(agg.series()[0].frames_out, 500);
    for _ in 0..250 {
        b.frame_out(None, 1);
    }
    agg.add(b.roll(2));
    assert_eq!(agg.seal_ready(), 1);
    b.frame_out(None, 1);
    // The run ends 0.4 s into second 2; worker 1 sent one more frame in it.
    agg.add(a.last());
    agg.add(b.last());
    assert_eq!(agg.seal_ready(), 0, "the last second is finish's");
    agg.finish(Duration::from_millis(2_400));
    let s = agg.series();
    let counts: Vec<u64> = s.iter().map(|p| p.frames_out).collect();
    assert_eq!(counts, [500, 500, 1]);
    assert_eq!(
        s.iter().map(|p| p.frames_out).sum::<u64>(),
        agg.frames_out()
    );
    let spans: Vec<f64> = s.iter().map(|p| p.span_s).collect();
    assert_eq!(spans, [1.0, 1.0, 0.4]);
    assert_eq!((s[1].msgs_out, s[2].t), (500.0, 2.4));
    assert!((s[2].msgs_out - 2.5).abs() < 1e-9, "1 frame in 0.4 s");
}
