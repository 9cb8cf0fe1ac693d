//! `--shard I/N` and `--start-at`: reading them from the command line, and waiting for the
//! common start so the shards' phases line up.

use std::time::{Duration, SystemTime};

pub use crate::swarm::schedule::Shard;

/// How late past `--start-at` a shard may begin before it says so.
const LATE_WARNING: Duration = Duration::from_secs(1);

/// Reads `I/N` (1 ≤ I ≤ N); the message says what to write instead.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let hint = "write I/N with 1 ≤ I ≤ N, e.g. --shard 1/4 for the first of four shards";
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}' is not a shard: {hint}"))?;
    let num = |x: &str| x.trim().parse::<u32>().ok();
    match (num(i), num(n)) {
        (Some(_), Some(0)) => Err(format!("'{s}': there must be at least one shard; {hint}")),
        (Some(0), Some(_)) => Err(format!("'{s}': shards count from 1; {hint}")),
        (Some(i), Some(n)) if i > n => Err(format!("'{s}': shard {i} of only {n}; {hint}")),
        (Some(index), Some(count)) => Ok(Shard { index, count }),
        _ => Err(format!("'{s}' is not a shard: {hint}")),
    }
}

/// Reads `I/N` with I counted from `base`: 1 is `--shard`'s own numbering (1 ≤ I ≤ N); 0 is
/// Kubernetes' `JOB_COMPLETION_INDEX` (0 ≤ I < N), taken as shard I + 1.
pub fn parse_shard_based(s: &str, base: u32) -> Result<Shard, String> {
    if base == 1 {
        return parse_shard(s);
    }
    let hint = "with --shard-base 0 write I/N with 0 ≤ I < N, e.g. --shard 0/4 for the first \
                of four shards";
    let num = |x: &str| x.trim().parse::<u32>().ok();
    match s.split_once('/').map(|(i, n)| (num(i), num(n))) {
        _ if base != 0 => Err(format!("--shard-base {base}: shards count from 0 or 1")),
        Some((Some(_), Some(0))) => Err(format!("'{s}': there must be at least one shard; {hint}")),
        Some((Some(i), Some(n))) if i >= n => Err(format!(
            "'{s}': index {i} of only {n} shards (0 to {}); {hint}",
            n - 1
        )),
        Some((Some(i), Some(count))) => Ok(Shard {
            index: i + 1,
            count,
        }),
        _ => Err(format!("'{s}' is not a shard: {hint}")),
    }
}

/// Reads an RFC 3339 UTC time (`2026-12-07T12:00:00Z`).
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(s).map_err(|e| {
        format!("'{s}' is not an RFC 3339 UTC time ({e}); write e.g. 2026-12-07T12:00:00Z")
    })
}

/// Whether `spec` names a shard that exists; the message says what to write.
pub fn check(spec: Shard) -> Result<(), String> {
    parse_shard(&format!("{}/{}", spec.index, spec.count)).map(|_| ())
}

/// Waits until `at`. A start already past is not waited for: the warning it returns says
/// how late the shard begins (phases then lag the other shards' by that much).
pub async fn wait_until(at: SystemTime) -> Option<String> {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            // Sleeps on the monotonic clock; a wall-clock step while waiting is not followed.
            tokio::time::sleep(wait).await;
            None
        }
        Err(late) if late.duration() > LATE_WARNING => Some(format!(
            "--start-at {} was {:.1} s ago: this shard's phases lag by that much",
            humantime::format_rfc3339_millis(at),
            late.duration().as_secs_f64()
        )),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_specs_parse() {
        assert_eq!(parse_shard("1/1"), Ok(Shard { index: 1, count: 1 }));
        assert_eq!(
            parse_shard("3/16"),
            Ok(Shard {
                index: 3,
                count: 16
            })
        );
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        for bad in [
            "0/4", "5/4", "1/0", "0/0", "x", "1-4", "1/", "/4", "-1/4", "1/4/2", "",
        ] {
            let e = parse_shard(bad).unwrap_err();
            assert!(e.contains("write I/N"), "{bad}: {e}");
        }
        assert!(parse_shard("5/4")
            .unwrap_err()
            .contains("shard 5 of only 4"));
        assert!(parse_shard("0/4").unwrap_err().contains("count from 1"));
    }

    #[test]
    fn zero_based_specs_are_kubernetes_indexes() {
        assert_eq!(
            parse_shard_based("0/4", 0),
            Ok(Shard { index: 1, count: 4 })
        );
        assert_eq!(
            parse_shard_based("3/4", 0),
            Ok(Shard { index: 4, count: 4 })
        );
        assert_eq!(
            parse_shard_based("4/4", 1),
            Ok(Shard { index: 4, count: 4 })
        );
        for bad in ["4/4", "0/0", "x/4", "1", "-1/4"] {
            let e = parse_shard_based(bad, 0).unwrap_err();
            assert!(e.contains("0 ≤ I < N"), "{bad}: {e}");
        }
        assert!(parse_shard_based("1/4", 2).unwrap_err().contains("0 or 1"));
    }

    #[test]
    fn start_at_is_rfc3339_utc() {
        let t = parse_start_at("2026-12-07T12:00:00Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339(t).to_string(),
            "2026-12-07T12:00:00Z"
        );
        assert!(parse_start_at("tomorrow")
            .unwrap_err()
            .contains("2026-12-07T12:00:00Z"));
    }

    #[tokio::test]
    async fn a_past_start_is_not_waited_for_but_said() {
        let past = SystemTime::now() - Duration::from_secs(30);
        let w = wait_until(past).await.unwrap();
        assert!(w.contains("lag by"), "{w}");
    }
}
