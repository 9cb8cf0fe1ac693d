//! Wall-clock timestamps in the RFC 3339 form every Kite frame carries, and the monotonic
//! clock `--stamp` reads.

use std::time::{SystemTime, UNIX_EPOCH};

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock every process on the host shares (and
/// the one Rust's `Instant` reads on Linux). `--stamp` puts it in replies; a client on the
/// same host reads the same clock to check its latencies against it.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

/// Formats the current UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds).
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_micros(since.as_micros() as i64)
}

/// Formats microseconds since the Unix epoch; split out so tests can pin a value.
pub fn format_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Works in 400-year eras (146,097 days each) starting on March 1st, so the leap
/// day is the last day of the shifted year and needs no special case.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of era, 0..146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March-based month, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::format_micros;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.123456Z, a leap day.
        assert_eq!(
            format_micros(1_709_210_096_123_456),
            "2024-02-29T12:34:56.123456Z"
        );
        assert_eq!(
            format_micros(951_868_800_000_001),
            "2000-03-01T00:00:00.000001Z"
        );
    }
}
