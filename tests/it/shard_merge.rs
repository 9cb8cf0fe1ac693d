//! Sharded runs and `squall merge`: merging is exact (bit-identical histograms, per run and
//! per second), four shards against squall-server add up to what the server counted, and
//! results that are not one run's shards are refused with the reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;
use serde_json::Value;
use squall::merge::{merge, MergeArgs};
use squall::metrics::interval_log::{self, Writer};
use squall::metrics::{Aggregate, Recorder};
use squall::report::{Results, ResultsWriter, RunMeta, ShardInfo, Status};
use squall::run::shard::Shard;
use squall::run::{execute, RunArgs};
use squall::scenario::plan::MetricId;

const START_MS: u64 = 1_800_000_000_000;

fn meta(started: SystemTime) -> RunMeta {
    RunMeta {
        tool_version: "0".into(),
        scenario_name: "merge".into(),
        scenario_file: "merge.yaml".into(),
        scenario_sha256: "cd".repeat(32),
        protocol: None,
        conformance: None,
        target: "ws://127.0.0.1:9/".into(),
        seed: 7,
        threads: 1,
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        ended_at: Some(
            humantime::format_rfc3339_millis(started + Duration::from_secs(2)).to_string(),
        ),
        duration_s: 2.0,
        planned_duration_s: 2.0,
        load_model: "closed".into(),
        host: "test".into(),
        phases: vec![],
    }
}

/// A deterministic spread of latencies with a long tail, over two metrics and two seconds.
fn samples() -> Vec<(u32, usize, u64)> {
    (0..30_000u64)
        .map(|i| {
            let us = 90 + (i * 7919) % 9_000 + if i % 101 == 0 { 400_000 + i * 3 } else { 0 };
            ((i % 2) as u32, (i % 3 == 0) as usize, us)
        })
        .collect()
}

/// Records `values` through one recorder per part, seals two seconds, and writes a run
/// folder (results.json + interval log) for each part as shard `part+1` of `parts`.
fn write_parts(dir: &Path, parts: usize, pick: impl Fn(usize) -> usize) -> Vec<PathBuf> {
    let names = vec!["ack".to_string(), "rpc".to_string()];
    let started = UNIX_EPOCH + Duration::from_millis(START_MS);
    let mut aggs: Vec<Aggregate> = (0..parts)
        .map(|_| {
            let mut a = Aggregate::new(names.clone());
            a.keep_intervals();
            a
        })
        .collect();
    for second in 0..2u32 {
        let mut recs: Vec<Recorder> = (0..parts)
            .map(|p| Recorder::with_worker(p, &names))
            .collect();
        for (i, (sec, metric, us)) in samples().into_iter().enumerate() {
            if sec == second {
                recs[pick(i)].latency(MetricId(metric as u16), us, us / 2 + 1);
            }
        }
        for (a, mut r) in aggs.iter_mut().zip(recs) {
            r.connect_ok(1_000 + second as u64);
            a.add(r.take());
            a.tick(Duration::from_secs(u64::from(second) + 1), None);
        }
    }
    let mut dirs = Vec::new();
    for (p, mut a) in aggs.into_iter().enumerate() {
        let out = dir.join(format!("part-{p}"));
        let w = ResultsWriter::create(&out).unwrap();
        let mut log = Writer::create(&out.join(interval_log::FILE_NAME), started, &names).unwrap();
        for iv in a.drain_intervals() {
            log.append(&iv).unwrap();
        }
        let mut r = a.results(meta(started), Status::Complete);
        r.interval_log = Some(interval_log::FILE_NAME.into());
        r.shard = Some(ShardInfo {
            index: p as u32 + 1,
            count: parts as u32,
            start_at: None,
        });
        w.write(&r).unwrap();
        dirs.push(out);
    }
    dirs
}

fn merged(inputs: Vec<PathBuf>, out: &Path) -> Results {
    merge(&MergeArgs {
        inputs,
        out: out.to_path_buf(),
        allow_partial: false,
        report: false,
    })
    .unwrap()
    .results
}

/// Every row of a log as (tag, start ms, histogram), in a stable order.
fn rows(path: &Path) -> Vec<(String, u128, hdrhistogram::Histogram<u64>)> {
    let mut rows: Vec<_> = interval_log::read(path)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.tag.unwrap(), r.start.as_millis(), r.histogram))
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    rows
}

