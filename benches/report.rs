//! Report generation time: a results.json of a 1-hour run at 1-second resolution with 20
//! latency metrics (synthesized, checked against schemas/results.schema.json), then
//! `squall report` on it, several times; prints each wall time and the median.
//!
//!     cargo bench --bench report               # 5 runs
//!     cargo bench --bench report -- --runs 9 --keep DIR   # keep the files in DIR
//!
//! Target: under 3 s.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use squall::metrics::new_histogram;
use squall::protocol::Direction;
use squall::report::{
    ConnectionCounts, Counters, Health, KindCount, LoadReached, MetricResult, Phase, Results,
    RunMeta, SeriesPoint, Status, Summary, ThresholdOutcome, ViolationGroup, Violations,
    RESULTS_VERSION,
};
use squall::results::ViolationSample;

const SECONDS: u64 = 3600;
const METRICS: usize = 20;
/// Samples per latency histogram.
const SAMPLES: usize = 200_000;

/// A latency histogram: a log-normal-ish body around `median_us` with a long tail.
fn histogram(rng: &mut rand::rngs::SmallRng, median_us: f64) -> Summary {
    let mut h = new_histogram();
    for _ in 0..SAMPLES {
        let u: f64 = rng.random_range(0.0..1.0);
        let tail = if rng.random_range(0.0..1.0) < 0.01 {
            20.0
        } else {
            1.0
        };
        let v = median_us * (3.0 * (u - 0.5)).exp() * tail;
        h.record(v.max(1.0) as u64).unwrap();
    }
    Summary::from_histogram(&h)
}

fn series(rng: &mut rand::rngs::SmallRng) -> Vec<SeriesPoint> {
    (1..=SECONDS)
        .map(|t| {
            let level = (t as f64 / 300.0).min(1.0) * 1000.0;
            let wave = 1.0 + 0.2 * (t as f64 / 60.0).sin();
            SeriesPoint {
                t: t as f64,
                msgs_in: level * 20.0 * wave,
                msgs_out: level * 10.0 * wave,
                bytes_in: level * 20.0 * wave * 180.0,
                bytes_out: level * 10.0 * wave * 60.0,
                active_connections: level as u64,
                active_vus: level as u64,
                errors: u64::from(rng.random_range(0..100) == 0),
                violations: u64::from(rng.random_range(0..300) == 0),
                p50_us: Some(rng.random_range(800..1_200)),
                p99_us: Some(rng.random_range(8_000..30_000)),
                cpu: Some(rng.random_range(0.8..1.6)),
                span_s: 1.0,
                ..SeriesPoint::default()
            }
        })
        .collect()
}

