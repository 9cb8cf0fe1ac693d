//! `command` requests: `execute` (ECS Exec) answered by `command_ack`, and `get_metrics`
//! answered by `metrics` with simulated CloudWatch-style statistics.

use rand::RngExt;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::rooms::is_ecs_name;
use super::wire::{frame, payload, Code, Fault, Text};
use crate::clock::format_micros;

/// Most metrics one `get_metrics` may ask for.
pub const MAX_METRICS: usize = 16;

/// The metrics the document names (its `get_metrics` example): the first entries of
/// [`METRICS`], all that `--strict-doc` knows.
const DOCUMENTED_METRICS: usize = 2;

/// The metrics the server knows, with their CloudWatch unit.
const METRICS: [(&str, Unit); 9] = [
    ("CPUUtilization", Unit::Percent),
    ("MemoryUtilization", Unit::Percent),
    ("CPUReservation", Unit::Percent),
    ("MemoryReservation", Unit::Percent),
    ("RunningTaskCount", Unit::Count),
    ("PendingTaskCount", Unit::Count),
    ("DesiredTaskCount", Unit::Count),
    ("NetworkRxBytes", Unit::Bytes),
    ("NetworkTxBytes", Unit::Bytes),
];

const STATISTICS: [&str; 5] = ["Average", "Maximum", "Minimum", "Sum", "SampleCount"];

/// The resource type and the part after it in an ECS ARN
/// (`arn:aws:ecs:us-east-1:000000000000:task/production/abc` → `("task", "production/abc")`).
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let ok = parts.next() == Some("arn")
        && parts.next()?.starts_with("aws")
        && parts.next() == Some("ecs")
        && !parts.next()?.is_empty();
    let account = parts.next()?;
    if !ok || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (kind, rest) = parts.next()?.split_once('/')?;
    (!kind.is_empty() && !rest.is_empty()).then_some((kind, rest))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Execute<'a> {
    #[serde(borrow)]
    cluster: Text<'a>,
    #[serde(borrow)]
    task: Text<'a>,
    #[serde(borrow)]
    container: Text<'a>,
    #[serde(borrow)]
    command: Text<'a>,
    #[serde(default, rename = "interactive")]
    _interactive: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CommandAck<'a> {
    session_id: &'a str,
    websocket_url: &'a str,
}

/// `execute`: checks the target and answers with an exec session on `host`.
pub(crate) fn execute(id: &str, raw: Option<&RawValue>, host: &str) -> Result<String, Fault> {
    let req: Execute<'_> = payload(raw, "payload")?;
    if !is_ecs_name(&req.cluster) {
        return Err(Fault::invalid("cluster", "not an ECS cluster name"));
    }
    if !is_ecs_name(&req.container) {
        return Err(Fault::invalid("container", "not an ECS container name"));
    }
    if req.command.trim().is_empty() {
        return Err(Fault::invalid("command", "the command is empty"));
    }
    let Some(("task", rest)) = parse_arn(&req.task) else {
        return Err(Fault::invalid("task", "not an ECS task ARN"));
    };
    // New-style task ARNs name their cluster: the task must be in the cluster asked for.
    if let Some((cluster, _)) = rest.split_once('/') {
        if cluster != &*req.cluster {
            let reason = format!("task is in cluster '{cluster}', not '{}'", &*req.cluster);
            return Err(
                Fault::new(Code::ResourceNotFound, "task_not_found", "Task not found")
                    .at("task", reason),
            );
        }
    }
    let session_id = format!("exec-{}", uuid::Uuid::new_v4());
    let url = format!("ws://{host}/exec/{session_id}");
    let ack = CommandAck {
        session_id: &session_id,
        websocket_url: &url,
    };
    Ok(frame("command_ack", Some(id), Some(ack)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetMetrics<'a> {
    #[serde(borrow)]
    resource: Text<'a>,
    #[serde(rename = "resourceArn", borrow)]
    resource_arn: Text<'a>,
    #[serde(borrow)]
    metrics: Vec<Text<'a>>,
    #[serde(default)]
    period: Option<u32>,
    #[serde(default, borrow)]
    statistics: Option<Vec<Text<'a>>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Unit {
    Percent,
    Count,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
        }
    }

    /// A plausible average for the unit.
    fn sample(self, rng: &mut impl RngExt) -> f64 {
        let v: f64 = match self {
            Unit::Percent => rng.random_range(5.0..80.0),
            Unit::Count => f64::from(rng.random_range(0..20u32)),
            Unit::Bytes => rng.random_range(1e3..1e7),
        };
        (v * 10.0).round() / 10.0
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Series<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    average: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_count: Option<f64>,
    unit: &'static str,
    datapoints: [Datapoint<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Datapoint<'a> {
    timestamp: &'a str,
    value: f64,
}

/// `metrics.payload.metrics`: metric name → series, in request order.
struct SeriesMap<'a>(Vec<(&'a str, Series<'a>)>);

impl Serialize for SeriesMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, series) in &self.0 {
            map.serialize_entry(name, series)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsPayload<'a> {
    resource_arn: &'a str,
    metrics: SeriesMap<'a>,
}

/// The metrics asked for (name and unit) and the statistics to report.
type Wanted<'r> = (Vec<(&'r str, Unit)>, Vec<&'r str>);

