//! JUnit XML for CI test tabs: one test case per threshold, and one per message kind seen in
//! each direction (failing when frames of that kind broke their schema, with samples).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::fmt::escape_markup as esc;
use crate::protocol::Direction;
use crate::results::{Results, ViolationGroup};

/// Renders the run as a JUnit XML document.
pub fn render_junit(r: &Results) -> String {
    let thresholds: Vec<Case> = r
        .thresholds
        .iter()
        .map(|t| Case {
            name: t.expr.clone(),
            failure: (!t.pass && !t.not_measured).then(|| (t.message.clone(), t.message.clone())),
            // Not measured is neither a pass nor a failure: JUnit's `skipped`.
            skipped: t.not_measured.then(|| t.message.clone()),
        })
        .collect();
    let conformance = kind_cases(r);
    let time = r.meta.duration_s;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let all = thresholds.len() + conformance.len();
    let failed = thresholds
        .iter()
        .chain(&conformance)
        .filter(|c| c.failure.is_some())
        .count();
    let _ = writeln!(
        out,
        "<testsuites name=\"squall {}\" tests=\"{all}\" failures=\"{failed}\" time=\"{time:.3}\">",
        esc(&r.meta.scenario_name)
    );
    suite(&mut out, "thresholds", &thresholds, time);
    suite(&mut out, "conformance", &conformance, time);
    out.push_str("</testsuites>\n");
    out
}

struct Case {
    name: String,
    /// (message attribute, body)
    failure: Option<(String, String)>,
    /// Why the case was skipped.
    skipped: Option<String>,
}

fn kind_cases(r: &Results) -> Vec<Case> {
    if r.violations.checked == 0 {
        return Vec::new();
    }
    let mut seen: BTreeSet<(Direction, String)> = BTreeSet::new();
    seen.extend(
        r.counters
            .kinds_in
            .keys()
            .map(|k| (Direction::In, k.clone())),
    );
    seen.extend(
        r.counters
            .kinds_out
            .keys()
            .map(|k| (Direction::Out, k.clone())),
    );
    seen.extend(r.violations.groups.iter().map(|g| (g.dir, g.kind.clone())));
    seen.into_iter()
        .map(|(dir, kind)| {
            let groups: Vec<&ViolationGroup> = r
                .violations
                .groups
                .iter()
                .filter(|g| g.dir == dir && g.kind == kind)
                .collect();
            let failure = (!groups.is_empty()).then(|| failure(&groups));
            Case {
                name: format!("{} {kind}", dir.as_str()),
                failure,
                skipped: None,
            }
        })
        .collect()
}

fn failure(groups: &[&ViolationGroup]) -> (String, String) {
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let message = format!("{total} violations");
    let mut body = String::new();
    for g in groups {
        let at = if g.pointer.is_empty() {
            "/"
        } else {
            &g.pointer
        };
        let _ = writeln!(
            body,
            "{}× {} at {} (breaks {})",
            g.count,
            g.keyword,
            at,
            super::model::rule_text(g.source)
        );
        for s in &g.samples {
            let _ = writeln!(
                body,
                "  t={:.3}s vu={}: {}\n    {}",
                s.t, s.vu, s.message, s.frame
            );
        }
    }
    (message, body)
}

fn suite(out: &mut String, name: &str, cases: &[Case], time: f64) {
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        cases.len()
    );
    for c in cases {
        let _ = write!(
            out,
            "    <testcase classname=\"squall.{name}\" name=\"{}\" time=\"0\"",
            esc(&c.name)
        );
        match (&c.failure, &c.skipped) {
            (None, Some(why)) => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    esc(why)
                );
            }
            (None, None) => out.push_str("/>\n"),
            (Some((message, body)), _) => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    esc(message),
                    esc(body)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            esc("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}"
        );
    }
}
