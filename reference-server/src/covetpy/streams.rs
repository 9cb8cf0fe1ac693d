//! Data streams (`subscribe`): each subscription samples its stream at the server's event
//! rate and sends the samples as `stream_data` batches of at most `buffer_size`, flushed
//! when the buffer is full or `batch_interval` has passed since the last batch.
//!
//! Samples are not stored while they wait: a subscription keeps only the time of its next
//! sample, and a flush creates the due samples with their own (past) sampling times. So a
//! buffer costs no memory, and the session timer wakes once per batch, not per sample.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::{Duration, Instant};

use super::limits::wall_micros;
use super::wire::{frame, Severity, Sid, StreamType};
use crate::clock::format_micros;

/// `buffer_size` when the subscribe has none (the document's example value).
pub const DEFAULT_BUFFER: u64 = 100;
/// Largest `buffer_size`; larger values are clamped to it.
pub const MAX_BUFFER: u64 = 1000;
/// `batch_interval` when the subscribe has none (the document's example value), ms.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Longest `batch_interval`; longer values are clamped to it, ms.
pub const MAX_INTERVAL_MS: u64 = 60_000;
/// Shortest sampling period: at most 1,000 samples per second per subscription.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);
/// Longest sampling period, s: at least one sample an hour, whatever the event rate.
const MAX_PERIOD_SECS: f64 = 3600.0;

/// One subscription's stream.
pub struct Stream {
    /// The subscribe frame's id, carried as `subscription_id`.
    pub id: String,
    kind: StreamType,
    resource: String,
    min_severity: Severity,
    buffer: u32,
    interval: Duration,
    /// `None` when the server generates no events (`--events 0`).
    period: Option<Duration>,
    next_sample: Instant,
    last_flush: Instant,
    seq: u64,
    /// Whether samples carry `seq` (an extension; not under `--strict-doc`).
    show_seq: bool,
}

/// What a subscribe asked for, already checked.
pub struct Spec {
    pub kind: StreamType,
    pub resource: String,
    pub min_severity: Option<Severity>,
    pub buffer_size: Option<u64>,
    pub batch_interval_ms: Option<u64>,
}

impl Stream {
    /// A stream starting at `now`, sampled `rate` times per second.
    pub fn new(id: String, spec: Spec, rate: f64, now: Instant) -> Self {
        let period = (rate > 0.0).then(|| {
            Duration::from_secs_f64((1.0 / rate).clamp(MIN_PERIOD.as_secs_f64(), MAX_PERIOD_SECS))
        });
        let buffer = spec
            .buffer_size
            .unwrap_or(DEFAULT_BUFFER)
            .clamp(1, MAX_BUFFER);
        let interval = spec
            .batch_interval_ms
            .unwrap_or(DEFAULT_INTERVAL_MS)
            .min(MAX_INTERVAL_MS);
        Stream {
            id,
            kind: spec.kind,
            resource: spec.resource,
            min_severity: spec.min_severity.unwrap_or(Severity::Debug),
            buffer: buffer as u32,
            interval: Duration::from_millis(interval),
            period,
            next_sample: now + period.unwrap_or_default(),
            last_flush: now,
            seq: 0,
            show_seq: true,
        }
    }

    /// Whether samples carry their number in the subscription, `seq` (a reference-server
    /// extension: `--strict-doc` leaves it out).
    pub fn with_seq(mut self, shown: bool) -> Self {
        self.show_seq = shown;
        self
    }

    /// When the next batch is due: the buffer fills, or the interval has passed and at
    /// least one sample is due.
    pub fn deadline(&self) -> Option<Instant> {
        let period = self.period?;
        let full = self.next_sample + period * (self.buffer - 1);
        let interval = (self.last_flush + self.interval).max(self.next_sample);
        Some(full.min(interval))
    }

    /// Samples due by `now` and not yet sent.
    fn due(&self, now: Instant) -> u64 {
        match self.period {
            Some(period) if now >= self.next_sample => {
                let behind = now.duration_since(self.next_sample).as_nanos();
                (behind / period.as_nanos()) as u64 + 1
            }
            _ => 0,
        }
    }

    /// The `stream_data` frame due at `now` (id `sd_<frame_id>`), if any. A timer that ran
    /// more than a whole buffer late sends one full buffer and skips the rest.
    pub fn poll(&mut self, now: Instant, rng: &mut ThreadRng, frame_id: u64) -> Option<String> {
        let (period, deadline) = (self.period?, self.deadline()?);
        if now < deadline {
            return None;
        }
        let n = self.due(now).min(u64::from(self.buffer));
        if n == 0 {
            return None;
        }
        let frame = self.batch(n, period, now, rng, frame_id);
        self.next_sample += period * n as u32;
        self.last_flush = now;
        // After a stall, skip what a whole buffer cannot hold rather than fall further behind.
        if self.due(now) > u64::from(self.buffer) {
            self.next_sample = now + period;
        }
        Some(frame)
    }

