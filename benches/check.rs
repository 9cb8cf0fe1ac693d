//! Per-frame checking cost: parse (into `serde_json::Value`), validate (compiled schema,
//! `is_valid`), and both, for a typical Kite event and a CovetPy rpc_response.
//!
//!     cargo bench --bench check
//!
//! Validations per second per core = 1 / (time per validation).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall::protocol::{Direction, Profile};

fn frame(protocol: &str, file: &str) -> (Profile, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(protocol);
    let profile = Profile::load(&root).expect("profile loads");
    let text = std::fs::read_to_string(root.join("examples/valid").join(file)).expect("fixture");
    // One line, as it travels.
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    (profile, v.to_string())
}

fn bench(c: &mut Criterion) {
    for (protocol, file) in [
        ("kite", "in-scrape.progress.json"),
        ("covetpy", "in-rpc_response.json"),
    ] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(protocol);
        if !root.join("examples/valid").join(file).exists() {
            continue;
        }
        let (profile, text) = frame(protocol, file);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kind = profile.kind_of(&value);
        assert!(
            profile.check(Direction::In, &value).is_ok(),
            "{file} must be valid"
        );
        let mut g = c.benchmark_group(format!("{protocol} {file} ({} bytes)", text.len()));
        g.throughput(Throughput::Elements(1));
        g.bench_function("parse", |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap())
        });
        g.bench_function("validate", |b| {
            b.iter(|| profile.check_kind(Direction::In, kind.as_deref(), black_box(&value)))
        });
        g.bench_function("parse+validate", |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(&text)).unwrap();
                profile
                    .check_kind(Direction::In, kind.as_deref(), &v)
                    .is_ok()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
