//! Kite events: the documented event types of each room family, filled in from the room's
//! name (`scrape:{job_id}` events carry that job id), serialized once per room.

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use serde_json::json;

use crate::clock::now_rfc3339;
use crate::proto::Seq;

/// A group of event types published together at `events_per_sec`.
#[derive(Clone, Copy)]
enum Family {
    Scrape,
    Cases,
    /// `case:{id}`: the case events of one case.
    Case,
    Search,
    Workers,
    Queue,
    SystemAlerts,
    QualityAlerts,
    Metrics,
}

const JURISDICTIONS: [&str; 4] = ["Australia", "New Zealand", "United Kingdom", "Singapore"];

impl Family {
    /// The family feeding `room`, and the id the room names (`None` for `*:all`).
    fn of<'r>(room: &'r str, rng: &mut ThreadRng) -> Option<(Family, Option<&'r str>)> {
        let (family, name) = room.split_once(':')?;
        let named = (name != "all").then_some(name);
        let family = match (family, name) {
            ("scrape", _) => Family::Scrape,
            ("cases", _) => Family::Cases,
            ("case", _) => Family::Case,
            ("search", _) => Family::Search,
            ("workers", "all") => Family::Workers,
            ("queue", "all") => Family::Queue,
            ("alerts", "all") if rng.random_bool(0.5) => Family::QualityAlerts,
            ("alerts", "all" | "system") => Family::SystemAlerts,
            ("alerts", "quality") => Family::QualityAlerts,
            ("metrics", _) => Family::Metrics,
            _ => return None,
        };
        Some((family, named))
    }

    /// One random event of this family. A `Value` is fine here: it is built once per
    /// event, never per subscriber or per inbound frame.
    fn event(self, named: Option<&str>, rng: &mut ThreadRng) -> (&'static str, serde_json::Value) {
        let job = match (self, named) {
            (Family::Scrape, Some(id)) => id.to_owned(),
            _ => format!("job_{:06x}", rng.random_range(0..0xff_ffffu32)),
        };
        let case = match (self, named) {
            (Family::Case, Some(id)) => id.to_owned(),
            _ => format!("cth/HCA/2023/{}", rng.random_range(1..200u32)),
        };
        let jurisdiction = match (self, named) {
            (Family::Cases, Some(j)) => j,
            _ => JURISDICTIONS[rng.random_range(0..JURISDICTIONS.len())],
        };
        let metric = match (self, named) {
            (Family::Metrics, Some(m)) => m,
            _ => "http_requests_total",
        };
        match self {
            Family::Scrape => scrape_event(&job, jurisdiction, rng),
            // A jurisdiction room only gets the event that names its jurisdiction.
            Family::Cases if named.is_some() => (
                "case.created",
                json!({"case_id": case, "case_name": "Smith v Jones",
                "case_number": "[2023] HCA 15", "court": "High Court of Australia", "jurisdiction": jurisdiction}),
            ),
            Family::Search => {
                let search = named.unwrap_or("search_xyz789");
                let total = rng.random_range(1..100u32);
                (
                    "search.results",
                    json!({"search_id": search, "results": [{"id": case, "case_name": "Smith v Jones",
                    "case_number": "[2023] HCA 15", "court": "High Court of Australia",
                    "jurisdiction": jurisdiction}], "result_count": 1, "total": total}),
                )
            }
            Family::Cases | Family::Case => case_event(&case, jurisdiction, rng),
            Family::Workers => worker_status(rng),
            Family::Queue => queue_update(rng),
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
                json!({"metric": metric,
                "value": rng.random_range(0..100_000u32), "labels": {"method": "GET", "status": "200"}}),
            ),
        }
    }
}

/// A random `worker.status`.
fn worker_status(rng: &mut ThreadRng) -> (&'static str, serde_json::Value) {
    let total = 4u32;
    let active = rng.random_range(0..=total);
    (
        "worker.status",
        json!({"active_workers": active, "total_workers": total,
        "queue_size": rng.random_range(0..500u32), "utilization": f64::from(active) / f64::from(total)}),
    )
}

/// A random `queue.update`.
fn queue_update(rng: &mut ThreadRng) -> (&'static str, serde_json::Value) {
    let (pending, running) = (rng.random_range(0..200u32), rng.random_range(0..20u32));
    (
        "queue.update",
        json!({"pending": pending, "running": running,
        "completed": rng.random_range(0..5000u32), "failed": rng.random_range(0..100u32),
        "total": pending + running}),
    )
}

/// A random scrape event of job `job`.
fn scrape_event(
    job: &str,
    jurisdiction: &str,
    rng: &mut ThreadRng,
) -> (&'static str, serde_json::Value) {
    match rng.random_range(0..4u8) {
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
    }
}

/// A random event of case `case`.
fn case_event(
    case: &str,
    jurisdiction: &str,
    rng: &mut ThreadRng,
) -> (&'static str, serde_json::Value) {
    match rng.random_range(0..4u8) {
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
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a serde_json::Value,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// One event for `room` with sequence number `seq`; `None` for a room without events.
pub(crate) fn event(room: &str, seq: Seq, rng: &mut ThreadRng) -> Option<String> {
    let (family, named) = Family::of(room, rng)?;
    let (kind, data) = family.event(named, rng);
    let timestamp = now_rfc3339();
    let event = Event {
        kind,
        data: &data,
        timestamp: &timestamp,
        seq: seq.field(),
    };
    serde_json::to_string(&event).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(room: &str) -> serde_json::Value {
        serde_json::from_str(&event(room, Seq::shown(7), &mut rand::rng()).unwrap()).unwrap()
    }

    #[test]
    fn named_rooms_carry_their_ids() {
        assert_eq!(one("scrape:job_1")["data"]["job_id"], "job_1");
        assert_eq!(
            one("case:cth/HCA/2023/15")["data"]["case_id"],
            "cth/HCA/2023/15"
        );
        assert_eq!(one("cases:Singapore")["data"]["jurisdiction"], "Singapore");
        assert_eq!(one("search:s1")["data"]["search_id"], "s1");
        assert_eq!(one("metrics:cpu")["data"]["metric"], "cpu");
        assert_eq!(one("alerts:system")["type"], "system.alert");
        assert_eq!(one("queue:all")["seq"], 7);
        assert!(event("workers:x", Seq::shown(1), &mut rand::rng()).is_none());
        let hidden = Seq { n: 7, shown: false };
        let strict: serde_json::Value =
            serde_json::from_str(&event("queue:all", hidden, &mut rand::rng()).unwrap()).unwrap();
        assert!(strict.get("seq").is_none(), "{strict}");
    }
}