#[test]
fn values_split_over_any_recorders_merge_bit_identically_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let one = write_parts(&dir.path().join("one"), 1, |_| 0);
    let one = squall::report::read_results(&one[0].join("results.json")).unwrap();
    for (parts, how) in [(2usize, "alternating"), (3, "in runs"), (5, "skewed")] {
        let pick = move |i: usize| match how {
            "alternating" => i % parts,
            "in runs" => (i / 1000) % parts,
            _ => usize::from(!i.is_multiple_of(17)) * (1 + i % (parts - 1)),
        };
        let base = dir.path().join(format!("split-{parts}"));
        let inputs = write_parts(&base, parts, pick);
        let out = base.join("merged");
        let m = merged(inputs, &out);
        for (name, single) in &one.metrics {
            let got = &m.metrics[name];
            // The encoded histograms, byte for byte: the same counts in the same buckets.
            assert_eq!(
                got.latency.histogram, single.latency.histogram,
                "{how} {name}"
            );
            assert_eq!(
                got.service.histogram, single.service.histogram,
                "{how} {name}"
            );
            assert_eq!(got.latency, single.latency, "{how} {name}");
        }
        assert_eq!(m.connect.count, one.connect.count * parts as u64);
        // Per second too: the merged interval log holds exactly the single run's rows.
        let single_rows = rows(&dir.path().join("one/part-0").join(interval_log::FILE_NAME));
        assert_eq!(
            rows(&out.join(interval_log::FILE_NAME)),
            single_rows,
            "{how}"
        );
        assert_eq!(single_rows.len(), 8, "2 metrics × latency/service × 2 s");
        // And the series' percentiles are the single run's.
        let p = |r: &Results| {
            r.series
                .iter()
                .map(|p| (p.p50_us, p.p99_us, p.samples))
                .collect::<Vec<_>>()
        };
        assert_eq!(p(&m), p(&one), "{how}");
        assert_schema_valid(&serde_json::to_value(&m).unwrap());
    }
}

/// Rewrites a shard's results.json through `f`.
fn edit(dir: &Path, f: impl FnOnce(&mut Value)) {
    let path = dir.join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
}

fn squall_merge(inputs: &[PathBuf], out: &Path, extra: &[&str]) -> (i32, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("merge")
        .args(inputs)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--no-report"])
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Makes good shards into a bad merge's inputs.
type Spoil = Box<dyn Fn(&[PathBuf]) -> Vec<PathBuf>>;

#[test]
fn results_that_are_not_one_runs_shards_are_refused_and_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = |name: &str| write_parts(&dir.path().join(name), 3, |i| i % 3);
    let out = dir.path().join("out");
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "N mismatched",
            Box::new(|p| {
                edit(&p[2], |d| d["shard"]["count"] = 4.into());
                p.to_vec()
            }),
            "all shards must come from one --shard",
        ),
        (
            "out of range",
            Box::new(|p| {
                edit(&p[2], |d| d["shard"]["index"] = 0.into());
                p.to_vec()
            }),
            "shard 0/3 does not exist",
        ),
        (
            "another scenario",
            Box::new(|p| {
                edit(&p[1], |d| {
                    d["meta"]["scenario_sha256"] = "ef".repeat(32).into()
                });
                p.to_vec()
            }),
            "a different scenario",
        ),
        (
            "another seed",
            Box::new(|p| {
                edit(&p[1], |d| d["meta"]["seed"] = 8.into());
                p.to_vec()
            }),
            "seed 8",
        ),
        (
            "overlap",
            Box::new(|p| vec![p[0].clone(), p[1].clone(), p[1].clone(), p[2].clone()]),
            "shard 2/3 given 2 times",
        ),
        (
            "missing",
            Box::new(|p| p[..2].to_vec()),
            "shard 3/3 is missing",
        ),
        (
            "aborted",
            Box::new(|p| {
                edit(&p[0], |d| {
                    d["status"] = "aborted".into();
                    d["status_reason"] = "target unreachable".into();
                });
                p.to_vec()
            }),
            "shard 1/3 did not complete (status aborted: target unreachable)",
        ),
        (
            "not a shard",
            Box::new(|p| {
                edit(&p[0], |d| {
                    d.as_object_mut().unwrap().remove("shard");
                });
                p.to_vec()
            }),
            "not a shard",
        ),
    ];
    for (i, (what, make, says)) in cases.iter().enumerate() {
        let inputs = make(&fresh(&format!("case-{i}")));
        let (code, err) = squall_merge(&inputs, &out, &[]);
        assert_eq!(code, 2, "{what}: {err}");
        assert!(err.contains(says), "{what}: expected '{says}' in: {err}");
    }
    assert!(
        !out.join("results.json").exists(),
        "nothing written for a refused merge"
    );

    // A missing shard with --allow-partial: merged, loudly, and the warning is kept.
    let parts = fresh("partial");
    let (code, err) = squall_merge(&parts[..2], &out, &["--allow-partial"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("WARNING: partial merge: shard 3/3 is missing"),
        "{err}"
    );
    let doc = results(&out);
    assert_schema_valid(&doc);
    let warnings = doc["health"]["warnings"].to_string();
    assert!(warnings.contains("shard 3/3 is missing"), "{warnings}");
    assert_eq!(doc["shards"].as_array().unwrap().len(), 2);
    // An overlap is never let through, even with --allow-partial.
    let (code, _) = squall_merge(
        &[parts[0].clone(), parts[0].clone()],
        &out,
        &["--allow-partial"],
    );
    assert_eq!(code, 2);
}

