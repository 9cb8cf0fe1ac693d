//! The README's promises a newcomer acts on: its sample scenario checks and runs, checking
//! frames; its test command is the one CI runs.

use crate::support::{results, squall_cmd as squall};

const README: &str = include_str!("../../README.md");

/// The first ```yaml block after `heading`.
fn yaml_after(heading: &str) -> &'static str {
    let from = README.find(heading).expect("README section");
    let rest = &README[from..];
    let start = rest.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    &rest[start..start + len]
}

#[test]
fn the_sample_scenario_checks_and_its_run_checks_frames() {
    let sample = yaml_after("## A scenario");
    assert!(
        sample.contains("\nprotocol: "),
        "the sample must check frames:\n{sample}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("first.yaml");
    std::fs::write(&file, sample).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let check = squall().arg("check").arg(&file).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = dir.path().join("out");
    let run = squall()
        .current_dir(root)
        .arg("run")
        .arg(&file)
        .args(["--serve", "--duration", "2s", "--no-report", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let doc = results(&out);
    assert_eq!(doc["status"], "complete", "{stdout}");
    let v = &doc["violations"];
    assert!(
        v["checked"].as_u64().unwrap() > 0,
        "no frame was checked:\n{stdout}"
    );
    assert_eq!(v["total"], 0, "{stdout}");
    assert_eq!(doc["counters"]["errors"], 0, "{stdout}");
    // Only a latency bound may fail, on a machine busy enough to stretch a debug build's p99.
    for t in doc["thresholds"].as_array().unwrap() {
        let expr = t["expr"].as_str().unwrap();
        assert!(
            t["pass"] == true || expr.starts_with("latency."),
            "{stdout}"
        );
    }
    assert!(matches!(run.status.code(), Some(0 | 1)), "{stdout}");
}

#[test]
fn the_readme_test_command_is_the_one_ci_runs() {
    // The second line of the README's first block.
    let readme_line = README.lines().nth(4).unwrap();
    let command = readme_line.split('#').next().unwrap().trim();
    assert_eq!(command, "tools/test-deps && cargo test --workspace");
    let ci = include_str!("../../.ci/run");
    assert_eq!(ci.lines().last().unwrap().trim(), command);
}
