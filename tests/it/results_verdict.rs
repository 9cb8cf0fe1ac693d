//! Thresholds evaluated against results, and the terminal summary that shows them.

use std::time::Duration;

use squall::check::verdict::{evaluate, note_idle_behaviours};
use squall::metrics::{Aggregate, ErrorKind, FailCause, Recorder};
use squall::report::{render_summary, Results, RunMeta, Status};
use squall::scenario::plan::{MetricId, Pos};
use squall::scenario::thresholds::{Cmp, Quantity, Stat, Threshold};

fn meta() -> RunMeta {
    RunMeta {
        tool_version: "0.1.0".into(),
        scenario_name: "verdict".into(),
        scenario_file: "verdict.yaml".into(),
        scenario_sha256: String::new(),
        protocol: None,
        conformance: None,
        target: "ws://127.0.0.1:9/ws".into(),
        seed: 7,
        threads: 1,
        started_at: "2026-11-22T00:00:00Z".into(),
        ended_at: Some("2026-11-22T00:00:02Z".into()),
        duration_s: 2.0,
        planned_duration_s: 2.0,
        load_model: "closed".into(),
        host: "test".into(),
        phases: vec![],
    }
}

/// 100 `ack` replies of 1..=100 ms (service time half that), nothing for `idle`;
/// 4 connections (one refused), 200 ops, 3 errors, 10 frames in, 4 out, 5 missed.
fn results() -> Results {
    let names = vec!["ack".to_string(), "idle".to_string()];
    let mut r = Recorder::with_worker(0, &names);
    for ms in 1..=100u64 {
        r.latency(MetricId(0), ms * 1_000, ms * 500);
    }
    for _ in 0..3 {
        r.connect_ok(2_000);
    }
    r.connect_failed(FailCause::Refused);
    for _ in 0..196 {
        r.op();
    }
    r.error(ErrorKind::Protocol);
    r.timeout(None, 1_000_000);
    for _ in 0..10 {
        r.frame_in(Some("event"), 50);
    }
    for _ in 0..4 {
        r.frame_out(Some("ping"), 5);
    }
    r.missed(5);
    r.iteration(true);
    r.iteration(true);
    r.iteration(false);
    r.closed(Some(1000));
    let mut agg = Aggregate::new(names);
    agg.add(r.take());
    agg.tick(Duration::from_secs(2), Some(0.3));
    agg.results(meta(), Status::Complete)
}

fn th(lhs: Quantity, op: Cmp, rhs: f64) -> Threshold {
    Threshold {
        source: format!("{lhs:?} {op:?} {rhs}"),
        pos: Pos::default(),
        lhs,
        op,
        rhs,
    }
}

fn lat(metric: &str, stat: Stat) -> Quantity {
    Quantity::Latency {
        metric: metric.into(),
        stat,
    }
}

/// (threshold, expected pass, expected actual)
fn cases() -> Vec<(Threshold, bool, Option<f64>)> {
    use Cmp::*;
    use Quantity::*;
    let ms = 1_000.0;
    let near = |v: f64| Some(v);
    vec![
        (
            th(lat("ack", Stat::Percentile(99.0)), Lt, 150.0 * ms),
            true,
            near(99.0 * ms),
        ),
        (
            th(lat("ack", Stat::Percentile(99.0)), Lt, 50.0 * ms),
            false,
            near(99.0 * ms),
        ),
        (
            th(lat("ack", Stat::Percentile(50.0)), Le, 51.0 * ms),
            true,
            near(50.0 * ms),
        ),
        (
            th(lat("ack", Stat::Percentile(75.0)), Gt, 70.0 * ms),
            true,
            near(75.0 * ms),
        ),
        (
            th(lat("ack", Stat::Min), Ge, 1.0 * ms),
            true,
            near(1.0 * ms),
        ),
        (
            th(lat("ack", Stat::Max), Lt, 100.0 * ms),
            false,
            near(100.0 * ms),
        ),
        (
            th(lat("ack", Stat::Mean), Gt, 50.0 * ms),
            true,
            near(50.5 * ms),
        ),
        (
            th(
                Service {
                    metric: "ack".into(),
                    stat: Stat::Max,
                },
                Le,
                51.0 * ms,
            ),
            true,
            near(50.0 * ms),
        ),
        (
            th(Connect(Stat::Percentile(99.9)), Lt, 5.0 * ms),
            true,
            near(2.0 * ms),
        ),
        (th(ErrorsCount, Eq, 3.0), true, Some(3.0)),
        (th(ErrorsCount, Ne, 3.0), false, Some(3.0)),
        (th(ErrorsRate, Lt, 0.001), false, Some(3.0 / 200.0)),
        (th(ErrorsRate, Le, 0.015), true, Some(3.0 / 200.0)),
        (th(ErrorsOfKind("timeout".into()), Eq, 1.0), true, Some(1.0)),
        (
            th(ErrorsOfKind("connect_refused".into()), Ge, 1.0),
            true,
            Some(1.0),
        ),
        (
            th(ErrorsOfKind("http_429".into()), Eq, 0.0),
            true,
            Some(0.0),
        ),
        (th(ConnectionsFailed, Eq, 0.0), false, Some(1.0)),
        (th(ConnectionsOpened, Ge, 3.0), true, Some(3.0)),
        (th(ThroughputIn, Ge, 5.0), true, Some(5.0)),
        (th(ThroughputOut, Gt, 2.0), false, Some(2.0)),
        (th(Iterations, Eq, 3.0), true, Some(3.0)),
        (th(Missed, Ne, 0.0), true, Some(5.0)),
    ]
}