#[test]
fn bad_shard_specs_are_usage_errors_that_say_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "s.yaml",
        "name: s\ntarget: ws://127.0.0.1:1/ws\nload: { vus: 1, duration: 1s }\nbehaviours:\n  - steps:\n      - listen: 1s\n",
    );
    for (spec, says) in [
        ("0/4", "count from 1"),
        ("5/4", "shard 5 of only 4"),
        ("1/0", "at least one shard"),
        ("two/4", "write I/N"),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["run", "--quiet", "--shard", spec])
            .arg(&sc)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{spec}: {err}");
        assert!(
            err.contains(says) && err.contains("--shard 1/4"),
            "{spec}: {err}"
        );
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--quiet", "--start-at", "noon"])
        .arg(&sc)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2026-12-07T12:00:00Z"));
}

const SEVEN: &str = r#"
name: shards-seven
target: ws://127.0.0.1:1/ws
seed: 11
graceful_stop: 5s
load:
  phases:
    - { ramp: 1s, vus: 7 }
    - { hold: 2s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - pace: { send: { type: ping, id: "{{vu}}-{{seq}}" }, rate: 40/s, duration: 1s, in_flight: 4, reply: { kind: pong }, metric: rtt }
      - listen: 200ms
thresholds:
  - "latency.rtt.p99 < 1s"
  - "errors.count == 0"
"#;

#[test]
fn four_shards_against_squall_server_add_up_to_what_it_counted() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "seven.yaml", SEVEN);
    let url = format!("ws://{}/ws", srv.addr());
    let start_at = SystemTime::now() + Duration::from_millis(1500);
    let runs: Vec<_> = (1..=4u32)
        .map(|i| {
            let args = RunArgs {
                scenario: sc.clone(),
                out: Some(dir.path().join(format!("shard-{i}"))),
                target: Some(url.clone()),
                quiet: true,
                threads: Some(1),
                shard: Some(Shard { index: i, count: 4 }),
                start_at: Some(start_at),
                ..RunArgs::default()
            };
            std::thread::spawn(move || execute(args).unwrap().exit_code())
        })
        .collect();
    for r in runs {
        assert_eq!(r.join().unwrap(), 0);
    }
    let text = settled_metrics(&srv);
    let out = dir.path().join("merged");
    let inputs: Vec<PathBuf> = (1..=4)
        .map(|i| dir.path().join(format!("shard-{i}")))
        .collect();
    let done = merge(&MergeArgs {
        inputs,
        out: out.clone(),
        allow_partial: false,
        report: true,
    })
    .unwrap();
    assert_eq!(done.exit_code(), 0, "{:#?}", done.results.thresholds);
    assert!(done.warnings.is_empty());
    let doc = results(&out);
    assert_schema_valid(&doc);
    let c = &doc["counters"];
    assert_counts_match_server(&doc, &text);
    // 7 VUs over 4 shards (2, 2, 2, 1): together exactly the plan.
    assert_eq!(doc["load"]["peak_vus"], 7);
    let peaks: Vec<u64> = (1..=4)
        .map(|i| {
            results(&dir.path().join(format!("shard-{i}")))["load"]["peak_vus"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(peaks, [2, 2, 2, 1]);
    assert_eq!(doc["shards"].as_array().unwrap().len(), 4);
    // One welcome per connection, every one measured.
    assert_eq!(
        doc["metrics"]["welcome"]["latency"]["count"],
        c["connections"]["opened"]
    );
    // Thresholds were evaluated on the merged figures.
    assert_eq!(doc["thresholds"].as_array().unwrap().len(), 2);
    assert!(out.join("junit.xml").is_file());
    // The report draws latency over time per metric from the merged interval log.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    for m in ["rtt", "welcome"] {
        assert!(page.contains(&format!("{m}: latency over time")), "{m}");
        assert!(out.join(format!("time-latency-{m}.png")).is_file(), "{m}");
    }
    // A results.json copied away from its log still makes a report, and says what it left out.
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    std::fs::copy(out.join("results.json"), alone.join("results.json")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("report")
        .arg(alone.join("results.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("latency over time per metric left out"),
        "{err}"
    );
    assert!(!alone.join("time-latency-rtt.png").exists());
    // Each shard wrote its own log beside its results; its seconds add up to its totals.
    for i in 1..=4 {
        let shard = dir.path().join(format!("shard-{i}"));
        let doc = results(&shard);
        assert_eq!(doc["interval_log"], "histograms.hlog");
        let log = interval_log::read(&shard.join("histograms.hlog")).unwrap();
        for (m, kind) in [("rtt", "latency"), ("welcome", "service")] {
            let tag = format!("{kind}.{m}");
            let n: u64 = log
                .rows
                .iter()
                .filter(|r| r.tag.as_deref() == Some(tag.as_str()))
                .map(|r| r.histogram.len())
                .sum();
            assert_eq!(n, doc["metrics"][m][kind]["count"], "shard {i} {tag}");
        }
    }
    // The merged series adds up to the merged totals.
    let series = doc["series"].as_array().unwrap();
    let summed: u64 = series
        .iter()
        .map(|p| p["frames_in"].as_u64().unwrap())
        .sum();
    assert_eq!(summed, c["frames_in"].as_u64().unwrap());
    srv.shutdown();
}
