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
    /// Whose rule the example breaks: `document` (the default) or `squall` (a decision).
    #[serde(default)]
    source: super::RuleSource,
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
    let document = Profile::load_in_with(source, dir, super::Conformance::Document)?;
    valid_examples(&profile, &mut report);
    invalid_examples(&profile, &document, &mut report);
    unjudged_rooms(&profile, &mut report);
    marked(&profile, &mut report);
    Ok(report)
}

/// Notes squall's decisions and squall-server's extensions, as the profile marks them, so a
/// reader sees which constraints are not the document's (grouped by what and why).
fn marked(profile: &Profile, report: &mut LintReport) {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    if let Some(why) = &profile.closed_decision {
        groups
            .entry(("squall's decision".into(), format!("closed objects: {why}")))
            .or_default();
    }
    let rules = profile
        .subscriptions
        .iter()
        .filter_map(|r| Some(("subscriptions".to_string(), r.decision.as_ref()?)))
        .chain(profile.replies.iter().filter_map(|r| {
            Some((
                format!("replies {} → {}", r.request, r.reply),
                r.decision.as_ref()?,
            ))
        }));
    for (rule, why) in rules {
        groups
            .entry((
                "squall's decision".into(),
                format!("the rule {rule}: {why}"),
            ))
            .or_default();
    }
    for file in super::walk_json(&profile.source, &profile.dir) {
        let Ok(schema) = super::ecma::read_schema(&profile.source, &file) else {
            continue;
        };
        let rel = file
            .strip_prefix(&profile.dir)
            .unwrap_or(&file)
            .display()
            .to_string();
        collect_marks(&schema, &rel, "", &mut groups);
    }
    for ((what, why), places) in groups {
        let at = match places.len() {
            0 => String::new(),
            1..=3 => format!(" [{}]", places.join(", ")),
            n => format!(" [{}, … {} places]", places[..2].join(", "), n),
        };
        report.notes.push(format!("{what}: {why}{at}"));
    }
}

fn collect_marks(
    v: &serde_json::Value,
    file: &str,
    at: &str,
    groups: &mut std::collections::BTreeMap<(String, String), Vec<String>>,
) {
    use super::view::{DECISION, EXTENSION};
    use serde_json::Value;
    let place = format!("{file}#{at}");
    match v {
        Value::Object(map) => {
            match map.get(DECISION) {
                Some(Value::String(why)) => groups
                    .entry((
                        "squall's decision".into(),
                        format!("the whole subschema: {why}"),
                    ))
                    .or_default()
                    .push(place.clone()),
                Some(Value::Object(kw)) => {
                    for (k, why) in kw {
                        groups
                            .entry((
                                "squall's decision".into(),
                                format!("{k}: {}", why.as_str().unwrap_or_default()),
                            ))
                            .or_default()
                            .push(place.clone());
                    }
                }
                _ => {}
            }
            if let Some(why) = map.get(EXTENSION).and_then(Value::as_str) {
                let name = at.rsplit('/').next().filter(|n| !n.is_empty());
                groups
                    .entry((
                        "squall-server extension".into(),
                        match name {
                            Some(n) => format!("{n}: {why}"),
                            None => format!("the whole kind: {why}"),
                        },
                    ))
                    .or_default()
                    .push(place);
            }
            for (k, child) in map {
                if !matches!(k.as_str(), "const" | "enum" | "examples" | "default") {
                    collect_marks(child, file, &format!("{at}/{k}"), groups);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_marks(child, file, &format!("{at}/{i}"), groups);
            }
        }
        _ => {}
    }
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
            for pointer in placeholders(t) {
                if !required_path(&profile.source, &path, pointer) {
                    report.notes.push(format!(
                        "{kind}: the room {t} cannot be told when {pointer} is absent (the \
                         schema allows it); such an event passes while a room of that shape is held"
                    ));
                }
            }
        }
        for (name, filter) in &rules.filters {
            let Some(values) = filter.events.get(kind) else {
                report.notes.push(format!(
                    "{kind}: not judged by the filter {name} (the rule names no field of it \
                     for this kind); such an event passes whatever a subscribe lists at {}",
                    filter.request
                ));
                continue;
            };
            let pointers: Vec<&str> = values.iter().flat_map(|t| placeholders(t)).collect();
            // Plain words (the kind's own name) always decide; fields only when required.
            let decides = values.iter().any(|t| placeholders(t).is_empty())
                || pointers
                    .iter()
                    .any(|p| required_path(&profile.source, &path, p));
            if !decides {
                report.notes.push(format!(
                    "{kind}: the filter {name} cannot be told when {} are absent (the schema \
                     allows it); such an event passes that filter",
                    pointers.join(", ")
                ));
            }
        }
    }
    report.notes.sort();
    report.notes.dedup();
}

/// The pointers a room or filter template reads (modifiers left off).
fn placeholders(template: &str) -> Vec<&str> {
    super::rooms::split_template(template)
        .1
        .into_iter()
        .map(|p| p.split_once('|').map_or(p, |(p, _)| p))
        .collect()
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

fn invalid_examples(profile: &Profile, document: &Profile, report: &mut LintReport) {
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
        invalid_example(profile, document, row, &path, &frame, report);
    }
}

/// One listed invalid example (`row`, at `path`, its text `frame`): it must fail where the
/// row says, breaking whose rule the row says, and under `--conformance document` fail or
/// pass as that says.
fn invalid_example(
    profile: &Profile,
    document: &Profile,
    row: &Expected,
    path: &Path,
    frame: &str,
    report: &mut LintReport,
) {
    let found = match profile.check_text(row.dir.into(), frame) {
        Ok(()) => Vec::new(),
        Err(vs) => vs,
    };
    // A finding names every keyword that failed at its pointer (`format+pattern`).
    let hits = |found: &[super::Violation], source: Option<super::RuleSource>| {
        found.iter().any(|v| {
            v.keyword.split('+').any(|k| k == row.keyword)
                && v.pointer == row.pointer
                && v.kind == row.kind
                && source.is_none_or(|s| v.source == s)
        })
    };
    let hit = hits(&found, Some(row.source));
    // Under `--conformance document` a decision's example passes; the document's still fails.
    let loose = document.check_text(row.dir.into(), frame).err();
    match (row.source, &loose) {
        (super::RuleSource::Squall, Some(vs)) => report.problems.push(format!(
            "{}: breaks only squall's decision, yet fails under --conformance document: {}",
            path.display(),
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        (super::RuleSource::Document, None) => report.problems.push(format!(
            "{}: breaks the document, yet passes under --conformance document \
             (a constraint marked as squall's decision is the document's?)",
            path.display()
        )),
        (super::RuleSource::Document, Some(vs)) if hit && !hits(vs, None) => {
            report.problems.push(format!(
                "{}: under --conformance document it fails elsewhere, not {} at '{}'",
                path.display(),
                row.keyword,
                row.pointer
            ))
        }
        _ => {}
    }
    if !hit {
        missed(row, path, &found, report);
    }
}

/// The problem for an invalid example that did not fail as its row says (`found`: what it
/// broke instead).
fn missed(row: &Expected, path: &Path, found: &[super::Violation], report: &mut LintReport) {
    let got: Vec<String> = found.iter().map(ToString::to_string).collect();
    report.problems.push(format!(
        "{}: expected {} at '{}' (kind {}, breaking {}), got: {}",
        path.display(),
        row.keyword,
        row.pointer,
        row.kind,
        row.source.as_str(),
        if got.is_empty() {
            "valid".to_string()
        } else {
            got.join("; ")
        }
    ));
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