/// The metric names and statistics asked for, checked; `strict`: only the document's metrics.
fn checked<'r>(req: &'r GetMetrics<'_>, strict: bool) -> Result<Wanted<'r>, Fault> {
    const RESOURCES: [&str; 4] = ["cluster", "service", "task", "container"];
    if !RESOURCES.contains(&&*req.resource) {
        let reason = format!("one of {}", RESOURCES.join(", "));
        return Err(Fault::invalid("resource", reason));
    }
    match parse_arn(&req.resource_arn) {
        Some((kind, _)) if kind == &*req.resource => {}
        _ => {
            let reason = format!("not an ECS {} ARN", &*req.resource);
            return Err(Fault::invalid("resourceArn", reason));
        }
    }
    if req.metrics.is_empty() || req.metrics.len() > MAX_METRICS {
        return Err(Fault::invalid(
            "metrics",
            format!("1 to {MAX_METRICS} metric names"),
        ));
    }
    let served = if strict {
        &METRICS[..DOCUMENTED_METRICS]
    } else {
        &METRICS[..]
    };
    let mut metrics = Vec::with_capacity(req.metrics.len());
    for name in &req.metrics {
        let Some(&(known, unit)) = served.iter().find(|(m, _)| *m == &**name) else {
            let known: Vec<&str> = served.iter().map(|(m, _)| *m).collect();
            let reason = format!("unknown metric '{}'; known: {}", &**name, known.join(", "));
            // A bad parameter, as the document's own error example answers one.
            return Err(
                Fault::new(Code::InvalidRequest, "unknown_metric", "Metric not found")
                    .at("metrics", reason),
            );
        };
        if metrics.iter().any(|(m, _)| *m == known) {
            return Err(Fault::invalid(
                "metrics",
                format!("'{known}' is listed twice"),
            ));
        }
        metrics.push((known, unit));
    }
    Ok((metrics, statistics(req)?))
}

/// The statistics asked for, each known, once; `Average` and `Maximum` when none.
fn statistics<'r>(req: &'r GetMetrics<'_>) -> Result<Vec<&'r str>, Fault> {
    let mut stats = Vec::new();
    for stat in req.statistics.iter().flatten() {
        let Some(&known) = STATISTICS.iter().find(|s| **s == &**stat) else {
            let reason = format!(
                "unknown statistic '{}'; one of {}",
                &**stat,
                STATISTICS.join(", ")
            );
            return Err(Fault::invalid("statistics", reason));
        };
        if !stats.contains(&known) {
            stats.push(known);
        }
    }
    if stats.is_empty() {
        stats = vec!["Average", "Maximum"];
    }
    Ok(stats)
}

