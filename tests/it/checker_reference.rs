//! `--checker reference` (jsonschema on serde_json for every frame) against the default tape
//! engine: shipped scenarios, shortened, run both ways against squall-server, and the two
//! runs must reach the same verdict: frames checked in both, and the same violation groups
//! (kind, keyword, pointer, whose rule). Counts and thresholds follow the runs' timing and are
//! not compared. Every file of the library runs, ten side by side. Frame by frame, the engines
//! are compared by the property tests in `tests/it/checker_properties.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::support::{assert_schema_valid, library_files, reference_server, results};
use serde_json::Value;
use squall::protocol::checker::Engine;
use squall::scenario::plan::LoadModel;

/// Runs `file` for a second against a fresh squall-server, judging frames with `engine`.
fn run(file: &Path, engine: Engine) -> BTreeSet<String> {
    let plan = squall::scenario::load_file(file, &Default::default()).unwrap();
    let vus = matches!(plan.load.model, LoadModel::Closed).then_some(2);
    let server = reference_server(|_| {});
    let target = plan
        .target
        .replace("127.0.0.1:8080", &server.addr().to_string());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    squall::run::execute(squall::run::RunArgs {
        scenario: file.to_path_buf(),
        target: Some(target),
        out: Some(out.clone()),
        duration: Some(Duration::from_secs(1)),
        vus,
        threads: Some(1),
        quiet: true,
        checker: engine,
        report: false,
        schemas: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    server.shutdown();
    let doc = results(&out);
    assert_schema_valid(&doc);
    let checked = doc["violations"]["checked"].as_u64().unwrap_or(0);
    assert!(checked > 0, "{}: nothing checked", file.display());
    groups(&doc)
}

/// A run's violation groups, without their counts (which follow the run's timing).
fn groups(doc: &Value) -> BTreeSet<String> {
    let none = Vec::new();
    let groups = doc["violations"]["groups"].as_array().unwrap_or(&none);
    groups
        .iter()
        .map(|g| {
            let field = |k: &str| g[k].as_str().unwrap_or_default().to_string();
            let parts = [field("kind"), field("keyword"), field("pointer")];
            format!("{} ({})", parts.join(" "), g["source"])
        })
        .collect()
}

/// `file` reaches the same verdict both ways.
fn same_verdict(file: &Path) {
    let tape = run(file, Engine::Tape);
    let reference = run(file, Engine::Reference);
    assert_eq!(tape, reference, "{}: tape, then reference", file.display());
}

/// Runs side by side: a one-second run of a shipped scenario mostly waits on its pacing and
/// its graceful stop.
const SIDE_BY_SIDE: usize = 10;

#[test]
fn every_library_scenario_is_judged_alike_by_both_engines() {
    let files: Vec<_> = ["kite", "covetpy", "hexabase", "kecs", "newloom"]
        .iter()
        .flat_map(|p| library_files(p))
        .collect();
    assert!(files.len() >= 35, "{files:?}");
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..SIDE_BY_SIDE)
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    same_verdict(file);
                })
            })
            .collect();
        for run in runs {
            if let Err(panic) = run.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}
