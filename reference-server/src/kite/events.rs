//! The Kite event generator: documented event types at a fixed rate per family, serialized once per room.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Feed;
use crate::clock::now_rfc3339;
use crate::stats::Stats;

/// Events for one tick: each entry is one room's serialized frame, shared by all its subscribers.
pub(crate) type Batch = Arc<Vec<(Feed, Utf8Bytes)>>;

/// Subscriber counts per feed across all runtimes, so the generator skips empty rooms.
#[derive(Default)]
pub(crate) struct Audience([AtomicUsize; Feed::COUNT]);

impl Audience {
    pub fn join(&self, feed: Feed) {
        self.0[feed.index()].fetch_add(1, Relaxed);
    }

    pub fn leave(&self, feed: Feed) {
        self.0[feed.index()].fetch_sub(1, Relaxed);
    }

    fn any(&self, feed: Feed) -> bool {
        self.0[feed.index()].load(Relaxed) > 0
    }
}

/// A group of event types published together at `events_per_sec`.
#[derive(Clone, Copy)]
enum Family {
    Scrape,
    Cases,
    Workers,
    Queue,
    SystemAlerts,
    QualityAlerts,
    Metrics,
}

const FAMILIES: [Family; 7] = [
    Family::Scrape,
    Family::Cases,
    Family::Workers,
    Family::Queue,
    Family::SystemAlerts,
    Family::QualityAlerts,
    Family::Metrics,
];

const JURISDICTIONS: [&str; 4] = ["Australia", "New Zealand", "United Kingdom", "Singapore"];

impl Family {
    fn feeds(self) -> &'static [Feed] {
        match self {
            Family::Scrape => &[Feed::ScrapeAll],
            Family::Cases => &[Feed::CasesAll],
            Family::Workers => &[Feed::WorkersAll],
            Family::Queue => &[Feed::QueueAll],
            Family::SystemAlerts => &[Feed::AlertsAll, Feed::AlertsSystem],
            Family::QualityAlerts => &[Feed::AlertsQuality],
            Family::Metrics => &[Feed::MetricsAll],
        }
    }

    /// One random event of this family. A `Value` is fine here: it is built once per
    /// event, never per subscriber or per inbound frame.
    fn event(self, rng: &mut ThreadRng) -> (&'static str, serde_json::Value) {
        let job = format!("job_{:06x}", rng.random_range(0..0xff_ffffu32));
        let case = format!("cth/HCA/2023/{}", rng.random_range(1..200u32));
        let jurisdiction = JURISDICTIONS[rng.random_range(0..JURISDICTIONS.len())];
        match self {
            Family::Scrape => match rng.random_range(0..4u8) {
                0 => (
                    "scrape.started",
                    json!({"job_id": job, "jurisdiction": jurisdiction, "status": "started"}),
                ),
                1 => {
                    let total = 100u32;
                    let current = rng.random_range(1..=total);
                    let data = json!({"job_id": job, "current": current, "total": total,
                        "percent": f64::from(current) * 100.0 / f64::from(total),
                        "message": format!("Scraping page {current} of {total}")});
                    ("scrape.progress", data)
                }
                2 => (
                    "scrape.complete",
                    json!({"job_id": job, "cases_scraped": rng.random_range(1..500u32),
                    "duration_seconds": rng.random_range(1.0..300.0f64), "status": "completed"}),
                ),
                _ => (
                    "scrape.error",
                    json!({"job_id": job, "error": "Failed to fetch page: timeout", "status": "failed"}),
                ),
            },
            Family::Cases => match rng.random_range(0..4u8) {
                0 => (
                    "case.created",
                    json!({"case_id": case, "case_name": "Smith v Jones",
                    "case_number": "[2023] HCA 15", "court": "High Court of Australia", "jurisdiction": jurisdiction}),
                ),
                1 => (
                    "case.updated",
                    json!({"case_id": case, "case_name": "Smith v Jones (Updated)",
                    "case_number": "[2023] HCA 15"}),
                ),
                2 => ("case.deleted", json!({"case_id": case})),
                _ => (
                    "validation.complete",
                    json!({"case_id": case, "valid": rng.random_bool(0.9),
                    "quality_score": rng.random_range(0.0..1.0f64)}),
                ),
            },
            Family::Workers => {
                let total = 4u32;
                let active = rng.random_range(0..=total);
                (
                    "worker.status",
                    json!({"active_workers": active, "total_workers": total,
                    "queue_size": rng.random_range(0..500u32), "utilization": f64::from(active) / f64::from(total)}),
                )
            }
            Family::Queue => {
                let (pending, running) = (rng.random_range(0..200u32), rng.random_range(0..20u32));
                (
                    "queue.update",
                    json!({"pending": pending, "running": running,
                    "completed": rng.random_range(0..5000u32), "failed": rng.random_range(0..100u32),
                    "total": pending + running}),
                )
            }
            Family::SystemAlerts => (
                "system.alert",
                json!({"severity": "critical", "component": "database",
                "message": "High connection usage detected"}),
            ),
            Family::QualityAlerts => (
                "quality.alert",
                json!({"severity": "warning",
                "message": "High duplicate rate detected",
                "details": {"duplicate_rate": rng.random_range(0.2..0.5f64), "threshold": 0.2}}),
            ),
            Family::Metrics => (
                "metric.update",
                json!({"metric": "http_requests_total",
                "value": rng.random_range(0..100_000u32), "labels": {"method": "GET", "status": "200"}}),
            ),
        }
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a serde_json::Value,
    timestamp: &'a str,
    seq: u64,
}