#[test]
fn every_quantity_and_comparison() {
    let r = results();
    let (ths, expected): (Vec<_>, Vec<_>) =
        cases().into_iter().map(|(t, p, a)| (t, (p, a))).unzip();
    let out = evaluate(&ths, &r);
    assert_eq!(out.len(), ths.len());
    for (o, (pass, actual)) in out.iter().zip(expected) {
        assert_eq!(o.pass, pass, "{}: {}", o.expr, o.message);
        let (got, want) = (o.actual.unwrap(), actual.unwrap());
        // Histogram values are exact to 3 significant digits.
        assert!(
            (got - want).abs() <= want.abs() * 0.002,
            "{}: {got} vs {want}",
            o.expr
        );
    }
    assert_eq!(out[0].unit, "us");
    assert_eq!(out[11].unit, "ratio");
    assert_eq!(out[18].unit, "per_s");
    assert_eq!(out[9].unit, "count");
    assert_eq!(out[1].message, "p99 99.0ms < 50.0ms");
}

#[test]
fn latency_without_samples_fails() {
    let r = results();
    let out = evaluate(
        &[
            th(lat("idle", Stat::Percentile(99.0)), Cmp::Lt, 1e9),
            th(lat("nope", Stat::Max), Cmp::Lt, 1e9),
        ],
        &r,
    );
    assert!(!out[0].pass);
    assert_eq!(out[0].message, "no samples");
    assert_eq!(out[0].actual, None);
    assert!(!out[1].pass);
    assert!(
        out[1].message.contains("unknown metric"),
        "{}",
        out[1].message
    );
}

#[test]
fn errors_rate_is_zero_without_ops() {
    let mut r = results();
    r.counters.ops = 0;
    r.meta.duration_s = 0.0;
    let out = evaluate(
        &[
            th(Quantity::ErrorsRate, Cmp::Eq, 0.0),
            th(Quantity::ThroughputIn, Cmp::Eq, 0.0),
        ],
        &r,
    );
    assert!(
        out.iter().all(|o| o.pass && o.actual == Some(0.0)),
        "{out:?}"
    );
}

#[test]
fn summary_shows_the_numbers() {
    let mut r = results();
    let ths = [
        th(lat("ack", Stat::Percentile(99.0)), Cmp::Lt, 150_000.0),
        th(Quantity::ErrorsRate, Cmp::Lt, 0.001),
    ];
    r.thresholds = evaluate(&ths, &r);
    r.health
        .warnings
        .push("scheduling lag p99 25.0ms at t=1s".into());
    let text = render_summary(&r);
    let lines = text.lines().count();
    assert!(lines <= 40, "{lines} lines:\n{text}");
    for needle in [
        "complete",
        "verdict",
        "opened 3",
        "failed 1 (refused ×1)",
        "closed 1 (close 1000 ×1)",
        "frames in    10 (5.0/s)",
        "latency ack",
        "99.0ms",
        "100ms",
        "no samples",
        "connect",
        "2.00ms",
        "errors 3 of 200 ops (1.50%)",
        "timeout ×1",
        "missed sends 5",
        "✓",
        "✗",
        "error rate 1.5% < 0.1%",
        "CPU mean 0.30",
        "! scheduling lag",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn a_per_kind_violation_gate_counts_what_the_group_cap_folded() {
    let mut r = results();
    r.violations.checked = 1_000;
    r.violations.total = 7;
    r.violations.frames = 7;
    r.violations.folded = 7;
    let gate = th(
        Quantity::Violations(Some("scrape.progress".into())),
        Cmp::Eq,
        0.0,
    );
    let out = evaluate(&[gate], &r);
    // The 7 folded violations may be of this kind: `== 0` cannot pass.
    assert!(!out[0].pass, "{}", out[0].message);
    assert_eq!(out[0].actual, Some(7.0));
}

#[test]
fn the_summary_answers_did_it_pass_first_and_last() {
    let mut r = results();
    r.thresholds = evaluate(&[th(Quantity::ErrorsRate, Cmp::Lt, 0.5)], &r);
    let text = render_summary(&r);
    let lines: Vec<&str> = text.lines().collect();
    // No protocol: the checking part of the verdict says so (and a gate on it fails).
    let pass =
        "PASS: 1 of 1 thresholds held; no frames were checked: the scenario names no protocol";
    assert!(lines[1].starts_with(pass), "{text}");
    assert!(lines.last().unwrap().starts_with(pass), "{text}");
    r.thresholds = evaluate(&[th(Quantity::ErrorsRate, Cmp::Lt, 0.001)], &r);
    let text = render_summary(&r);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("FAIL: 1 of 1 thresholds failed: "),
        "{text}"
    );
    r.status = Status::Interrupted;
    let text = render_summary(&r);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("INTERRUPTED: no verdict"),
        "{text}"
    );
}

