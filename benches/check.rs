//! Per-frame checking cost, three ways, for typical frames (a Kite event, the Kite ping and
//! pong of the round-trip benchmark, a CovetPy rpc_response, a KECS task event, and Kraken's
//! subscriptionStatus through a profile imported from its AsyncAPI document):
//! - `tape + compiled checks`: parse onto a reused [`Tape`], then the compiled checks (the
//!   run's path, without a connection's memory of its last frames);
//! - `tape + jsonschema tape validator`: the same tape, asked of jsonschema's own validator
//!   over it (`Validator<TapeJson>`) in place of the compiled checks;
//! - `reference (serde_json + jsonschema)`: parse into `serde_json::Value`, then jsonschema
//!   (`--checker reference`, and the path for a failing frame's details).
//!
//! And the two parses alone.
//!
//!     cargo bench --bench check
//!
//! Validations per second per core = 1 / (time per check).
//!
//! `kite round trip`: what a VU's checker does per round trip of the round-trip benchmark
//! (100 × 16): an outbound ping checked and noted for pairing, and an inbound pong parsed,
//! classified, checked, paired and clock-checked, with 16 pings outstanding.

use std::cell::RefCell;
use std::hint::black_box;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, Criterion, Throughput};
use squall::protocol::checker::{Checker, Engine, Verdict};
use squall::protocol::pointer::Shape;
use squall::protocol::tape::Tape;
use squall::protocol::{Direction, Part, Profile};

/// Loads a profile, with its compiled checks or not.
type Load<'a> = &'a dyn Fn(bool) -> Profile;

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
        (
            "kecs",
            "in-event.task-status_change-running-running.json",
            Direction::In,
        ),
    ] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(protocol);
        let load = |compiled: bool| with_checks(Profile::load(&root), compiled);
        let text = frame(&root, file);
        rows(c, &format!("{protocol} {file}"), &load, &text, dir);
    }
    // A profile imported from an AsyncAPI document (in memory, as `protocol: ./doc.yaml`
    // loads it): Kraken's subscriptionStatus, next to Kite's scrape.progress.
    let doc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/asyncapi/kraken-request-reply-3.1.yml");
    let located = squall::asyncapi::import_located(&doc).expect("the Kraken document imports");
    let load = |compiled: bool| with_checks(located.load(), compiled);
    let text = r#"{"channelID":10001,"channelName":"ohlc-5","event":"subscriptionStatus","pair":["XBT/EUR"],"reqid":42,"status":"online","subscription":{"interval":5,"name":"ohlc"}}"#;
    rows(
        c,
        "kraken (AsyncAPI) subscriptionStatus",
        &load,
        text,
        Direction::In,
    );
}

/// A loaded profile, its compiled checks switched off unless `compiled`.
fn with_checks(
    profile: Result<Profile, squall::protocol::ProfileError>,
    compiled: bool,
) -> Profile {
    let mut profile = profile.expect("profile loads");
    if !compiled {
        profile.switch_off(Part::CompiledChecks);
    }
    profile
}

/// The per-frame rows for one valid frame of the profile `load` gives.
fn rows(c: &mut Criterion, label: &str, load: Load, text: &str, dir: Direction) {
    let (compiled, tape_validator) = (load(true), load(false));
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let kind = compiled.kind_of(&value);
    let kind = kind.as_deref();
    assert!(compiled.check(dir, &value).is_ok(), "{label} must be valid");
    let mut tape = Tape::default();
    for p in [&compiled, &tape_validator] {
        assert!(p.is_clean(dir, kind, &tape.parse(text).unwrap()), "{label}");
    }

    let mut g = c.benchmark_group(format!("{label} ({} bytes)", text.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("value parse", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(text)).unwrap())
    });
    g.bench_function("tape parse", |b| {
        b.iter(|| tape.parse(black_box(text)).is_some())
    });
    for (row, profile) in [
        ("tape + compiled checks", &compiled),
        ("tape + jsonschema tape validator", &tape_validator),
    ] {
        g.bench_function(row, |b| {
            b.iter(|| {
                let doc = tape.parse(black_box(text)).unwrap();
                profile.is_clean(dir, kind, &doc)
            })
        });
    }
    g.bench_function("reference (serde_json + jsonschema)", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(black_box(text)).unwrap();
            compiled.check_kind(dir, kind, &v).is_ok()
        })
    });
    g.finish();
}

