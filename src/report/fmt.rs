//! Figures for people: durations, byte counts, rates and ranked counters, shared by every
//! renderer so that they all print a figure the same way.

use std::collections::BTreeMap;

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

/// A per-second rate over the run, 0 for a run of no length.
pub(super) fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// What a WebSocket close code means (RFC 6455 section 7.4.1, and the IANA registry):
/// `1000 normal`, `1008 policy violation`, `4001 application`; `no close frame` for a
/// connection that ended without one (`none` in results).
pub fn close_label(code: &str) -> String {
    let meaning = match code {
        "none" => return "no close frame".into(),
        "1000" => "normal",
        "1001" => "going away",
        "1002" => "protocol error",
        "1003" => "unsupported data",
        "1005" => "no status",
        "1006" => "abnormal",
        "1007" => "invalid data",
        "1008" => "policy violation",
        "1009" => "message too big",
        "1010" => "extension required",
        "1011" => "internal error",
        "1012" => "service restart",
        "1013" => "try again later",
        "1014" => "bad gateway",
        "1015" => "TLS handshake",
        c if c.starts_with('4') && c.len() == 4 => "application",
        _ => return code.into(),
    };
    format!("{code} {meaning}")
}

/// A counter map as (key, count) pairs, largest first (ties by key).
pub(super) fn ranked(m: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Escapes text for XML and HTML content and quoted attribute values, replacing with
/// U+FFFD the characters neither may carry (C0 controls but tab and newlines, DEL, C1
/// controls, U+FFFE/U+FFFF): frames from a misbehaving server may hold any of them.
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || ('\u{7F}'..='\u{9F}').contains(&c) => out.push('\u{FFFD}'),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn counters_rank_largest_first() {
        let m: BTreeMap<String, u64> = [("1000", 3), ("none", 7), ("1001", 3)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        let keys: Vec<String> = ranked(&m).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["none", "1000", "1001"]);
    }
}