    fn batch(
        &mut self,
        n: u64,
        period: Duration,
        now: Instant,
        rng: &mut ThreadRng,
        id: u64,
    ) -> String {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        let times: Vec<String> = (0..n)
            .map(|i| {
                let at = self.next_sample + period * i as u32;
                format_micros(wall_micros(at, now, now_us))
            })
            .collect();
        let batch: Vec<Sample<'_>> = times
            .iter()
            .map(|timestamp| {
                self.seq += 1;
                Sample {
                    timestamp,
                    seq: Some(self.seq).filter(|_| self.show_seq),
                    body: self.body(rng),
                }
            })
            .collect();
        let data = StreamData {
            subscription_id: &self.id,
            stream_type: self.kind,
            resource_id: &self.resource,
            batch,
        };
        frame("stream_data", Sid("sd", id), data)
    }

    /// One sample's fields for this stream type.
    fn body(&self, rng: &mut ThreadRng) -> Body {
        let tenth = |x: f64| (x * 10.0).round() / 10.0;
        match self.kind {
            StreamType::Metrics => Body::Metrics {
                cpu_usage: tenth(rng.random_range(0.0..100.0)),
                memory_usage: tenth(rng.random_range(0.0..100.0)),
                active_connections: rng.random_range(0..200),
            },
            StreamType::Logs => {
                let levels = &Severity::ALL[self.min_severity as usize..];
                let level = levels[rng.random_range(0..levels.len())];
                Body::Logs {
                    level,
                    message: LOG_LINES[level as usize],
                }
            }
            StreamType::Events => Body::Events {
                event_type: if rng.random_bool(0.5) {
                    "data_update"
                } else {
                    "user_activity"
                },
            },
            StreamType::DatabaseChanges => Body::DatabaseChanges {
                operation: ["insert", "update", "delete"][rng.random_range(0..3)],
                table: "orders",
                row_id: rng.random_range(1..100_000),
            },
        }
    }
}

const LOG_LINES: [&str; 5] = [
    "query plan cached",
    "connection checked out of the pool",
    "slow query: 1.2 s",
    "query failed: deadlock detected",
    "connection pool exhausted",
];

#[derive(Serialize)]
struct StreamData<'a> {
    subscription_id: &'a str,
    stream_type: StreamType,
    resource_id: &'a str,
    batch: Vec<Sample<'a>>,
}

/// One sample: its sampling time, its number in the subscription, the stream's fields.
#[derive(Serialize)]
struct Sample<'a> {
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body {
    Metrics {
        cpu_usage: f64,
        memory_usage: f64,
        active_connections: u32,
    },
    Logs {
        level: Severity,
        message: &'static str,
    },
    Events {
        event_type: &'static str,
    },
    DatabaseChanges {
        operation: &'static str,
        table: &'static str,
        row_id: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(buffer: u64, interval: u64) -> Spec {
        Spec {
            kind: StreamType::Logs,
            resource: "db_1".into(),
            min_severity: Some(Severity::Error),
            buffer_size: Some(buffer),
            batch_interval_ms: Some(interval),
        }
    }

    fn batch(text: &str) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["data"]["batch"].as_array().unwrap().clone()
    }

    #[test]
    fn a_full_buffer_flushes_before_the_interval() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut s = Stream::new("sub_1".into(), spec(3, 60_000), 100.0, t0);
        let due = s.deadline().unwrap();
        assert_eq!(due, t0 + Duration::from_millis(30), "3 samples at 10 ms");
        assert!(s
            .poll(due - Duration::from_millis(1), &mut rng, 1)
            .is_none());
        let samples = batch(&s.poll(due, &mut rng, 1).unwrap());
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[2]["seq"], 3);
        assert!(samples
            .iter()
            .all(|s| s["level"] == "error" || s["level"] == "critical"));
        assert_eq!(s.deadline().unwrap(), due + Duration::from_millis(30));
    }

    #[test]
    fn the_interval_flushes_a_partial_buffer() {
        let t0 = Instant::now();
        let mut rng = rand::rng();
        let mut s = Stream::new("sub_1".into(), spec(100, 50), 100.0, t0);
        let due = s.deadline().unwrap();
        assert_eq!(due, t0 + Duration::from_millis(50));
        assert_eq!(batch(&s.poll(due, &mut rng, 1).unwrap()).len(), 5);
        // A timer that ran 10 s late sends one full buffer and skips the rest.
        let late = due + Duration::from_secs(10);
        assert_eq!(batch(&s.poll(late, &mut rng, 2).unwrap()).len(), 100);
        assert_eq!(s.deadline().unwrap(), late + Duration::from_millis(50));
    }

    #[test]
    fn no_rate_no_samples() {
        let t0 = Instant::now();
        let mut s = Stream::new("sub_1".into(), spec(1, 0), 0.0, t0);
        assert!(s.deadline().is_none());
        assert!(s
            .poll(t0 + Duration::from_secs(5), &mut rand::rng(), 1)
            .is_none());
    }
}