/// An RFC 3339 UTC time with microseconds, as the reference server stamps its frames.
fn stamp(t: SystemTime) -> String {
    let us = t.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    let (secs, frac) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970 to a civil date (Howard Hinnant's published algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
}

const IN_FLIGHT: usize = 16;
const FRAMES: usize = 256;

/// One connection's exchange: ids counting up, pongs stamped a few µs apart from now.
struct RoundTrip {
    checker: Checker,
    /// What `--no-check` does with the same frames: reads them.
    reader: Checker,
    /// Frames judged, and any that broke something.
    checked: usize,
    broke: usize,
    pings: Vec<String>,
    pongs: Vec<String>,
    n: usize,
}

impl RoundTrip {
    fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
        let mut profile = Profile::load(&root).expect("profile loads");
        let choice = std::env::var("SQUALL_CHECKER").unwrap_or_default();
        // `tape-validator`: the tape engine with jsonschema's validator over the tape in
        // place of the compiled checks; `no-snapshots`, `no-marks`: without that part.
        match choice.as_str() {
            "tape-validator" => profile.switch_off(Part::CompiledChecks),
            "no-snapshots" => profile.switch_off(Part::Snapshots),
            "no-marks" => profile.switch_off(Part::Marks),
            _ => {}
        }
        let profile = Arc::new(profile);
        let shape = Arc::new(Shape::new(&profile.discriminator, "/id"));
        let tape = Rc::new(RefCell::new(Tape::default()));
        let skew = Duration::from_secs(1);
        let engine = match choice.as_str() {
            "reference" => Engine::Reference,
            _ => Engine::Tape,
        };
        let checker = Checker::checking(shape.clone(), tape.clone(), profile, engine, skew);
        let reader = Checker::reading(shape, tape);
        let client = "3f2b8c4e-9a1d-4e6f-8b2a-5c7d9e0f1a2b";
        let now = SystemTime::now();
        let pings = (0..FRAMES)
            .map(|i| format!(r#"{{"type":"ping","id":"{i}"}}"#))
            .collect();
        let pongs = (0..FRAMES)
            .map(|i| {
                let t = stamp(now + Duration::from_micros(7 * i as u64));
                format!(
                    r#"{{"type":"pong","data":{{"client_id":"{client}"}},"timestamp":"{t}","id":"{i}"}}"#
                )
            })
            .collect();
        RoundTrip {
            checker,
            reader,
            checked: 0,
            broke: 0,
            pings,
            pongs,
            n: 0,
        }
    }

    /// A fresh connection with 16 pings outstanding.
    fn connect(&mut self) {
        self.checker.new_connection();
        for k in 0..IN_FLIGHT {
            let ping = &self.pings[(self.n + k) % FRAMES];
            let v = self.checker.outbound(ping, false).verdict;
            self.tally(&v);
        }
    }

    /// One round trip through the checker: the next ping out, the oldest pong in.
    fn checked(&mut self) {
        let (ping, pong) = (
            &self.pings[(self.n + IN_FLIGHT) % FRAMES],
            &self.pongs[self.n % FRAMES],
        );
        self.n = (self.n + 1) % FRAMES;
        let out = self.checker.outbound(black_box(ping), false);
        black_box(&out.id);
        let read = self.checker.inbound(black_box(pong), SystemTime::now);
        black_box(&read.kind);
        let (a, b) = (out.verdict, read.verdict);
        self.tally(&a);
        self.tally(&b);
    }

    /// What the run does with the same frames under `--no-check`: both read on the tape,
    /// the ping for its id, the pong for its kind and id.
    fn read(&mut self) {
        let (ping, pong) = (
            &self.pings[(self.n + IN_FLIGHT) % FRAMES],
            &self.pongs[self.n % FRAMES],
        );
        self.n = (self.n + 1) % FRAMES;
        black_box(self.reader.outbound(black_box(ping), true).id);
        let read = self.reader.inbound(black_box(pong), SystemTime::now);
        black_box((read.kind, read.id));
    }

    fn tally(&mut self, v: &Verdict) {
        self.checked += usize::from(v.checked());
        self.broke += usize::from(matches!(v, Verdict::Broke(_)));
    }

    /// The exchange must have checked clean.
    fn clean(&self) {
        assert!(
            self.checked > 0 && self.broke == 0,
            "the exchange must check clean: {} of {} broke something",
            self.broke,
            self.checked
        );
    }
}

fn round_trip(c: &mut Criterion) {
    let mut rt = RoundTrip::new();
    let mut g = c.benchmark_group(format!(
        "kite round trip (ping {} B, pong {} B)",
        rt.pings[0].len(),
        rt.pongs[0].len()
    ));
    g.throughput(Throughput::Elements(1));
    g.bench_function("checker: ping out + pong in", |b| {
        b.iter_custom(|iters| {
            // Each measurement starts a fresh connection with 16 pings outstanding.
            rt.connect();
            let t = Instant::now();
            for _ in 0..iters {
                rt.checked();
            }
            t.elapsed()
        });
    });
    // The checker's extra cost is the gap to this.
    g.bench_function("no checker: ping and pong read on the tape", |b| {
        b.iter(|| rt.read())
    });
    g.finish();
    rt.clean();
}

/// `SQUALL_ROUNDS=N` (with `SQUALL_PATH=check` or `read`; `SQUALL_CHECKER=reference` for
/// the reference engine, `tape-validator` for jsonschema's validator over the tape in place
/// of the compiled checks): exactly N round trips on one path
/// and exit, for an instruction count under callgrind, which no neighbour on a shared
/// machine disturbs (see README.md).
fn counted(rounds: usize, path: &str) {
    let mut rt = RoundTrip::new();
    rt.connect();
    for _ in 0..rounds {
        match path {
            "read" => rt.read(),
            _ => rt.checked(),
        }
    }
    rt.clean();
}

criterion_group!(benches, bench, round_trip);

fn main() {
    if let Some(n) = std::env::var("SQUALL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let path = std::env::var("SQUALL_PATH").unwrap_or_default();
        return counted(n, &path);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