fn results() -> Results {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let mut metrics = BTreeMap::new();
    let mut thresholds = Vec::new();
    for i in 0..METRICS {
        let name = format!("metric_{i:02}");
        let latency = histogram(&mut rng, 1_000.0 + 250.0 * i as f64);
        let service = histogram(&mut rng, 800.0 + 200.0 * i as f64);
        thresholds.push(ThresholdOutcome {
            expr: format!("latency.{name}.p99 < 50ms"),
            pass: latency.p99 < 50_000,
            actual: Some(latency.p99 as f64),
            unit: "us".into(),
            message: format!("p99 {}µs < 50ms", latency.p99),
            not_measured: false,
        });
        metrics.insert(
            name,
            MetricResult {
                latency,
                service,
                timing: Default::default(),
            },
        );
    }
    let series = series(&mut rng);
    let kinds = |names: &[&str]| -> BTreeMap<String, KindCount> {
        names
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    KindCount {
                        frames: 1_000_000,
                        bytes: 180_000_000,
                    },
                )
            })
            .collect()
    };
    Results {
        version: RESULTS_VERSION,
        status: Status::Complete,
        status_reason: None,
        meta: RunMeta {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            scenario_name: "bench-hour".into(),
            scenario_file: "bench-hour.yaml".into(),
            scenario_sha256: "ab".repeat(32),
            protocol: Some("kite".into()),
            conformance: None,
            target: "ws://127.0.0.1:8080/ws".into(),
            seed: 42,
            threads: 2,
            started_at: "2026-11-22T00:00:00Z".into(),
            ended_at: Some("2026-11-22T01:00:00Z".into()),
            duration_s: SECONDS as f64,
            planned_duration_s: SECONDS as f64,
            load_model: "closed".into(),
            host: "bench".into(),
            phases: vec![
                Phase {
                    start_s: 0.0,
                    end_s: 300.0,
                    from: 0.0,
                    to: 1000.0,
                },
                Phase {
                    start_s: 300.0,
                    end_s: 3300.0,
                    from: 1000.0,
                    to: 1000.0,
                },
                Phase {
                    start_s: 3300.0,
                    end_s: 3600.0,
                    from: 1000.0,
                    to: 0.0,
                },
            ],
        },
        load: LoadReached {
            peak_vus: 1000,
            peak_connections: 1000,
            peak_arrival_rate: None,
            iterations_ok: 50_000,
            iterations_failed: 12,
            iterations_started: 50_012,
            iterations_cut: 0,
            iterations_by_behaviour: Default::default(),
        },
        metrics,
        connect: histogram(&mut rng, 1_500.0),
        counters: Counters {
            connections: ConnectionCounts {
                opened: 50_012,
                failed: 12,
                failed_by_cause: [("timeout".to_string(), 12)].into(),
                failed_samples: Default::default(),
                closed: 50_012,
                closed_by_code: [("1000".to_string(), 50_000), ("1008".to_string(), 12)].into(),
                open_at_stop: 0,
            },
            frames_in: 72_000_000,
            frames_out: 36_000_000,
            bytes_in: 12_960_000_000,
            bytes_out: 2_160_000_000,
            kinds_in: kinds(&["pong", "subscribe", "scrape.progress"]),
            kinds_out: kinds(&["ping", "subscribe"]),
            errors: 36,
            errors_by_kind: [("timeout".to_string(), 36)].into(),
            ops: 36_000_000,
            missed: 0,
            requests: Default::default(),
            error_samples: Default::default(),
        },
        series,
        violations: Violations {
            checked: 108_000_000,
            frames: 12,
            total: 12,
            groups: vec![ViolationGroup {
                dir: Direction::In,
                kind: "scrape.progress".into(),
                keyword: "required".into(),
                pointer: "/data/percent".into(),
                source: squall::protocol::RuleSource::Document,
                count: 12,
                samples: vec![ViolationSample {
                    frame: r#"{"type":"scrape.progress","data":{}}"#.into(),
                    message: "\"percent\" is a required property".into(),
                    t: 1234.5,
                    vu: 17,
                }],
            }],
            folded: 0,
        },
        thresholds,
        health: Health {
            generator_saturated: false,
            cpu_mean: Some(1.2),
            cpu_peak: Some(1.6),
            cores: 2.0,
            lag_p99_us: 900,
            lag_max_us: 12_000,
            warnings: vec![],
            ..Health::default()
        },
        delivery: None,
        uploads: Default::default(),
        capacity: None,
        interval_log: None,
        shard: None,
        shards: Vec::new(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map_or(5, |n| n.parse().expect("--runs N"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = match args.iter().position(|a| a == "--keep") {
        Some(i) => std::path::PathBuf::from(&args[i + 1]),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("results.json");
    let doc = serde_json::to_value(results()).unwrap();
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/results.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "synthesized results invalid: {errors:#?}"
    );
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "results.json: {SECONDS} s at 1 s resolution, {METRICS} metrics, {:.1} MB",
        size as f64 / 1e6
    );
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let out = dir.join(format!("report-{i}"));
        let start = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_squall"))
            .arg("report")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        let took = start.elapsed().as_secs_f64();
        assert!(status.success(), "squall report failed");
        let pngs = std::fs::read_dir(&out).unwrap().count() - 1;
        let html = std::fs::metadata(out.join("report.html")).unwrap().len();
        assert!(pngs > METRICS, "{pngs} charts");
        println!(
            "run {}: {took:.3} s ({pngs} PNGs, report.html {:.1} MB)",
            i + 1,
            html as f64 / 1e6
        );
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "squall report: median {:.3} s (min {:.3}, max {:.3}) over {runs} runs; target < 3 s",
        times[runs / 2],
        times[0],
        times[runs - 1]
    );
}
