//! Threshold expressions (`latency.ack.p99 < 50ms`): the syntax tree and its parser.
//!
//! Evaluation against results lives in `check::verdict`.
//!
//! CONTRACT: the types below are shared by the scenario and report work; change them only
//! additively (the scenario library added `Delivery` and `Upload`).

use super::pos::Pos;

/// A parsed threshold such as `latency.subscribe_ack.p99 < 50ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub source: String,
    /// Where it stands in the scenario file.
    pub pos: Pos,
    /// The measured quantity.
    pub lhs: Quantity,
    /// The comparison.
    pub op: Cmp,
    /// The bound in canonical units: microseconds for times, a fraction for rates
    /// (`0.1%` is 0.001), per second for throughput, plain numbers for counts.
    pub rhs: f64,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    /// `latency.<metric>.<stat>`: latency from the intended send time, µs.
    Latency {
        /// Metric name as declared by an `expect`/`pace` `metric:`.
        metric: String,
        /// Which statistic.
        stat: Stat,
    },
    /// `service.<metric>.<stat>`: latency from the actual send time, µs.
    Service {
        /// Metric name.
        metric: String,
        /// Which statistic.
        stat: Stat,
    },
    /// `connect.<stat>`: connection setup time (TCP + TLS + upgrade), µs.
    Connect(Stat),
    /// `errors.count`: all errors.
    ErrorsCount,
    /// `errors.rate`: errors / operations (connect attempts + expects + paced requests).
    ErrorsRate,
    /// `errors.<kind>`: errors of one kind (e.g. `timeout`, `http_429`).
    ErrorsOfKind(String),
    /// `connections.failed`.
    ConnectionsFailed,
    /// `connections.opened`.
    ConnectionsOpened,
    /// `throughput.in`: inbound messages per second over the run.
    ThroughputIn,
    /// `throughput.out`: outbound messages per second over the run.
    ThroughputOut,
    /// `iterations.count`: completed iterations.
    Iterations,
    /// `missed.count`: sends that could not happen at their intended time.
    Missed,
    /// `violations` (every protocol violation) or `violations["<kind>"]` (those of one
    /// message kind).
    Violations(Option<String>),
    /// `violations.rate`: frames with a violation / frames checked.
    ViolationsRate,
    /// `delivery.<stat>`: fan-out delivery tracked by the scenario's `delivery:` block.
    Delivery(DeliveryStat),
    /// `upload.<metric>.<stat>`: the uploads of the `upload` steps with that `metric:`.
    Upload {
        /// Metric name of the upload step(s).
        metric: String,
        /// Which figure.
        stat: UploadStat,
    },
}

/// A delivery figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStat {
    /// `received`: distinct sequence numbers received (a count).
    Received,
    /// `gaps`: sequence numbers skipped and never received (a count).
    Gaps,
    /// `reordered`: frames that arrived after a higher number of their stream (a count).
    Reordered,
    /// `duplicates`: numbers received more than once, the repeats (a count).
    Duplicates,
    /// `completeness`: received / (received + gaps), a fraction.
    Completeness,
}

/// An upload figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStat {
    /// `mbps`: bytes of completed uploads / their summed completion time, in MB/s (10^6 B/s).
    Mbps,
    /// `completed`: uploads that ended in `complete` (a count).
    Completed,
    /// `rejected`: uploads that ended in their `expect_error` reply (a count).
    Rejected,
    /// `failed`: uploads that timed out, lost their connection or ended the wrong way.
    Failed,
}

/// A statistic of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// `min`.
    Min,
    /// `mean`.
    Mean,
    /// `max`.
    Max,
    /// `pNN` (`p50`, `p99`, `p99.9`): the percentile, 0–100.
    Percentile(f64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    /// Whether `lhs op rhs` holds.
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Cmp::Lt => lhs < rhs,
            Cmp::Le => lhs <= rhs,
            Cmp::Gt => lhs > rhs,
            Cmp::Ge => lhs >= rhs,
            Cmp::Eq => lhs == rhs,
            Cmp::Ne => lhs != rhs,
        }
    }
}

/// A threshold that does not parse: where (byte offset in the expression) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ThresholdSyntaxError {
    /// Byte offset in the threshold text where the problem starts.
    pub offset: usize,
    /// What is wrong (with an example of the right form where useful).
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, ThresholdSyntaxError> {
    Err(ThresholdSyntaxError {
        offset,
        message: message.into(),
    })
}

/// The quantity names, for did-you-mean.
const QUANTITIES: [&str; 22] = [
    "delivery.received",
    "delivery.gaps",
    "delivery.reordered",
    "delivery.duplicates",
    "delivery.completeness",
    "delivery",
    "upload",
    "latency",
    "service",
    "connect",
    "errors.count",
    "errors.rate",
    "errors",
    "connections.failed",
    "connections.opened",
    "throughput.in",
    "throughput.out",
    "iterations.count",
    "missed.count",
    "connections",
    "violations",
    "violations.rate",
];

