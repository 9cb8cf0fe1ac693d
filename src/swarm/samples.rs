//! `squall run --samples FILE`: every latency sample as a JSON line, with its instants on
//! the host's `CLOCK_MONOTONIC` (ns) and the frame that ended it, so a sample can be held
//! against a server's own clock readings (`squall-server --stamp`). A debugging aid: each
//! sample takes a lock and a write, so leave it off for measurements.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Longest frame text kept in a sample line, in bytes (cut at a character boundary).
pub const SAMPLE_FRAME_MAX: usize = 4096;

/// Where samples go.
#[derive(Debug)]
pub struct SampleLog {
    out: Mutex<BufWriter<File>>,
    /// An instant and the `CLOCK_MONOTONIC` reading taken with it.
    base: (Instant, u64),
}

/// One latency sample's instants.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When the request should have gone out (the schedule's time; for `expect` and
    /// `burst`, the send itself).
    pub intended: Instant,
    /// When it went out (read just before the write).
    pub sent: Instant,
    /// When the frame that ended it was read.
    pub received: Instant,
    /// The latency recorded, µs.
    pub latency_us: u64,
    /// The service time recorded, µs.
    pub service_us: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    metric: &'a str,
    vu: u64,
    intended_ns: u64,
    sent_ns: u64,
    received_ns: u64,
    latency_us: u64,
    service_us: u64,
    frame: &'a str,
}

impl SampleLog {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let out = Mutex::new(BufWriter::new(File::create(path)?));
        // The instant read between two clock readings: off by at most half their gap (tens
        // of ns); the tightest of a few tries, in case one was preempted.
        let mut best = (Instant::now(), 0, u64::MAX);
        for _ in 0..8 {
            let before = monotonic_ns();
            let now = Instant::now();
            let gap = monotonic_ns().saturating_sub(before);
            if gap < best.2 {
                best = (now, before + gap / 2, gap);
            }
        }
        Ok(SampleLog {
            out,
            base: (best.0, best.1),
        })
    }

    /// `at` on `CLOCK_MONOTONIC`, ns.
    pub fn ns(&self, at: Instant) -> u64 {
        let (i, ns) = self.base;
        match at.checked_duration_since(i) {
            Some(d) => ns + d.as_nanos() as u64,
            None => ns.saturating_sub(i.duration_since(at).as_nanos() as u64),
        }
    }

    /// Writes one sample of `metric` by VU `vu`, ended by `frame`.
    pub fn write(&self, metric: &str, vu: u64, s: Sample, frame: &str) {
        let mut cut = frame.len().min(SAMPLE_FRAME_MAX);
        while !frame.is_char_boundary(cut) {
            cut -= 1;
        }
        let line = Line {
            metric,
            vu,
            intended_ns: self.ns(s.intended),
            sent_ns: self.ns(s.sent),
            received_ns: self.ns(s.received),
            latency_us: s.latency_us,
            service_us: s.service_us,
            frame: &frame[..cut],
        };
        let Ok(mut out) = self.out.lock() else { return };
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            let _ = out.write_all(b"\n");
        }
    }

    /// Writes what is buffered.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.flush(),
            Err(_) => Ok(()),
        }
    }
}

pub use squall_server::monotonic_ns;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_onto_the_monotonic_clock() {
        let dir = tempfile::tempdir().unwrap();
        let log = SampleLog::create(&dir.path().join("s.jsonl")).unwrap();
        let (a, na) = (Instant::now(), monotonic_ns());
        let b = a + Duration::from_millis(5);
        // Within a microsecond of a direct reading, and differences kept exactly.
        assert!(log.ns(a).abs_diff(na) < 1_000, "{} vs {na}", log.ns(a));
        assert_eq!(log.ns(b) - log.ns(a), 5_000_000);
        let early = log.base.0 - Duration::from_micros(3);
        assert_eq!(log.ns(log.base.0) - log.ns(early), 3_000);
    }

    #[test]
    fn lines_are_json_with_the_frame_cut_at_a_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let log = SampleLog::create(&path).unwrap();
        let t = Instant::now();
        let s = Sample {
            intended: t,
            sent: t,
            received: t + Duration::from_micros(40),
            latency_us: 40,
            service_us: 40,
        };
        let long = "é".repeat(SAMPLE_FRAME_MAX);
        log.write("rtt", 3, s, &long);
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["metric"], "rtt");
        assert_eq!(v["vu"], 3);
        assert_eq!(
            v["received_ns"].as_u64().unwrap() - v["sent_ns"].as_u64().unwrap(),
            40_000
        );
        let frame = v["frame"].as_str().unwrap();
        assert!(frame.len() <= SAMPLE_FRAME_MAX && frame.len() >= SAMPLE_FRAME_MAX - 1);
    }
}