/// `get_metrics`: one simulated datapoint per metric, at the start of the current period.
pub(crate) fn get_metrics(id: &str, raw: Option<&RawValue>, strict: bool) -> Result<String, Fault> {
    let req: GetMetrics<'_> = payload(raw, "payload")?;
    let (metrics, stats) = checked(&req, strict)?;
    let period = req.period.unwrap_or(60);
    if period == 0 {
        return Err(Fault::invalid("period", "at least 1 second"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let period_us = i64::from(period) * 1_000_000;
    let start = format_micros(now - now.rem_euclid(period_us));
    let mut rng = rand::rng();
    let samples = f64::from(period.div_ceil(60));
    let series = metrics
        .iter()
        .map(|&(name, unit)| {
            let avg = unit.sample(&mut rng);
            let max = if unit == Unit::Percent {
                (avg + rng.random_range(0.0..20.0f64)).min(100.0)
            } else {
                avg * 1.5
            };
            let want = |s: &str| stats.contains(&s);
            let round = |v: f64| (v * 10.0).round() / 10.0;
            let s = Series {
                average: want("Average").then_some(avg),
                maximum: want("Maximum").then_some(round(max)),
                minimum: want("Minimum").then_some(round(avg * 0.5)),
                sum: want("Sum").then_some(round(avg * samples)),
                sample_count: want("SampleCount").then_some(samples),
                unit: unit.name(),
                datapoints: [Datapoint {
                    timestamp: &start,
                    value: avg,
                }],
            };
            (name, s)
        })
        .collect();
    let payload = MetricsPayload {
        resource_arn: &req.resource_arn,
        metrics: SeriesMap(series),
    };
    Ok(frame("metrics", Some(id), Some(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    const TASK: &str = "arn:aws:ecs:us-east-1:000000000000:task/production/1234567890abcdef";

    #[test]
    fn arns_are_parsed() {
        assert_eq!(
            parse_arn(TASK),
            Some(("task", "production/1234567890abcdef"))
        );
        assert_eq!(parse_arn("arn:aws:ecs:us-east-1:123:task/x"), None);
        assert_eq!(parse_arn("arn:aws:s3:us-east-1:000000000000:task/x"), None);
        assert_eq!(parse_arn("nope"), None);
    }

    #[test]
    fn execute_checks_the_task_and_cluster() {
        let body = |cluster: &str, task: &str| {
            raw(&format!(
                r#"{{"cluster":"{cluster}","task":"{task}","container":"webapp","command":"/bin/bash","interactive":true}}"#
            ))
        };
        let ack: serde_json::Value =
            serde_json::from_str(&execute("c1", Some(&body("production", TASK)), "h:1").unwrap())
                .unwrap();
        let sid = ack["payload"]["sessionId"].as_str().unwrap();
        assert_eq!(
            ack["payload"]["websocketUrl"],
            format!("ws://h:1/exec/{sid}")
        );
        assert_eq!(ack["id"], "c1");
        let e = execute("c", Some(&body("staging", TASK)), "h").unwrap_err();
        assert_eq!(e.code, Code::ResourceNotFound);
        let e = execute("c", Some(&body("production", "task-1")), "h").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("task"));
        let e = execute("c", Some(&raw(r#"{"cluster":"p"}"#)), "h").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("task"), "{e:?}");
    }

    #[test]
    fn metrics_answer_each_metric_with_the_statistics_asked() {
        let arn = "arn:aws:ecs:us-east-1:000000000000:service/production/web-api";
        let req = format!(
            r#"{{"resource":"service","resourceArn":"{arn}","metrics":["CPUUtilization","RunningTaskCount"],"period":60,"statistics":["Maximum","Sum"]}}"#
        );
        let v: serde_json::Value =
            serde_json::from_str(&get_metrics("m", Some(&raw(&req)), false).unwrap()).unwrap();
        let cpu = &v["payload"]["metrics"]["CPUUtilization"];
        assert_eq!(cpu["Unit"], "Percent");
        assert!(cpu["Maximum"].as_f64().unwrap() <= 100.0);
        assert!(cpu["Average"].is_null(), "not asked for");
        assert_eq!(v["payload"]["metrics"]["RunningTaskCount"]["Unit"], "Count");
        let ts = cpu["Datapoints"][0]["Timestamp"].as_str().unwrap();
        assert!(ts.ends_with(":00.000000Z"), "{ts}");
        let bad = req.replace("RunningTaskCount", "Bogus");
        assert_eq!(
            get_metrics("m", Some(&raw(&bad)), false).unwrap_err().code,
            Code::InvalidRequest
        );
        // --strict-doc knows only the document's two metrics.
        let strict = get_metrics("m", Some(&raw(&req)), true).unwrap_err();
        assert_eq!(
            (strict.code, strict.field.as_deref()),
            (Code::InvalidRequest, Some("metrics"))
        );
        let documented = req.replace("RunningTaskCount", "MemoryUtilization");
        assert!(get_metrics("m", Some(&raw(&documented)), true).is_ok());
        for (from, to, field) in [
            ("service/", "cluster/", "resourceArn"),
            ("\"Sum\"", "\"Median\"", "statistics"),
            ("60", "0", "period"),
        ] {
            let bad = req.replace(from, to);
            let fault = get_metrics("m", Some(&raw(&bad)), false).unwrap_err();
            assert_eq!(fault.field.as_deref(), Some(field), "{bad}");
        }
    }
}
