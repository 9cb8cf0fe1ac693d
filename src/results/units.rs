//! Figures for people: durations, byte counts and rates, the way every reader of the results
//! (renderers, verdicts, warnings) prints them.

/// A duration in µs for people: `850µs`, `1.25ms`, `12.3ms`, `250ms`, `1.50s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 100_000.0 {
        format!("{:.1}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A byte count for people, in decimal units: `512B`, `1.5kB`, `12.0MB`, `3.2GB`.
pub fn fmt_bytes(b: f64) -> String {
    match b {
        b if b < 1e3 => format!("{b:.0}B"),
        b if b < 1e6 => format!("{:.1}kB", b / 1e3),
        b if b < 1e9 => format!("{:.1}MB", b / 1e6),
        b => format!("{:.1}GB", b / 1e9),
    }
}

/// `41,200`, `950`, `12.5`: whole numbers with thousands separators from 100 up.
pub fn fmt_rate(r: f64) -> String {
    if r < 100.0 {
        let s = format!("{r:.2}");
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let digits = format!("{:.0}", r);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_well() {
        assert_eq!(fmt_rate(41_200.0), "41,200");
        assert_eq!(fmt_rate(1_000_000.0), "1,000,000");
        assert_eq!(fmt_rate(950.4), "950");
        assert_eq!(fmt_rate(12.5), "12.5");
        assert_eq!(fmt_rate(3.0), "3");
    }

    #[test]
    fn human_units() {
        assert_eq!(fmt_us(850.0), "850µs");
        assert_eq!(fmt_us(1_250.0), "1.25ms");
        assert_eq!(fmt_us(12_340.0), "12.3ms");
        assert_eq!(fmt_us(250_000.0), "250ms");
        assert_eq!(fmt_us(1_500_000.0), "1.50s");
        assert_eq!(fmt_bytes(512.0), "512B");
        assert_eq!(fmt_bytes(1_500.0), "1.5kB");
        assert_eq!(fmt_bytes(12_000_000.0), "12.0MB");
    }
}