#[test]
fn a_violations_gate_says_precisely_why_nothing_was_checked() {
    let gate = [th(Quantity::Violations(None), Cmp::Eq, 0.0)];
    let mut r = results();
    r.meta.protocol = Some("kite".into());
    r.counters.frames_in = 0;
    let out = evaluate(&gate, &r);
    assert!(!out[0].pass);
    assert_eq!(
        out[0].message,
        "no frames were checked: not one frame arrived from the target"
    );
    assert!(render_summary(&r)
        .contains("frames checked 0: no frames were checked: not one frame arrived"));
    r.counters.frames_in = 10;
    assert_eq!(
        evaluate(&gate, &r)[0].message,
        "no frames were checked (--no-check)"
    );
    r.meta.protocol = None;
    assert!(evaluate(&gate, &r)[0].message.contains("names no protocol"));
}

#[test]
fn long_metric_names_keep_the_latency_table_in_line() {
    let long = "a_metric_name_much_longer_than_the_column".to_string();
    let names = vec!["ack".to_string(), long.clone()];
    let mut rec = Recorder::with_worker(0, &names);
    rec.latency(MetricId(0), 1_000, 1_000);
    rec.latency(MetricId(1), 2_000, 1_000);
    let mut agg = Aggregate::new(names);
    agg.add(rec.take());
    let r = agg.results(meta(), Status::Complete);
    let text = render_summary(&r);
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("count"))
        .unwrap();
    let end = header.find("count").unwrap() + "count".len();
    for label in [
        "latency ack ".to_string(),
        format!("latency {long} "),
        format!("service {long} "),
    ] {
        let row = text.lines().find(|l| l.contains(&label)).unwrap();
        // The count column ends where its heading ends, on every row.
        let after = row.find(&label).unwrap() + label.len();
        let start = after + row[after..].find(|c: char| c != ' ').unwrap();
        let count_end = start + row[start..].find(' ').unwrap();
        assert_eq!(count_end, end, "{label} out of line:\n{text}");
    }
}

#[test]
fn a_threshold_whose_behaviour_never_ran_in_a_shortened_run_is_not_measured() {
    let mut r = results();
    r.load.iterations_by_behaviour = [("pinger".to_string(), 4), ("idler".to_string(), 0)].into();
    let ths = [
        th(lat("idle", Stat::Percentile(99.0)), Cmp::Lt, 50_000.0),
        th(lat("ack", Stat::Percentile(99.0)), Cmp::Lt, 150_000.0),
    ];
    let by_metric = [
        ("idle".to_string(), vec!["idler".to_string()]),
        ("ack".to_string(), vec!["pinger".to_string()]),
    ]
    .into();
    // Cut by --duration: not the target's fault, and not a silent pass either.
    r.thresholds = evaluate(&ths, &r);
    note_idle_behaviours(&mut r, &ths, &by_metric, true);
    let t = &r.thresholds[0];
    assert!(!t.pass && t.not_measured, "{t:?}");
    assert!(
        t.message
            .starts_with("not measured: behaviour 'idler' never began an iteration"),
        "{}",
        t.message
    );
    assert!(!r.thresholds[1].not_measured);
    assert!(r.passed());
    let text = render_summary(&r);
    assert!(text.contains("\n  – "), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let page = squall::report::write_report(&r, dir.path()).unwrap().html;
    let page = std::fs::read_to_string(page).unwrap();
    assert!(
        page.contains("<td>– not measured</td>"),
        "the report's thresholds table"
    );
    let xml = squall::report::render_junit(&r);
    assert!(xml.contains("failures=\"0\" skipped=\"1\""), "{xml}");
    assert!(
        xml.contains("<skipped message=\"not measured: behaviour"),
        "{xml}"
    );
    assert!(
        text.contains("PASS: 1 of 2 thresholds held; 1 not measured"),
        "{text}"
    );
    // At full length the same threshold fails, and says why.
    r.thresholds = evaluate(&ths, &r);
    note_idle_behaviours(&mut r, &ths, &by_metric, false);
    let t = &r.thresholds[0];
    assert!(!t.pass && !t.not_measured);
    assert_eq!(
        t.message,
        "no samples (behaviour 'idler' never began an iteration)"
    );
    assert!(!r.passed());
}
