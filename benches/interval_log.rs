//! What the interval log costs per second of a run: sealing one second of per-metric
//! histograms into the log (V2 DEFLATE + base64 per metric, latency and service), and the
//! bytes it adds to the file.
//!
//!     cargo bench --bench interval_log
//!
//! A "typical" second: 3 metrics, each with 2,000 latency samples spread over 0.2–20 ms
//! and a 1 % tail to 400 ms (service time alike), as a 2,000 requests/s run records.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, Criterion};
use squall::metrics::interval_log::{IntervalHistograms, Writer};
use squall::metrics::new_histogram;

fn second(metrics: usize, per_metric: u64) -> IntervalHistograms {
    let mut iv = IntervalHistograms::empty(Duration::from_secs(7), Duration::from_secs(1), metrics);
    for m in 0..metrics {
        let mut h = new_histogram();
        for i in 0..per_metric {
            let us = 200 + (i * 7919 + m as u64 * 31) % 19_800;
            let us = if i % 100 == 0 { us + 380_000 } else { us };
            h.saturating_record(us);
        }
        iv.add(m, false, &h);
        iv.add(m, true, &h);
    }
    iv
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("squall-bench-hlog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let names: Vec<String> = ["ack", "rpc", "welcome"].map(String::from).to_vec();
    let iv = second(names.len(), 2_000);
    let path = dir.join("histograms.hlog");
    let mut w = Writer::create(&path, SystemTime::now(), &names).expect("log");
    let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    w.append(&iv).expect("append");
    let after = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "interval log: {} bytes header, {} bytes per second (3 metrics, latency + service)",
        before,
        after - before
    );
    c.bench_function("interval log: one second, 3 metrics", |b| {
        b.iter(|| w.append(black_box(&iv)).expect("append"))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
