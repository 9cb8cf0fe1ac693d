//! Invalid scenarios: each fixture under `tests/scenarios/invalid/` must fail with the exact
//! first diagnostic line below, and a file with several problems must report them all.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use squall::scenario::{load_file, Diagnostics, LoadError, LoadOptions};

fn diagnostics(name: &str) -> Diagnostics {
    let path = PathBuf::from("tests/scenarios/invalid").join(name);
    match load_file(&path, &LoadOptions::default()) {
        Err(LoadError::Invalid(d)) => d,
        Err(e) => panic!("{name}: expected diagnostics, got {e}"),
        Ok(_) => panic!("{name}: loaded, but it is invalid"),
    }
}

/// (fixture, expected first line without the directory prefix).
const CASES: &[(&str, &str)] = &[
    (
        "typo_step.yaml",
        "6:9: unknown step 'sned' (did you mean 'send'?)",
    ),
    (
        "unknown_key.yaml",
        "6:5: unknown key 'wieght' (did you mean 'weight'?)",
    ),
    (
        "bad_duration.yaml",
        "6:17: unknown duration unit 'x' in '10x'",
    ),
    (
        "negative_rate.yaml",
        "6:57: rate must be positive, got '-5/s'",
    ),
    (
        "undefined_variable.yaml",
        "7:38: undefined variable 'rom' (did you mean 'room'?)",
    ),
    (
        "undefined_env.yaml",
        "3:32: undefined environment variable 'SQUALL_TEST_NOPE'",
    ),
    ("zero_weights.yaml", "5:3: behaviour weights sum to 0"),
    ("unclosed_template.yaml", "6:24: unclosed '{{'"),
    (
        "undeclared_metric.yaml",
        "9:14: threshold on undeclared metric 'subscribe_akc' (did you mean 'subscribe_ack'?)",
    ),
    (
        "threshold_no_unit.yaml",
        "7:20: '50' needs a time unit: write e.g. 50ms, 1.5s or 200us",
    ),
    (
        "target_scheme.yaml",
        "2:9: target 'http://127.0.0.1:8080/ws' is not a WebSocket URL",
    ),
    (
        "malformed.yaml",
        "4:11: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'",
    ),
    (
        "two_steps.yaml",
        "7:9: two steps in one item: 'send' and 'expect' (write each step as its own list item)",
    ),
    ("wrong_type.yaml", "6:17: expected a map, found a string"),
    (
        "expect_no_condition.yaml",
        "6:17: expect needs at least one of kind, id or match",
    ),
    (
        "expect_binary_kind.yaml",
        "6:26: '(binary)' is how results count frames without a kind; no frame can match it",
    ),
    (
        "on_fail_value.yaml",
        "7:18: on_fail: 'ignore' is not stop or continue",
    ),
    (
        "on_fail_think.yaml",
        "7:18: on_fail: applies only to send, send_text, send_binary, expect, expect_close, burst and upload",
    ),
];

#[test]
fn each_invalid_fixture_reports_its_first_error_exactly() {
    let mut failures = Vec::new();
    for (file, expected) in CASES {
        let d = diagnostics(file);
        let want = format!("tests/scenarios/invalid/{file}:{expected}");
        let got = d.items[0].headline();
        if got != want {
            failures.push(format!("  {file}\n    want: {want}\n    got:  {got}"));
        }
        // The rendering starts with the same line and shows the source line.
        let text = d.to_string();
        assert!(text.starts_with(&want) || got != want, "{text}");
        assert!(text.contains(" | "), "{text}");
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn every_fixture_in_the_folder_is_in_the_table() {
    for entry in std::fs::read_dir("tests/scenarios/invalid").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let listed = CASES.iter().any(|(f, _)| *f == name);
        assert!(
            listed || name == "many_errors.yaml" || name == "alias_bomb.yaml",
            "{name} has no expectation"
        );
    }
}

#[test]
fn alias_bomb_fails_fast_with_an_alias_error() {
    let start = Instant::now();
    let d = diagnostics("alias_bomb.yaml");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(d.items.len(), 1);
    let first = d.items[0].headline();
    assert!(
        first.contains("invalid YAML: alias replay limit exceeded"),
        "{first}"
    );
}

#[test]
fn independent_errors_are_all_reported_in_source_order() {
    let d = diagnostics("many_errors.yaml");
    let lines: Vec<String> = d.items.iter().map(|i| i.headline()).collect();
    let p = "tests/scenarios/invalid/many_errors.yaml";
    assert_eq!(
        lines,
        vec![
            format!("{p}:3:16: unknown duration unit 'seconds' in '5 seconds'"),
            format!("{p}:8:9: unknown step 'sned' (did you mean 'send'?)"),
            format!("{p}:11:5: unknown key 'colour'"),
            format!("{p}:13:20: think range ends before it starts"),
            format!(
                "{p}:15:21: a rate is a percentage or a fraction (0.1% or 0.001), not 'parsec'"
            ),
        ]
    );
    let text = d.to_string();
    assert!(text.ends_with("5 errors"), "{text}");
}

#[test]
fn rendering_has_snippet_caret_and_hint() {
    let d = diagnostics("typo_step.yaml");
    let text = d.items[0].to_string();
    let expected = "\
tests/scenarios/invalid/typo_step.yaml:6:9: unknown step 'sned' (did you mean 'send'?)
    6 |       - sned: { type: subscribe }
      |         ^
   = hint: steps are send, send_text, send_binary, expect, listen, think, repeat, choose, \
pace, burst, upload, expect_close, reconnect, close
";
    assert_eq!(text, expected);
}

#[test]
fn io_errors_name_the_path() {
    let e = load_file(
        std::path::Path::new("tests/scenarios/nope.yaml"),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }));
    assert!(e.to_string().contains("tests/scenarios/nope.yaml"));
}
