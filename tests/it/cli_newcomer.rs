//! The command line as a newcomer meets it: usage errors that say what to write, one
//! duration grammar with the scenario files, every exit code in `run --help`.

use std::process::Output;

use crate::support::{scenario, squall_cmd as squall};

/// A scenario whose target refuses connections: a run that got past the usage checks would
/// end with exit 3, not 2.
const UNREACHABLE: &str = r#"
# The load's duration is the one the grammar test rewrites.
name: cli-newcomer
load: { duration: 1s, vus: 1 }
target: ws://127.0.0.1:1/newcomer
behaviours: [ { steps: [ { send: { type: hello } } ] } ]
"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_with(flag: &str, value: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", UNREACHABLE);
    squall()
        .arg("run")
        .arg(&sc)
        .args([flag, value, "--quiet", "--no-report"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap()
}

#[test]
fn run_help_lists_every_exit_code() {
    let out = squall().args(["run", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    for code in [
        "0 pass",
        "1 a threshold failed",
        "2 bad scenario",
        "3 target unreachable",
        "130 interrupted",
    ] {
        assert!(help.contains(code), "{code:?} missing from: {help}");
    }
}

#[test]
fn zero_vus_is_a_usage_error_before_any_load() {
    let out = run_with("--vus", "0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("at least 1 VU"), "{}", stderr(&out));
    let out = run_with("--vus", "-3");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'-3' is not a number of VUs"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_negative_duration_says_so_without_clap_dash_dash_tip() {
    let out = run_with("--duration", "-1s");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("duration '-1s' must not be negative"), "{err}");
    assert!(!err.contains("-- -1"), "{err}");
    let out = run_with("--rate", "-5");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be positive"),
        "{}",
        stderr(&out)
    );
}

/// What `squall check` says about `duration: VALUE` in a scenario's load.
fn yaml_message(value: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let text = UNREACHABLE.replace("duration: 1s", &format!("duration: \"{value}\""));
    let sc = scenario(dir.path(), "s.yaml", &text);
    let out = squall().arg("check").arg(&sc).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{value} should not load");
    stderr(&out)
}

#[test]
fn the_command_line_and_the_scenario_share_one_duration_grammar() {
    for (value, message) in [
        ("10", "duration '10' needs a unit"),
        ("3sec", "unknown duration unit 'sec' in '3sec'"),
        ("10 sec", "unknown duration unit 'sec' in '10 sec'"),
        ("1m 30s", "unknown duration unit 'm 30s' in '1m 30s'"),
        ("soon", "'soon' is not a duration"),
    ] {
        let yaml = yaml_message(value);
        assert!(yaml.contains(message), "YAML {value:?}: {yaml}");
        let cli = stderr(&run_with("--duration", value));
        assert!(cli.contains(message), "--duration {value:?}: {cli}");
        // The same example of the right form in both.
        assert!(yaml.contains("250ms, 2s, 1.5s, 2m") && cli.contains("250ms, 2s, 1.5s, 2m"));
    }
    let out = run_with("--duration", "1.5s");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a good duration gets past the usage checks"
    );
}

#[test]
fn validate_points_at_a_half_written_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.jsonl");
    std::fs::write(
        &file,
        "{\"type\":\"ping\"}\n{\"dir\":\"sideways\",\"frame\":{\"type\":\"ping\"},\"time\":1}\n",
    )
    .unwrap();
    let out = squall()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--protocol", "kite"])
        .arg(&file)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: line 2: a frame record", file.display())),
        "{err}"
    );
    let help = squall().args(["validate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    assert!(help.contains("a bare frame (checked as inbound"), "{help}");
}
