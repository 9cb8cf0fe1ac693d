//! The real `squall` binary: exit codes and what it prints.

use crate::support::squall_cmd;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

const SMALL: &str = r#"
name: cli-small
target: ws://127.0.0.1:1/ws
load: { vus: 2, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: ping, id: "{{seq}}" }
      - expect: { kind: pong, id: "{{sent./id}}", within: 2s, metric: rtt }
thresholds:
  - "errors.count == 0"
"#;

#[test]
fn version_prints_and_exits_zero() {
    let out = squall_cmd().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_passes_good_files_and_points_at_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = scenario(dir.path(), "good.yaml", SMALL);
    let out = squall_cmd().arg("check").arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = scenario(dir.path(), "bad.yaml", &SMALL.replace("- send:", "- sned:"));
    let out = squall_cmd()
        .arg("check")
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:8:9: unknown step 'sned' (did you mean 'send'?)"),
        "{err}"
    );
}

#[test]
fn bad_input_exits_two_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = squall_cmd()
        .args(["run", "no/such/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/file.yaml"));

    let good = scenario(dir.path(), "good.yaml", SMALL);
    let not_ws = squall_cmd()
        .arg("run")
        .arg(&good)
        .args(["--target", "http://127.0.0.1:9/x"])
        .output()
        .unwrap();
    assert_eq!(not_ws.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_ws.stderr).contains("ws://"));

    let rate = squall_cmd()
        .arg("run")
        .arg(&good)
        .args(["--rate", "5"])
        .output()
        .unwrap();
    assert_eq!(rate.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&rate.stderr).contains("--vus"));

    let usage = squall_cmd().args(["run"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn an_unreachable_target_exits_three_with_one_line() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "s.yaml", SMALL);
    let out = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--target", &format!("ws://127.0.0.1:{port}/ws"), "--quiet"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("unreachable") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn serve_runs_the_bundled_smoke_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/kite/smoke.yaml");
    let out = squall_cmd()
        .args(["run", smoke, "--serve", "--duration", "2s"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("latency rtt") && stdout.contains("thresholds"),
        "{stdout}"
    );
    // The verdict comes second and last; the charts written are named.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].starts_with("PASS: ") && lines[1].contains(" thresholds held; "),
        "{stdout}"
    );
    assert!(
        stdout.contains("charts: ") && stdout.contains("latency-rtt.png"),
        "{stdout}"
    );
    assert_eq!(results(dir.path())["status"], "complete");
}

#[test]
fn sigint_leaves_an_interrupted_file_and_exit_130() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let long = SMALL.replace("duration: 1s", "duration: 60s");
    let sc = scenario(dir.path(), "long.yaml", &long);
    let out_dir = dir.path().join("out");
    let child = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--target", &format!("ws://{}/ws", srv.addr()), "--quiet"])
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let file = out_dir.join("results.json");
    wait_until(
        "a results file with traffic",
        Duration::from_secs(15),
        || {
            std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|d| d["counters"]["frames_in"].as_u64().unwrap_or(0) > 0)
        },
    );
    // SAFETY: signalling our own child process by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    // The first Ctrl-C is acknowledged, with what happens next.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stopping: finishing iterations (up to 5s), Ctrl-C again to stop now"),
        "{err}"
    );
    let doc = results(&out_dir);
    assert_schema_valid(&doc);
    assert_eq!(doc["status"], "interrupted");
    assert_eq!(doc["status_reason"], "Ctrl-C or SIGTERM");
    assert!(doc["meta"]["duration_s"].as_f64().unwrap() < 30.0);
    srv.shutdown();
}

