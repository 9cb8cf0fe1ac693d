//! `squall schemas export asyncapi`: every bundled profile exported as AsyncAPI 3 and
//! imported again gives an equivalent profile (same kinds, rules and verdicts on all of the
//! original's examples), and the official AsyncAPI CLI accepts the exported documents.

use std::path::{Path, PathBuf};
use std::process::Command;

use squall::asyncapi::{export, import, write_export, Options};
use squall::protocol::catalog::built_in;
use squall::protocol::{lint, Direction, Profile};

const BUNDLED: [&str; 5] = ["covetpy", "hexabase", "kecs", "kite", "newloom"];

/// Exports a built-in profile into `dir`, returning the document's path.
fn exported(dir: &Path, name: &str) -> (Profile, PathBuf) {
    let profile = built_in(name).unwrap().load().unwrap();
    let doc = export(&profile).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = dir.join(format!("{name}.asyncapi.json"));
    write_export(&doc, &path).unwrap();
    (profile, path)
}

/// Copies the original profile's examples (valid, invalid and expected.yaml) into `to`.
fn copy_examples(from: &Profile, to: &Path) {
    for sub in ["valid", "invalid"] {
        let src = from.dir.join("examples").join(sub);
        let dst = to.join("examples").join(sub);
        let _ = std::fs::remove_dir_all(&dst);
        std::fs::create_dir_all(&dst).unwrap();
        for f in from.source.list(&src).unwrap() {
            let text = from.source.read(&f).unwrap();
            std::fs::write(dst.join(f.file_name().unwrap()), text).unwrap();
        }
    }
}

/// The profile's rules, in an order that does not depend on hashing.
fn rules(p: &Profile) -> String {
    let rooms = p.subscriptions.as_ref().map(|s| {
        let sorted: std::collections::BTreeMap<_, _> = s.rooms.iter().collect();
        let holds: std::collections::BTreeMap<_, _> = s.holds.iter().collect();
        let rest = (&s.subscribe, &s.room, &s.unsubscribed, &s.unsubscribed_room);
        format!("{sorted:?} {holds:?} {rest:?}")
    });
    format!("{:?} {rooms:?} {:?}", p.replies, p.limits)
}

#[test]
fn every_bundled_profile_survives_the_round_trip() {
    let d = tempfile::tempdir().unwrap();
    std::thread::scope(|scope| {
        let trips: Vec<_> = BUNDLED
            .map(|name| scope.spawn(|| round_trip(d.path(), name)))
            .into_iter()
            .collect();
        for trip in trips {
            if let Err(panic) = trip.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// Exports `name` into `d`, imports it again and holds the two to the same kinds, rules and
/// verdicts on every example.
fn round_trip(d: &Path, name: &str) {
    let (original, doc) = exported(d, name);
    let opts = Options {
        name: Some(name.to_string()),
        ..Options::default()
    };
    let again = import(&doc, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = d.join("round").join(name);
    again.write(&dir).unwrap();
    let back = Profile::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(back.discriminator, original.discriminator, "{name}");
    assert_eq!(back.correlation, original.correlation, "{name}");
    assert_eq!(back.clock, original.clock, "{name}");
    for dir in [Direction::In, Direction::Out] {
        assert_eq!(back.kinds(dir), original.kinds(dir), "{name} {dir:?}");
    }
    assert_eq!(rules(&back), rules(&original), "{name}");
    // The same verdict on every example the original's lint knows, valid and invalid.
    copy_examples(&original, &dir);
    let report = lint(&dir).unwrap();
    assert!(report.problems.is_empty(), "{name}: {:#?}", report.problems);
    assert!(report.checked > 10, "{name}: {} examples", report.checked);
}

#[test]
fn the_asyncapi_cli_accepts_every_exported_document() {
    let found = Command::new("asyncapi").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "the AsyncAPI CLI (npm @asyncapi/cli) is missing: run tools/test-deps"
    );
    let d = tempfile::tempdir().unwrap();
    // One CLI start costs seconds: validate the five side by side.
    let runs: Vec<_> = BUNDLED
        .iter()
        .map(|name| {
            let (_, doc) = exported(d.path(), name);
            let child = Command::new("asyncapi")
                .arg("validate")
                .arg(&doc)
                .env("CI", "true") // no usage metrics sent
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    for (name, child) in runs {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}: {text}");
        assert!(text.contains("is valid"), "{name}: {text}");
        assert!(text.contains("0 errors, 0 warnings"), "{name}: {text}");
    }
}