/// Publishes events into the feeds and hands each tick's batch to every runtime.
pub(crate) struct Generator {
    pub rate: f64,
    pub audience: Arc<Audience>,
    pub stats: Arc<Stats>,
    pub outs: Vec<UnboundedSender<Batch>>,
}

impl Generator {
    /// Runs until every runtime's receiver is gone (or the task is dropped).
    pub async fn run(mut self) {
        if self.rate <= 0.0 {
            return;
        }
        // Tick at the event period, but no faster than 1 ms: high rates publish several per tick.
        let period = Duration::from_secs_f64((1.0 / self.rate).max(0.001));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let start = Instant::now();
        let mut seq = [0u64; Feed::COUNT];
        let mut emitted = 0u64;
        loop {
            ticker.tick().await;
            let due = (start.elapsed().as_secs_f64() * self.rate) as u64;
            // After a stall, do not burst more than a second's worth.
            let n = (due - emitted).min(self.rate.ceil() as u64);
            emitted = due;
            let batch = self.build(n, &mut seq);
            if batch.is_empty() {
                continue;
            }
            self.stats.events(0, batch.len() as u64);
            let batch: Batch = Arc::new(batch);
            self.outs.retain(|tx| tx.send(batch.clone()).is_ok());
            if self.outs.is_empty() {
                return;
            }
        }
    }

    fn build(&self, n: u64, seq: &mut [u64; Feed::COUNT]) -> Vec<(Feed, Utf8Bytes)> {
        let mut rng = rand::rng();
        let mut batch = Vec::new();
        for family in FAMILIES {
            let live: Vec<Feed> = family
                .feeds()
                .iter()
                .copied()
                .filter(|f| self.audience.any(*f))
                .collect();
            if live.is_empty() {
                continue;
            }
            for _ in 0..n {
                let (kind, data) = family.event(&mut rng);
                let timestamp = now_rfc3339();
                for feed in &live {
                    seq[feed.index()] += 1;
                    let event = Event {
                        kind,
                        data: &data,
                        timestamp: &timestamp,
                        seq: seq[feed.index()],
                    };
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    batch.push((*feed, Utf8Bytes::from(text)));
                }
            }
        }
        batch
    }
}
