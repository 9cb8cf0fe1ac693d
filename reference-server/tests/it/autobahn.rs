//! RFC 6455 conformance: the Autobahn test cases, run by `kosoku` (PyPI, pinned 0.1.0),
//! against the `conformance` echo route. The outcome of every case is compared with the
//! committed `tests/autobahn-expected.json`, so a change in any case's behaviour fails.

use serde_json::{Map, Value};
use squall_server::{spawn, Config, Profile};
use std::path::Path;
use std::process::Command;

const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/autobahn-expected.json");

/// Each case's outcome without what varies between runs (durations, report file names).
fn outcomes(index: &Value) -> Value {
    let agents = index
        .as_object()
        .expect("index.json is an object of agents");
    assert_eq!(agents.len(), 1, "one server under test");
    let cases = agents.values().next().unwrap().as_object().unwrap();
    let mut out = Map::new();
    for (case, result) in cases {
        let mut kept = Map::new();
        for key in ["behavior", "behaviorClose", "remoteCloseCode"] {
            kept.insert(key.into(), result[key].clone());
        }
        out.insert(case.clone(), Value::Object(kept));
    }
    Value::Object(out)
}

/// `$SQUALL_KOSOKU`, else the one tools/test-deps put in `<target dir>/test-venv` (the
/// target dir holds this test's binary, in `debug/deps/`), else `kosoku` on the PATH.
fn kosoku() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SQUALL_KOSOKU") {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.ancestors().nth(3)?.join("test-venv/bin/kosoku")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "kosoku".into())
}

#[test]
fn autobahn_cases_match_the_expected_results() {
    let server = spawn(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        profile: Profile::Conformance,
        events_per_sec: 0.0,
        threads: 2,
        ..Config::default()
    })
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(kosoku())
        .args(["-m", "fuzzingclient", &server.addr().to_string()])
        .args(["-x", "12.*", "-x", "13.*", "-p", "4", "-o"])
        .arg(out.path())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run kosoku ({e}): run tools/test-deps (it installs kosoku==0.1.0 into \
                 target/test-venv), or set SQUALL_KOSOKU to its path"
            )
        });
    assert!(status.success(), "kosoku failed: {status}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    let got = outcomes(&index);
    let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
    if std::env::var_os("UPDATE_AUTOBAHN").is_some() {
        std::fs::write(EXPECTED, &pretty).unwrap();
    }
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(EXPECTED)).expect("tests/autobahn-expected.json"),
    )
    .unwrap();
    let (got_cases, want_cases) = (got.as_object().unwrap(), want.as_object().unwrap());
    let mut diffs = Vec::new();
    for (case, w) in want_cases {
        match got_cases.get(case) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{case}: expected {w}, got {g}")),
            None => diffs.push(format!("{case}: expected {w}, not run")),
        }
    }
    for case in got_cases.keys().filter(|c| !want_cases.contains_key(*c)) {
        diffs.push(format!("{case}: new case {}", got_cases[case]));
    }
    assert!(
        diffs.is_empty(),
        "{} Autobahn case(s) differ from tests/autobahn-expected.json:\n{}\n\
         If the new behaviour is right, update the file with\n  \
         UPDATE_AUTOBAHN=1 cargo test -p squall-server --test autobahn",
        diffs.len(),
        diffs.join("\n")
    );
    let failed: Vec<_> = got_cases
        .iter()
        .filter(|(_, r)| r["behavior"] == "FAILED" || r["behaviorClose"] == "FAILED")
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    server.shutdown();
}