#[test]
fn a_second_sigint_stops_at_once() {
    let srv = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    // Iterations that would take a minute, and a grace period of a minute to finish them.
    let text = r#"
name: cli-stubborn
target: ws://127.0.0.1:1/ws
graceful_stop: 60s
load: { vus: 3, duration: 60s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - listen: 60s
"#;
    let sc = scenario(dir.path(), "stubborn.yaml", text);
    let out_dir = dir.path().join("out");
    let started = std::time::Instant::now();
    let mut child = squall_cmd()
        .arg("run")
        .arg(&sc)
        .args(["--target", &format!("ws://{}/ws", srv.addr()), "--quiet"])
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("3 open connections", Duration::from_secs(15), || {
        srv.stats().connections_active >= 3
    });
    // The first SIGINT starts a 60 s grace period; keep signalling until squall exits. With
    // only one signal it would wait out the whole grace period.
    let mut status = None;
    wait_until(
        "squall to stop after a second SIGINT",
        Duration::from_secs(15),
        || {
            // SAFETY: signalling our own child process by its pid.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    assert_eq!(status.and_then(|s| s.code()), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let doc = results(&out_dir);
    assert_eq!(doc["status"], "interrupted");
    // The stopped VUs closed with 1001 (going away), each counted.
    assert_eq!(doc["counters"]["connections"]["closed_by_code"]["1001"], 3);
    srv.shutdown();
}

#[test]
fn validate_checks_recorded_frames_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let ts = "2026-11-22T10:00:00Z";
    let lines = [
        format!(r#"{{"type":"case.deleted","data":{{"case_id":"c1"}},"timestamp":"{ts}"}}"#),
        format!(r#"{{"type":"case.deleted","data":{{}},"timestamp":"{ts}"}}"#),
        r#"{"dir":"out","frame":{"type":"subscribe","room":"scrape:all"}}"#.to_string(),
        r#"{"dir":"out","frame":{"type":"subscribe"}}"#.to_string(),
        "not json at all".to_string(),
    ];
    let file = dir.path().join("frames.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = squall_cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--protocol", "kite"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let name = file.display().to_string();
    assert!(
        text.contains(&format!("{name}:2: in case.deleted: required at /data")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{name}:4: out subscribe: required at /")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{name}:5: in (non-json): json")),
        "{text}"
    );
    assert!(!text.contains(&format!("{name}:1:")) && !text.contains(&format!("{name}:3:")));
    assert!(text.contains("5 frames, 3 with violations"), "{text}");

    let mut clean = squall_cmd()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--protocol", "kite", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    clean
        .stdin
        .take()
        .unwrap()
        .write_all(lines[0].as_bytes())
        .unwrap();
    let out = clean.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn validate_gives_the_same_verdicts_with_either_checker() {
    let dir = tempfile::tempdir().unwrap();
    let ts = "2026-11-22T10:00:00Z";
    let ok = format!(r#"{{"type":"case.deleted","data":{{"case_id":"c1"}},"timestamp":"{ts}"}}"#);
    let bad = format!(r#"{{"type":"case.deleted","data":{{}},"timestamp":"{ts}"}}"#);
    let sub = r#"{"type":"subscribe","room":"scrape:all"}"#;
    let lines = [
        ok.clone(),
        bad.clone(),
        format!(r#"{{"dir":"out","frame":{sub}}}"#),
        r#"{"dir":"out","frame":{"type":"subscribe"}}"#.to_string(),
        "not json at all".to_string(),
        r#"{"conn":"c1","dir":"out","frame":{"type":"subscribe","room":"cases:all"}}"#.to_string(),
        format!(r#"{{"conn":"c1","dir":"in","frame":{ok}}}"#),
        format!(r#"{{"conn":"c1","dir":"in","frame":{bad:?}}}"#),
        r#"{"conn":"c1","dir":"in","frame":"{\"type\":"}"#.to_string(),
    ];
    let file = dir.path().join("frames.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let verdicts = |checker: &str| {
        let out = squall_cmd()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["validate", "--protocol", "kite", "--checker", checker])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "--checker {checker}: {text}");
        text
    };
    let tape = verdicts("tape");
    assert!(tape.contains("9 frames, 5 with violations"), "{tape}");
    assert_eq!(tape, verdicts("reference"));
}

#[test]
fn schemas_lint_passes_the_shipped_profiles_and_fails_a_broken_one() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let profiles: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("protocol.yaml").is_file())
        .collect();
    assert!(!profiles.is_empty());
    let out = squall_cmd()
        .args(["schemas", "lint"])
        .args(&profiles)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches(": ok (").count(), profiles.len(), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("kite");
    copy_dir(&profiles[0], &broken);
    std::fs::write(
        broken.join("examples/valid/in-extra.json"),
        r#"{"type":"nope"}"#,
    )
    .unwrap();
    let out = squall_cmd()
        .args(["schemas", "lint"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("in-extra.json: should be valid"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn check_portable_names_each_use_of_squall_servers_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let reference = scenario(
        dir.path(),
        "ref.yaml",
        &SMALL.replace("name: cli-small", "name: cli-small\nprotocol: kite"),
    );
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let out = squall_cmd()
        .args(["check", "--portable", "--schemas", schemas])
        .arg(&reference)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("step 2 (send): sends ping with a field seeds/kite.md does not define"),
        "{err}"
    );
    assert!(err.contains("step 3 (expect): reads /id of pong"), "{err}");
    // Without --portable the same file is a valid scenario.
    let out = squall_cmd().arg("check").arg(&reference).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn validate_says_whose_rule_a_frame_broke_and_document_conformance_lets_decisions_pass() {
    let dir = tempfile::tempdir().unwrap();
    // kite.md defines no error frame: this one's `code` breaks only squall-server's shape.
    let rec = dir.path().join("rec.jsonl");
    std::fs::write(
        &rec,
        r#"{"type":"error","data":{"code":"INVALID_ROOM","message":"unknown room"},"timestamp":"2026-01-01T00:00:00Z"}
"#,
    )
    .unwrap();
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let run = |conformance: &str| {
        squall_cmd()
            .args(["validate", "--protocol", "kite", "--schemas", schemas])
            .args(["--conformance", conformance])
            .arg(&rec)
            .output()
            .unwrap()
    };
    let strict = run("strict");
    let said = String::from_utf8_lossy(&strict.stdout);
    assert_eq!(strict.status.code(), Some(1), "{said}");
    assert!(
        said.contains("additionalProperties at /data")
            && said.contains("(squall's decision where the document is silent)"),
        "{said}"
    );
    let document = run("document");
    assert_eq!(
        document.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&document.stdout)
    );
}
