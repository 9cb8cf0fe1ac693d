//! The scenario library as a whole (`scenarios/<protocol>/*.yaml`): every file passes
//! `squall check`, and every portable one (not named `*-reference.yaml`) `squall check
//! --portable`; every portable scenario runs clean, shortened,
//! against `squall-server --strict-doc`, a server with every extension off, as one written
//! strictly to the documents would be. Every `*-reference.yaml` runs clean against plain
//! squall-server in its protocol's `tests/scenarios_<p>.rs` (which also checks what it
//! measured, and that it fails with a limit off or a delivery fault on); the last test here
//! makes sure none is left out, rather than running them all a second time. The portable
//! runs go three at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{assert_squall_check, library_files, run_library, verdict, Library};

const PROTOCOLS: [&str; 5] = ["kite", "kecs", "newloom", "hexabase", "covetpy"];

/// How long each file runs, and at how many VUs, where the default (3 s, 4 VUs) does not
/// fit: rate limits and soaks keep enough VUs that every behaviour is drawn, uploads need
/// the time to move 8 MiB on a debug build.
const RUNS: [(&str, u64, Option<u64>); 7] = [
    ("kecs/rate-limit.yaml", 5, None),
    ("kecs/soak.yaml", 3, Some(8)),
    ("hexabase/rate-limit.yaml", 3, Some(6)),
    ("covetpy/rate-limit.yaml", 4, None),
    ("covetpy/soak.yaml", 3, Some(8)),
    ("covetpy/upload.yaml", 8, Some(1)),
    ("kite/capacity.yaml", 3, None),
];

/// Whether a library file needs squall-server's extensions.
fn is_reference(file: &Path) -> bool {
    file.to_string_lossy().ends_with("-reference.yaml")
}

/// Every library file, relative to the repository (`scenarios/kite/smoke.yaml`).
fn all_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    PROTOCOLS
        .iter()
        .flat_map(|p| library_files(p))
        .map(|f| f.strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

/// The path and query of a file's own `target:` (`/kecs/ws?token=...`), to aim it at a test
/// server with the same credentials.
fn path_of(file: &Path) -> String {
    let plan = squall::scenario::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
        &squall::scenario::LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let rest = plan.target.split_once("://").map_or("", |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..]).to_owned()
}

/// Runs each file shortened against a fresh `squall-server --strict-doc` and returns one
/// line per file that did not exit 0 with zero violations.
fn failures_against_strict_doc(files: &[PathBuf]) -> Vec<String> {
    let mut failed = Vec::new();
    for file in files {
        let name = file.to_string_lossy();
        let short = name.trim_start_matches("scenarios/");
        let (secs, vus) = RUNS
            .iter()
            .find(|(f, _, _)| *f == short)
            .map_or((3, Some(4)), |&(_, secs, vus)| (secs, vus));
        let path = path_of(file);
        let lib = Library {
            file: &name,
            path: &path,
            duration: Some(Duration::from_secs(secs)),
            vus,
        };
        let run = std::panic::catch_unwind(|| {
            run_library(lib, |c| {
                c.strict_doc = true;
                c.threads = 1;
            })
        });
        match run {
            Ok((0, doc)) if doc["violations"]["total"] == 0 => {}
            Ok((code, doc)) => failed.push(format!("{name}: exit {code}, {}", verdict(&doc))),
            Err(_) => failed.push(format!("{name}: the run panicked (see above)")),
        }
    }
    failed
}

#[test]
fn every_library_file_passes_check_and_each_protocol_has_portable_scenarios() {
    let files = all_files();
    assert_squall_check(&files);
    // The static side of portability: no extension field, kind or query parameter in a
    // portable file (`squall check --portable`); the runs below are the dynamic side.
    let portable: Vec<_> = files.iter().filter(|f| !is_reference(f)).collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["check", "--portable"])
        .args(&portable)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "squall check --portable: {text}");
    assert_eq!(
        text.matches(": ok, portable").count(),
        portable.len(),
        "{text}"
    );
    for p in PROTOCOLS {
        let portable = files
            .iter()
            .filter(|f| f.starts_with(Path::new("scenarios").join(p)) && !is_reference(f))
            .count();
        assert!(portable >= 3, "{p}: {portable} portable scenarios");
    }
}

#[test]
fn check_portable_names_what_the_seq_tracked_reference_storms_need() {
    // The static side bites: a reference scenario whose need is a field (delivery tracked by
    // squall-server's `seq`) is named; needs that are values show only in a run.
    let flagged = [
        "kite/subscribe-storm-reference.yaml",
        "kecs/subscribe-storm-reference.yaml",
    ];
    for f in flagged {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["check", "--portable"])
            .arg(Path::new("scenarios").join(f))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{f}: {text}");
        assert!(
            text.contains("not portable: delivery: reads /seq"),
            "{f}: {text}"
        );
    }
}

#[test]
fn portable_scenarios_run_clean_against_a_strict_doc_server() {
    let files: Vec<_> = all_files()
        .into_iter()
        .filter(|f| !is_reference(f))
        .collect();
    assert!(files.len() >= 20, "{files:?}");
    // Three runs at a time, as many as `run_library` lets go side by side.
    let third = files.len().div_ceil(3);
    let failed: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = files
            .chunks(third)
            .map(|part| scope.spawn(|| failures_against_strict_doc(part)))
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("the runs of a third"))
            .collect()
    });
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_reference_scenario_is_run_by_its_protocols_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<_> = all_files()
        .into_iter()
        .filter(|f| is_reference(f))
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    let mut missing = Vec::new();
    for file in &files {
        let protocol = file.parent().and_then(Path::file_name).unwrap();
        let tests = root
            .join("tests/it")
            .join(format!("scenarios_{}.rs", protocol.to_string_lossy()));
        let source = std::fs::read_to_string(&tests).unwrap_or_default();
        let name = file.file_name().unwrap().to_string_lossy();
        if !source.contains(&format!("{name}\"")) {
            missing.push(format!("{} (not in {})", file.display(), tests.display()));
        }
    }
    assert!(missing.is_empty(), "run nowhere: {missing:?}");
}
