//! Per-frame checking cost, two ways, for typical frames (a Kite event, the Kite ping and
//! pong of the round-trip benchmark, a CovetPy rpc_response):
//! - `value`: parse into `serde_json::Value`, then `is_valid` (the path before the tape, and
//!   still the path for error details);
//! - `tape`: parse onto a reused [`Tape`], then `is_valid` on the tape (the run's path).
//!
//!     cargo bench --bench check
//!
//! Validations per second per core = 1 / (time per check).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use squall::protocol::tape::Tape;
use squall::protocol::{Direction, Profile};

fn frame(root: &Path, file: &str) -> String {
    let text = std::fs::read_to_string(root.join("examples/valid").join(file)).expect("fixture");
    // One line, as it travels.
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v.to_string()
}

fn bench(c: &mut Criterion) {
    for (protocol, file, dir) in [
        ("kite", "in-scrape.progress.json", Direction::In),
        ("kite", "in-pong-refserver.json", Direction::In),
        ("kite", "out-ping-refserver.json", Direction::Out),
        ("covetpy", "in-rpc_response.json", Direction::In),
    ] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(protocol);
        let profile = Profile::load(&root).expect("profile loads");
        let text = frame(&root, file);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kind = profile.kind_of(&value);
        let kind = kind.as_deref();
        assert!(profile.check(dir, &value).is_ok(), "{file} must be valid");
        let mut tape = Tape::default();
        assert!(profile.is_clean(dir, kind, &tape.parse(&text).unwrap()));

        let mut g = c.benchmark_group(format!("{protocol} {file} ({} bytes)", text.len()));
        g.throughput(Throughput::Elements(1));
        g.bench_function("value parse", |b| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap())
        });
        g.bench_function("value validate", |b| {
            b.iter(|| profile.check_kind(dir, kind, black_box(&value)))
        });
        g.bench_function("value parse+validate", |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(&text)).unwrap();
                profile.check_kind(dir, kind, &v).is_ok()
            })
        });
        g.bench_function("tape parse", |b| {
            b.iter(|| tape.parse(black_box(&text)).is_some())
        });
        g.bench_function("tape parse+validate", |b| {
            b.iter(|| {
                let doc = tape.parse(black_box(&text)).unwrap();
                profile.is_clean(dir, kind, &doc)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
