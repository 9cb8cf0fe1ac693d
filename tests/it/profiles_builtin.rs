//! Profiles travel with the binary: `squall` run from a folder with no `schemas/` checks
//! frames against its built-in profile, and the lookup order is as documented.

use std::path::Path;
use std::process::Command;

use crate::support::{reference_server, results, scenario};

const SCENARIO: &str = r#"name: anywhere
protocol: kite
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - expect: { kind: welcome, within: 2s }
      - send: { type: ping, id: "{{seq}}" }
      - expect: { kind: pong, within: 1s, metric: rtt }
thresholds:
  - "violations == 0"
"#;

fn squall(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_squall"));
    c.current_dir(cwd);
    c
}

#[test]
fn the_binary_checks_frames_from_a_folder_without_schemas() {
    let server = reference_server(|_| {});
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("schemas").exists());
    scenario(dir.path(), "s.yaml", SCENARIO);
    let out = squall(dir.path())
        .args(["run", "s.yaml", "--quiet", "--no-report", "--out", "out"])
        .args(["--target", &format!("ws://{}/kite/ws", server.addr())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc = results(&dir.path().join("out"));
    let checked = doc["violations"]["checked"].as_u64().unwrap();
    assert!(checked >= 3, "welcome, ping and pong checked: {checked}");
    server.shutdown();
}

#[test]
fn schemas_list_says_where_each_profile_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("proj/schemas/kite");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("protocol.yaml"),
        "name: kite\ndiscriminator: [/t]\n",
    )
    .unwrap();
    scenario(&dir.path().join("proj"), "s.yaml", SCENARIO);
    let out = squall(dir.path())
        .args(["schemas", "list", "--scenario", "proj/s.yaml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("kite") && lines[0].contains("proj/schemas/kite"),
        "{text}"
    );
    for name in ["covetpy", "hexabase", "kecs", "newloom"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.ends_with("built in")),
            "{text}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("kite") && l.contains("built in") && l.contains("hidden")),
        "{text}"
    );
}

#[test]
fn lint_and_validate_take_a_name_or_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = squall(dir.path())
        .args(["schemas", "lint", "kecs"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("kecs: ok ("), "{text}");
    let kite = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
    let out = squall(dir.path())
        .args(["schemas", "lint"])
        .arg(&kite)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(dir.path().join("f.jsonl"), "{\"type\":\"nope\"}\n").unwrap();
    let out = squall(dir.path())
        .args(["validate", "--protocol", "kite", "f.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("unknown_kind"), "{text}");
}

#[test]
fn an_unknown_protocol_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "s.yaml",
        &SCENARIO.replace("protocol: kite", "protocol: kiet"),
    );
    let out = squall(dir.path())
        .args(["run", "s.yaml", "--quiet", "--no-report", "--out", "out"])
        .args(["--target", "ws://127.0.0.1:9/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown protocol 'kiet' (did you mean 'kite'?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("known: covetpy, hexabase, kecs, kite, newloom"),
        "{stderr}"
    );
}