/// How a quantity's bound is written.
#[derive(Clone, Copy)]
enum Unit {
    Time,
    Fraction,
    PerSecond,
    MegabytesPerSecond,
    Count,
}

/// Parses `<quantity> <op> <bound>`, e.g. `latency.ack.p99 < 50ms`, `errors.rate < 0.1%`.
///
/// Bounds come out in canonical units: µs for times, a fraction for rates, per second for
/// throughput, plain numbers for counts. Offsets in errors are byte offsets into `src`.
pub fn parse(src: &str) -> Result<(Quantity, Cmp, f64), ThresholdSyntaxError> {
    let start = src.len() - src.trim_start().len();
    let lhs_len = src[start..]
        .find(|c: char| c.is_whitespace() || "<>=!".contains(c))
        .unwrap_or(src.len() - start);
    let lhs = &src[start..start + lhs_len];
    if lhs.is_empty() {
        return fail(start, "expected a quantity such as latency.<metric>.p99");
    }
    let (quantity, unit) = quantity(lhs, start)?;
    let mut i = start + lhs_len;
    i += src[i..].len() - src[i..].trim_start().len();
    let ops = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ];
    let Some((tok, op)) = ops.iter().find(|(t, _)| src[i..].starts_with(t)) else {
        return fail(i, "expected a comparison: <, <=, >, >=, == or !=");
    };
    i += tok.len();
    i += src[i..].len() - src[i..].trim_start().len();
    let rhs = src[i..].trim_end();
    if rhs.is_empty() {
        return fail(i, "expected a bound after the comparison");
    }
    Ok((quantity, *op, bound(rhs, i, unit)?))
}

fn quantity(lhs: &str, at: usize) -> Result<(Quantity, Unit), ThresholdSyntaxError> {
    if let Some(inner) = lhs.strip_prefix("violations[") {
        return violations_of(lhs, inner, at);
    }
    let (head, tail) = lhs.split_once('.').unwrap_or((lhs, ""));
    let tail_at = at + head.len() + 1;
    let q = match (head, tail) {
        ("latency" | "service", _) => return latency(head, tail, tail_at),
        ("connect", s) => return Ok((Quantity::Connect(stat(s, tail_at)?), Unit::Time)),
        ("errors", "count") => (Quantity::ErrorsCount, Unit::Count),
        ("errors", "rate") => (Quantity::ErrorsRate, Unit::Fraction),
        ("errors", kind) if !kind.is_empty() => {
            (Quantity::ErrorsOfKind(kind.to_owned()), Unit::Count)
        }
        ("connections", "failed") => (Quantity::ConnectionsFailed, Unit::Count),
        ("connections", "opened") => (Quantity::ConnectionsOpened, Unit::Count),
        ("throughput", "in") => (Quantity::ThroughputIn, Unit::PerSecond),
        ("throughput", "out") => (Quantity::ThroughputOut, Unit::PerSecond),
        ("iterations", "count") => (Quantity::Iterations, Unit::Count),
        ("missed", "count") => (Quantity::Missed, Unit::Count),
        ("violations", "" | "count") => (Quantity::Violations(None), Unit::Count),
        ("violations", "rate") => (Quantity::ViolationsRate, Unit::Fraction),
        ("delivery", "received") => (Quantity::Delivery(DeliveryStat::Received), Unit::Count),
        ("delivery", "gaps") => (Quantity::Delivery(DeliveryStat::Gaps), Unit::Count),
        ("delivery", "reordered") => (Quantity::Delivery(DeliveryStat::Reordered), Unit::Count),
        ("delivery", "duplicates") => (Quantity::Delivery(DeliveryStat::Duplicates), Unit::Count),
        ("delivery", "completeness") => (
            Quantity::Delivery(DeliveryStat::Completeness),
            Unit::Fraction,
        ),
        ("upload", _) => return upload(tail, tail_at),
        _ => {
            let near = QUANTITIES
                .iter()
                .map(|q| (strsim::jaro_winkler(lhs, q), q))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, q)| format!(" (did you mean '{q}'?)"))
                .unwrap_or_default();
            return fail(at, format!("unknown quantity '{lhs}'{near}"));
        }
    };
    Ok(q)
}

