//! What a cluster accepts as a name: container image references (the distribution
//! project's reference grammar), object names (RFC 1123 labels) and resource quantities.
//! Checked before anything is printed, so a typo is an error here rather than a pod that
//! never starts.

/// Checks an image reference: `[HOST[:PORT]/]PATH[:TAG][@ALGO:HEX]`, PATH lowercase
/// components joined by `/`, each alphanumerics with `.`, `_`, `__` or dashes between.
pub fn image(s: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "--image '{s}': {why}; write e.g. registry.example.com/team/squall:0.1 or \
             localhost:5000/squall@sha256:<64 hex digits>"
        ))
    };
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(Err(why)) = digest.map(check_digest) {
        return bad(why);
    }
    // A tag follows the last `:` that comes after the last `/`.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if tag.is_some_and(|t| !tag_ok(t)) {
        return bad(
            "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
        );
    }
    if name.is_empty() || name.len() > 255 {
        return bad("the name must be 1 to 255 characters");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()))
    {
        if !host(first) {
            return bad(&format!("'{first}' is not a registry host[:port]"));
        }
        parts.remove(0);
    }
    if !parts.iter().all(|p| path_component(p)) {
        return bad("the repository path is lowercase letters and digits, with '.', '_', '__' or '-' between them");
    }
    Ok(())
}

/// Checks a digest, `ALGORITHM:HEX`; what is wrong with it.
fn check_digest(d: &str) -> Result<(), &'static str> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err("a digest is ALGORITHM:HEX");
    };
    let algo_ok = algo.split(['+', '.', '-', '_']).all(|c| {
        c.starts_with(|c: char| c.is_ascii_alphabetic())
            && c.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !algo_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a digest is ALGORITHM:HEX with at least 32 hex digits");
    }
    Ok(())
}

/// Whether `t` is a tag: 1 to 128 word characters, `.` or `-`, not starting with either.
fn tag_ok(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(word)
        && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

fn host(s: &str) -> bool {
    let (h, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || s.starts_with('[') => (h, Some(p)),
        _ => (s, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.split('.').all(|c| {
            !c.is_empty()
                && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

fn path_component(p: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if p.is_empty() || !p.starts_with(alnum) || !p.ends_with(alnum) {
        return false;
    }
    // Between alphanumerics: one '.', one or two '_', or any number of '-'.
    let mut run = String::new();
    for c in p.chars() {
        if alnum(c) {
            let ok = run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.chars().all(|c| c == '-');
            if !ok {
                return false;
            }
            run.clear();
        } else if matches!(c, '.' | '_' | '-') {
            run.push(c);
        } else {
            return false;
        }
    }
    true
}

/// An RFC 1123 label (what Kubernetes takes for most object names): at most `max`
/// lowercase letters, digits and '-', starting and ending alphanumeric.
pub fn label(s: &str, max: usize) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

/// An RFC 1123 subdomain (storage class and claim names): labels joined by '.', at most 253.
pub fn subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|l| label(l, 63))
}

/// `text` made into an RFC 1123 label of at most `max` characters (`run` when nothing of
/// it is left).
pub fn to_label(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    let out = out.trim_matches('-');
    if out.is_empty() {
        "run".into()
    } else {
        out.into()
    }
}

/// A Kubernetes resource quantity (`500m`, `2`, `1.5`, `512Mi`, `1G`, `1e3`).
pub fn quantity(s: &str) -> bool {
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let number = suffixes.iter().find_map(|x| s.strip_suffix(x)).unwrap_or(s);
    let number = match number.split_once(['e', 'E']) {
        Some((n, exp))
            if exp
                .trim_start_matches(['+', '-'])
                .chars()
                .all(|c| c.is_ascii_digit())
                && !exp.trim_start_matches(['+', '-']).is_empty() =>
        {
            n
        }
        Some(_) => return false,
        None => number,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    !(int.is_empty() && frac.is_empty())
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        let hex = "a".repeat(64);
        for good in [
            "squall".to_string(),
            "squall:0.1.0".into(),
            "ghcr.io/team/squall:v1".into(),
            "localhost:5000/squall".into(),
            "10.0.0.1:5000/a/b__c/d-e---f:latest".into(),
            "[::1]:5000/squall:dev".into(),
            format!("squall@sha256:{hex}"),
            format!("registry.example.com/squall:1@sha256:{hex}"),
        ] {
            assert_eq!(image(&good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Squall",
            "squall:",
            "squall:-x",
            "squall:a/b",
            "squall@sha256:12",
            "a//b",
            "a/B",
            "squall:latest:x",
            "-squall",
            "squall-",
            "sq all",
            "host:port/x",
            "a..b",
            "a___b",
        ] {
            let e = image(bad).unwrap_err();
            assert!(e.contains("write e.g."), "{bad}: {e}");
        }
    }

    #[test]
    fn labels_and_quantities() {
        assert_eq!(to_label("Kite: soak (1h)", 63), "kite-soak-1h");
        assert_eq!(to_label("???", 63), "run");
        assert!(label("kite-soak", 63) && !label("Kite", 63) && !label("-a", 63));
        assert!(subdomain("fast.nfs-1") && !subdomain("a..b") && !subdomain(".a"));
        for q in ["1", "500m", "1.5", "512Mi", "2Gi", "1e3", ".5"] {
            assert!(quantity(q), "{q}");
        }
        for q in ["", "one", "1.2.3", "5mb", "1e", "-1x"] {
            assert!(!quantity(q), "{q}");
        }
    }
}
