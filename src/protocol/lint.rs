//! `squall schemas lint`: a profile's files exist and compile, every valid example passes,
//! and every invalid example fails exactly as `examples/invalid/expected.yaml` says.

use std::path::Path;

use serde::Deserialize;

use super::{Direction, Profile, ProfileError, Source};

/// What a lint found.
#[derive(Debug, Default)]
pub struct LintReport {
    /// Example frames checked.
    pub checked: usize,
    /// One line per problem; empty when the profile is sound.
    pub problems: Vec<String>,
    /// What the profile's rules cannot judge (not problems): the event kinds whose room
    /// is named by a field their schema lets them leave out.
    pub notes: Vec<String>,
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
    lint_in(&Source::Disk, dir)
}

/// [`lint`] for a profile whose files `source` holds (built in, or imported in memory).
pub fn lint_in(source: &Source, dir: &Path) -> Result<LintReport, ProfileError> {
    let profile = Profile::load_in(source, dir)?;
    let mut report = LintReport::default();
    valid_examples(&profile, &mut report);
    invalid_examples(&profile, &mut report);
    unjudged_rooms(&profile, &mut report);
    Ok(report)
}

/// Notes each event kind whose room template reads a field the kind's schema does not
/// require: such an event that leaves the field out passes the `subscriptions:` rule while
/// the connection holds a room of that shape (rules accuse only with proof).
fn unjudged_rooms(profile: &Profile, report: &mut LintReport) {
    let Some(rules) = &profile.subscriptions else {
        return;
    };
    let raw = profile
        .source
        .read(&profile.dir.join("protocol.yaml"))
        .unwrap_or_default();
    let Ok(raw) = serde_saphyr::from_str::<super::RawProfile>(&raw) else {
        return;
    };
    for (kind, templates) in &rules.rooms {
        let Some(file) = raw.inbound.get(kind) else {
            continue;
        };
        let path = profile.dir.join(file);
        for t in templates {
            for pointer in super::rooms::split_template(t).1 {
                if !required_path(&profile.source, &path, pointer) {
                    report.notes.push(format!(
                        "{kind}: the room {t} cannot be told when {pointer} is absent (the \
                         schema allows it); such an event passes while a room of that shape is held"
                    ));
                }
            }
        }
    }
    report.notes.sort();
}

/// Whether the schema in `file` requires every member along `pointer` (following `$ref`s to
/// files and `#/...` fragments). Anything it cannot follow counts as not required.
fn required_path(source: &Source, file: &Path, pointer: &str) -> bool {
    let Ok(mut node) = super::ecma::read_schema(source, file) else {
        return false;
    };
    let mut here = file.to_path_buf();
    for seg in pointer.split('/').skip(1) {
        let Some(resolved) = follow(source, &here, node) else {
            return false;
        };
        (here, node) = resolved;
        let required = node["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|v| v == seg));
        if !required {
            return false;
        }
        node = node["properties"][seg].clone();
    }
    true
}

/// `node` with its `$ref` (if any) resolved against `file`; `None` when it cannot be read.
fn follow(
    source: &Source,
    file: &Path,
    node: serde_json::Value,
) -> Option<(std::path::PathBuf, serde_json::Value)> {
    let Some(r) = node.get("$ref").and_then(|r| r.as_str()) else {
        return Some((file.to_path_buf(), node));
    };
    let (rel, frag) = r.split_once('#').unwrap_or((r, ""));
    let target = if rel.is_empty() {
        file.to_path_buf()
    } else {
        file.parent()?.join(rel)
    };
    let doc = super::ecma::read_schema(source, &target).ok()?;
    let inner = doc.pointer(frag)?.clone();
    follow(source, &target, inner)
}

fn valid_examples(profile: &Profile, report: &mut LintReport) {
    let folder = profile.dir.join("examples").join("valid");
    for path in json_files(&profile.source, &folder, report) {
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
        let text = profile.source.read(&path).unwrap_or_default();
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
    let Ok(text) = profile.source.read(&table) else {
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
    for path in json_files(&profile.source, &folder, report) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !rows.iter().any(|r| Some(&r.file) == name.as_ref()) {
            report
                .problems
                .push(format!("{}: not listed in expected.yaml", path.display()));
        }
    }
    for row in &rows {
        let path = folder.join(&row.file);
        let Ok(frame) = profile.source.read(&path) else {
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
        // A finding names every keyword that failed at its pointer (`format+pattern`).
        let hit = found.iter().any(|v| {
            v.keyword.split('+').any(|k| k == row.keyword)
                && v.pointer == row.pointer
                && v.kind == row.kind
        });
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

fn json_files(source: &Source, folder: &Path, report: &mut LintReport) -> Vec<std::path::PathBuf> {
    let Ok(entries) = source.list(folder) else {
        report
            .problems
            .push(format!("{}: missing", folder.display()));
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}