/// `violations["<kind>"]` (`inner`: what follows `violations[`).
fn violations_of(
    lhs: &str,
    inner: &str,
    at: usize,
) -> Result<(Quantity, Unit), ThresholdSyntaxError> {
    let Some(quoted) = inner.strip_suffix(']') else {
        return fail(at + lhs.len(), "expected ] after violations[\"<kind>\"");
    };
    let kind = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .or_else(|| quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')));
    match kind {
        Some(k) if !k.is_empty() => Ok((Quantity::Violations(Some(k.to_owned())), Unit::Count)),
        _ => fail(
            at + "violations[".len(),
            "expected a quoted kind: violations[\"<kind>\"]",
        ),
    }
}

/// `<metric>.<stat>` after `latency.` or `service.` (`head`).
fn latency(
    head: &str,
    tail: &str,
    tail_at: usize,
) -> Result<(Quantity, Unit), ThresholdSyntaxError> {
    let Some((metric, stat_src)) = tail.split_once('.') else {
        return fail(
            tail_at,
            format!("expected {head}.<metric>.<stat>, e.g. {head}.rtt.p99"),
        );
    };
    let stat = stat(stat_src, tail_at + metric.len() + 1)?;
    let metric = metric.to_owned();
    let q = if head == "latency" {
        Quantity::Latency { metric, stat }
    } else {
        Quantity::Service { metric, stat }
    };
    Ok((q, Unit::Time))
}

/// `<metric>.<stat>` after `upload.`.
fn upload(tail: &str, at: usize) -> Result<(Quantity, Unit), ThresholdSyntaxError> {
    let Some((metric, stat)) = tail.split_once('.').filter(|(m, _)| !m.is_empty()) else {
        return fail(
            at,
            "expected upload.<metric>.<stat>, e.g. upload.upload.mbps",
        );
    };
    let (stat, unit) = match stat {
        "mbps" => (UploadStat::Mbps, Unit::MegabytesPerSecond),
        "completed" => (UploadStat::Completed, Unit::Count),
        "rejected" => (UploadStat::Rejected, Unit::Count),
        "failed" => (UploadStat::Failed, Unit::Count),
        other => {
            return fail(
                at + metric.len() + 1,
                format!("unknown upload figure '{other}': use mbps, completed, rejected or failed"),
            )
        }
    };
    let metric = metric.to_owned();
    Ok((Quantity::Upload { metric, stat }, unit))
}

fn stat(s: &str, at: usize) -> Result<Stat, ThresholdSyntaxError> {
    match s {
        "min" => return Ok(Stat::Min),
        "mean" => return Ok(Stat::Mean),
        "max" => return Ok(Stat::Max),
        _ => {}
    }
    match s.strip_prefix('p').map(str::parse::<f64>) {
        Some(Ok(p)) if p > 0.0 && p <= 100.0 => Ok(Stat::Percentile(p)),
        _ => fail(
            at,
            format!(
                "unknown statistic '{s}': use min, mean, max or a percentile such as p99, p99.9"
            ),
        ),
    }
}

/// Splits a leading decimal number from its unit.
fn number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    // `e` may start a unit rather than an exponent; back off until the number parses.
    (1..=end)
        .rev()
        .find_map(|e| s[..e].parse::<f64>().ok().map(|n| (n, s[e..].trim_start())))
        .filter(|(n, _)| n.is_finite())
}

/// Microseconds per `suffix` of a time bound (`rhs` at `at`, its suffix at `suffix_at`).
fn time_scale(
    rhs: &str,
    suffix: &str,
    at: usize,
    suffix_at: usize,
) -> Result<f64, ThresholdSyntaxError> {
    match suffix {
        "us" | "µs" => Ok(1.0),
        "ms" => Ok(1e3),
        "s" => Ok(1e6),
        "m" => Ok(60e6),
        "" => fail(
            at,
            format!("'{rhs}' needs a time unit: write e.g. {rhs}ms, 1.5s or 200us"),
        ),
        u => fail(
            suffix_at,
            format!("unknown time unit '{u}': use us, ms, s or m"),
        ),
    }
}

fn bound(rhs: &str, at: usize, unit: Unit) -> Result<f64, ThresholdSyntaxError> {
    let Some((n, suffix)) = number(rhs) else {
        return fail(at, format!("'{rhs}' is not a number"));
    };
    let suffix_at = at + rhs.len() - suffix.len();
    match unit {
        Unit::Time => Ok(n * time_scale(rhs, suffix, at, suffix_at)?),
        Unit::Fraction => match suffix {
            "%" => Ok(n / 100.0),
            "" => Ok(n),
            u => fail(
                suffix_at,
                format!("a rate is a percentage or a fraction (0.1% or 0.001), not '{u}'"),
            ),
        },
        Unit::PerSecond => {
            let per = match suffix {
                "" | "/s" => 1.0,
                "/m" => 60.0,
                "/ms" => 1e-3,
                u => {
                    return fail(
                        suffix_at,
                        format!("throughput is per second (100/s or 6000/m), not '{u}'"),
                    )
                }
            };
            Ok(n / per)
        }
        Unit::MegabytesPerSecond => match suffix {
            "" | "MB/s" => Ok(n),
            u => fail(
                suffix_at,
                format!("upload throughput is in MB/s (10 or 10MB/s), not '{u}'"),
            ),
        },
        Unit::Count => {
            if !suffix.is_empty() || n.fract() != 0.0 || n < 0.0 {
                return fail(
                    at,
                    format!("'{rhs}' is not a count: write a whole number such as 0"),
                );
            }
            Ok(n)
        }
    }
}

#[cfg(test)]
#[path = "thresholds_tests.rs"]
mod tests;
