//! `squall schemas lint`: a profile's files exist and compile, every valid example passes,
//! and every invalid example fails exactly as `examples/invalid/expected.yaml` says.

use std::path::Path;

use serde::Deserialize;

use super::{Direction, Profile, ProfileError};

/// What a lint found.
#[derive(Debug, Default)]
pub struct LintReport {
    /// Example frames checked.
    pub checked: usize,
    /// One line per problem; empty when the profile is sound.
    pub problems: Vec<String>,
}

/// One row of `examples/invalid/expected.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    file: String,
    dir: Dir,
    kind: String,
    keyword: String,
    pointer: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Dir {
    In,
    Out,
}

impl From<Dir> for Direction {
    fn from(d: Dir) -> Self {
        match d {
            Dir::In => Direction::In,
            Dir::Out => Direction::Out,
        }
    }
}

/// Lints the profile in `dir`. A profile that does not load is an error; example problems
/// are listed in the report.
pub fn lint(dir: &Path) -> Result<LintReport, ProfileError> {
    let profile = Profile::load(dir)?;
    let mut report = LintReport::default();
    valid_examples(&profile, &mut report);
    invalid_examples(&profile, &mut report);
    Ok(report)
}

fn valid_examples(profile: &Profile, report: &mut LintReport) {
    let folder = profile.dir.join("examples").join("valid");
    for path in json_files(&folder, report) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = if name.starts_with("in-") {
            Direction::In
        } else if name.starts_with("out-") {
            Direction::Out
        } else {
            report.problems.push(format!(
                "{}: name it in-<kind>… or out-<kind>…",
                path.display()
            ));
            continue;
        };
        report.checked += 1;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Err(vs) = profile.check_text(dir, &text) {
            for v in vs {
                report
                    .problems
                    .push(format!("{}: should be valid: {v}", path.display()));
            }
        }
    }
}

fn invalid_examples(profile: &Profile, report: &mut LintReport) {
    let folder = profile.dir.join("examples").join("invalid");
    let table = folder.join("expected.yaml");
    let Ok(text) = std::fs::read_to_string(&table) else {
        report
            .problems
            .push(format!("{}: missing", table.display()));
        return;
    };
    let rows: Vec<Expected> = match serde_saphyr::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(format!("{}: {e}", table.display()));
            return;
        }
    };
    for path in json_files(&folder, report) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !rows.iter().any(|r| Some(&r.file) == name.as_ref()) {
            report
                .problems
                .push(format!("{}: not listed in expected.yaml", path.display()));
        }
    }
    for row in &rows {
        let path = folder.join(&row.file);
        let Ok(frame) = std::fs::read_to_string(&path) else {
            report.problems.push(format!(
                "{}: listed in expected.yaml but missing",
                path.display()
            ));
            continue;
        };
        report.checked += 1;
        let found = match profile.check_text(row.dir.into(), &frame) {
            Ok(()) => Vec::new(),
            Err(vs) => vs,
        };
        let hit = found
            .iter()
            .any(|v| v.keyword == row.keyword && v.pointer == row.pointer && v.kind == row.kind);
        if !hit {
            let got: Vec<String> = found.iter().map(ToString::to_string).collect();
            report.problems.push(format!(
                "{}: expected {} at '{}' (kind {}), got: {}",
                path.display(),
                row.keyword,
                row.pointer,
                row.kind,
                if got.is_empty() {
                    "valid".to_string()
                } else {
                    got.join("; ")
                }
            ));
        }
    }
}

fn json_files(folder: &Path, report: &mut LintReport) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        report
            .problems
            .push(format!("{}: missing", folder.display()));
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}
