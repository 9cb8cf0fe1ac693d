//! Scenario files: strict YAML model, validation with file:line:col, lowering to a [`Plan`].
//!
//! Loading runs in three passes so that every problem of a file is reported at once:
//! the text becomes a spanned tree (`node`), the strict model is read from the tree with
//! errors recorded per item (`de`, `model`), and lowering checks meaning and builds the plan
//! (`lower*`). Nothing is connected until all of it has passed.

mod de;
mod diagnostic;
mod literal;
mod load;
mod lower;
mod lower_delivery;
mod lower_load;
mod lower_measure;
mod lower_scenario;
mod lower_steps;
mod lower_thresholds;
mod model;
pub(crate) mod node;
pub mod plan;
mod pos;
pub mod template;
mod template_compile;
pub mod thresholds;
mod wrappers;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

pub(crate) use diagnostic::suggestion;
pub use diagnostic::{Diagnostic, Diagnostics, LoadError};
pub use plan::Plan;

use diagnostic::Issue;
use plan::Pos;

/// Reads a duration the way a scenario file does (`250ms`, `2s`, `1.5s`, `2m`, `1h`,
/// `100us`), with the same message when it does not: the command line uses this grammar too.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    literal::parse_duration(s).map_err(|e| format!("{}: {}", e.message, e.hint))
}

/// Settings that come from outside the file (command line, environment).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Replaces the file's `target:` (which may then be absent).
    pub target: Option<String>,
    /// Used only when the file has no `target:` and `target` is unset (`--serve`, which
    /// keeps the file's path and replaces only its address).
    pub default_target: Option<String>,
    /// Replaces the file's `seed:`.
    pub seed: Option<u64>,
    /// Values for `{{env.NAME}}`, resolved at load.
    pub env: HashMap<String, String>,
}

impl LoadOptions {
    /// Options with `env` taken from this process's environment (non-UTF-8 values skipped).
    pub fn from_process_env() -> Self {
        LoadOptions {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            ..LoadOptions::default()
        }
    }
}

/// Reads and loads a scenario file; messages name the file as given.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_str(&path.display().to_string(), &text, opts)
}

/// Loads a scenario from text; `file_name` is used in messages only.
pub fn load_str(file_name: &str, text: &str, opts: &LoadOptions) -> Result<Plan, LoadError> {
    let invalid = |issues| LoadError::Invalid(diagnostic::finish(file_name, text, issues));
    let root = parse_yaml(text).map_err(|i| invalid(vec![i]))?;
    let sink = RefCell::new(Vec::new());
    let model: Option<model::ScenarioM> = de::from_node(&root, &sink);
    let issues = sink.into_inner();
    match model {
        Some(m) => lower_scenario::lower(m, opts, text, issues).map_err(invalid),
        None => Err(invalid(issues)),
    }
}

/// Alias limits low enough that an alias bomb fails at once, high enough for real reuse of
/// anchored steps.
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.alias_limits = serde_saphyr::alias_limits! {
        max_total_replayed_events: 20_000,
        max_replay_stack_depth: 16,
        max_alias_expansions_per_anchor: 200,
    };
    o.with_snippet = false;
    // YAML 1.2 booleans only: `on:` (auto_reply) and `yes`/`no` stay strings.
    o.strict_booleans = true;
    o
}

/// The text (YAML, or JSON) as a spanned tree, for other readers of YAML documents: the
/// error is its position and message.
pub(crate) fn parse_spanned(text: &str) -> Result<node::Node, (Pos, String)> {
    parse_yaml(text).map_err(|i| (i.pos, i.message))
}

/// The text as a spanned tree; malformed YAML is the only error here.
fn parse_yaml(text: &str) -> Result<node::Node, Issue> {
    let built: node::Built =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
            let pos = e
                .location()
                .map(|l| node::pos_of(&l))
                .unwrap_or(Pos { line: 1, col: 1 });
            Issue::new(pos, yaml_message(&e.to_string()))
        })?;
    let mut root = built.0;
    let lines: Vec<&str> = text.lines().collect();
    node::fix_string_columns(&mut root, &lines);
    Ok(root)
}

/// serde-saphyr's message without its own position suffix (ours is in front).
fn yaml_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m).trim();
    let cut = first.find(" at line ").unwrap_or(first.len());
    let msg = first[..cut].trim_end_matches(',').trim();
    // Advice about the parser's own options means nothing to a scenario author.
    let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
    format!("invalid YAML: {msg}")
}

/// Hex SHA-256 of the file text, recorded in results.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
