//! Figures for people: durations, byte counts, rates and ranked counters, shared by every
//! renderer so that they all print a figure the same way.

use std::collections::BTreeMap;

pub use crate::results::units::{fmt_bytes, fmt_rate, fmt_us};

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

#[cfg(test)]
mod tests {
    use super::*;

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
