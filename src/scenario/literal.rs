//! Unit-carrying literals of the language: durations, rates and sizes.

use std::time::Duration;

/// A literal that does not parse, with an example of the right form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LitError {
    pub message: String,
    pub hint: String,
}

const DURATION_HINT: &str = "write a number and a unit: 250ms, 2s, 1.5s, 2m, 1h, 100us";
const RATE_HINT: &str = "write a count per unit of time: 100/s, 6000/m, 2/ms";
const SIZE_HINT: &str = "write bytes or a number with a unit: 1024, 512KB, 64KiB, 1MiB";

fn err(message: String, hint: &str) -> LitError {
    LitError {
        message,
        hint: hint.to_owned(),
    }
}

/// Splits `1.5ms` into (1.5, "ms"); `None` when there is no leading number.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    let n: f64 = s[..end].parse().ok()?;
    n.is_finite().then_some((n, s[end..].trim_start()))
}

/// Seconds per unit of a duration, `None` for an unknown unit.
fn time_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

/// Parses `250ms`, `2s`, `1.5s`, `2m`, `1h`, `100us`. A bare number has no unit and is refused.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, LitError> {
    let t = s.trim();
    let Some((n, unit)) = split_number(t) else {
        return Err(err(format!("'{t}' is not a duration"), DURATION_HINT));
    };
    if unit.is_empty() {
        return Err(err(format!("duration '{t}' needs a unit"), DURATION_HINT));
    }
    let Some(scale) = time_unit(unit) else {
        return Err(err(
            format!("unknown duration unit '{unit}' in '{t}'"),
            DURATION_HINT,
        ));
    };
    if n < 0.0 {
        return Err(err(
            format!("duration '{t}' must not be negative"),
            DURATION_HINT,
        ));
    }
    Duration::try_from_secs_f64(n * scale)
        .map_err(|_| err(format!("duration '{t}' is too long"), DURATION_HINT))
}

/// Parses a rate such as `100/s`, `6000/m`, `2/ms` into events per second (must be > 0).
pub(crate) fn parse_rate(s: &str) -> Result<f64, LitError> {
    let t = s.trim();
    let Some((count, unit)) = t.split_once('/') else {
        return Err(err(format!("'{t}' is not a rate"), RATE_HINT));
    };
    let count: f64 = match count.trim().parse() {
        Ok(c) if f64::is_finite(c) => c,
        _ => return Err(err(format!("'{t}' is not a rate"), RATE_HINT)),
    };
    let unit = unit.trim();
    // `/1s` and `/s` mean the same; `/10s` spreads the count over ten seconds.
    let per = match split_number(unit) {
        Some((n, u)) => time_unit(u).map(|s| s * n),
        None => time_unit(unit),
    };
    let Some(per) = per.filter(|p| *p > 0.0) else {
        return Err(err(
            format!("unknown time unit '{unit}' in rate '{t}'"),
            RATE_HINT,
        ));
    };
    if count <= 0.0 {
        return Err(err(format!("rate must be positive, got '{t}'"), RATE_HINT));
    }
    Ok(count / per)
}

/// Parses a size: `1024` (bytes), `512KB` (= 512000), `64KiB`, `1MiB`, `2GB`...
pub(crate) fn parse_size(s: &str) -> Result<u64, LitError> {
    let t = s.trim();
    let Some((n, unit)) = split_number(t) else {
        return Err(err(format!("'{t}' is not a size"), SIZE_HINT));
    };
    let scale: f64 = match unit {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(err(
                format!("unknown size unit '{unit}' in '{t}'"),
                SIZE_HINT,
            ))
        }
    };
    let bytes = n * scale;
    if bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err(format!("size '{t}' is out of range"), SIZE_HINT));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(
            parse_duration("5").unwrap_err().message,
            "duration '5' needs a unit"
        );
        assert_eq!(
            parse_duration("5x").unwrap_err().message,
            "unknown duration unit 'x' in '5x'"
        );
        assert_eq!(
            parse_duration("soon").unwrap_err().message,
            "'soon' is not a duration"
        );
        assert!(parse_duration("-1s")
            .unwrap_err()
            .message
            .contains("negative"));
        assert!(parse_duration("1s").is_ok());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert_eq!(parse_rate("6000/m"), Ok(100.0));
        assert_eq!(parse_rate("2/ms"), Ok(2000.0));
        assert_eq!(parse_rate("5/10s"), Ok(0.5));
        assert_eq!(
            parse_rate("-5/s").unwrap_err().message,
            "rate must be positive, got '-5/s'"
        );
        assert!(parse_rate("0/s").is_err());
        assert_eq!(
            parse_rate("100").unwrap_err().message,
            "'100' is not a rate"
        );
        assert!(parse_rate("100/fortnight").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("-1KiB").is_err());
    }
}
