//! Compiling `{{...}}` templates: expression syntax, name resolution and JSON pre-serialization.

use std::collections::HashMap;

use serde_json::Value;

use super::diagnostic::{suggestion, Issue};
use super::literal::parse_size;
use super::node::{Kind, Node};
use super::plan::Pos;
use super::template::{
    Choice, ChunkVar, Expr, JsonTemplate, Part, Seg, StepVar, Template, UploadVar,
};

/// Names that need no declaration.
pub(crate) const BUILTINS: [&str; 6] = ["uuid", "vu", "iter", "seq", "now", "now_us"];

/// Names of template functions and prefixes; variables may not take them either.
pub(crate) const RESERVED: [&str; 7] = ["rand", "pick", "env", "sent", "blob", "upload", "chunk"];

/// Largest `{{blob}}`.
const MAX_BLOB: u64 = 64 << 20;

const EXPR_HINT: &str = "expressions are uuid, vu, iter, seq, now, now_us, env.NAME, rand A B, \
pick [\"a\",\"b\"], pick a b, blob SIZE, sent./pointer, or a variable from vars:/capture:";

/// What names a template may use at its place in the file.
pub(crate) struct Scope<'a> {
    /// Environment for `env.NAME` (resolved now, at load).
    pub env: &'a HashMap<String, String>,
    /// Variables declared so far (`vars:` and earlier `capture:`s).
    pub vars: &'a [String],
    /// Which `upload` step values are in scope here.
    pub step: StepScope,
}

/// Which values of an `upload` step a template may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StepScope {
    /// Outside an upload step.
    #[default]
    None,
    /// `upload.*` (start, started, complete, expect_error, finish, name).
    Upload,
    /// `upload.*` and `chunk.*` (chunk, chunk_ack).
    Chunk,
}

/// A template error at a byte offset of the template text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TplError {
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl TplError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        TplError {
            offset,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    /// The error as an issue, given where the template text starts in the file.
    pub fn at(self, src: &str, start: Pos) -> Issue {
        let mut issue = Issue::new(offset_pos(src, start, self.offset), self.message);
        issue.hint = self.hint;
        issue
    }
}

/// Position of byte `offset` of `src`, whose first character stands at `start`.
pub(crate) fn offset_pos(src: &str, start: Pos, offset: usize) -> Pos {
    let before = &src[..offset.min(src.len())];
    Pos {
        line: start.line,
        col: start.col + before.chars().count() as u32,
    }
}

/// Compiles a string template.
pub(crate) fn compile(src: &str, scope: &Scope) -> Result<Template, TplError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while let Some(rel) = src[i..].find("{{") {
        let open = i + rel;
        lit.push_str(&src[i..open]);
        let body_start = open + 2;
        let Some(len) = src[body_start..].find("}}") else {
            return Err(TplError::new(open, "unclosed '{{'").hint("end the expression with '}}'"));
        };
        let inner = &src[body_start..body_start + len];
        let lead = inner.len() - inner.trim_start().len();
        match expr(inner.trim(), body_start + lead, scope)? {
            Parsed::Text(s) => lit.push_str(&s),
            Parsed::Expr(e) => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Expr(e));
            }
        }
        i = body_start + len + 2;
    }
    lit.push_str(&src[i..]);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(Template { parts })
}

enum Parsed {
    /// Resolved at load (`env.NAME`).
    Text(String),
    Expr(Expr),
}

fn expr(e: &str, off: usize, scope: &Scope) -> Result<Parsed, TplError> {
    let (head, rest) = match e.find(char::is_whitespace) {
        Some(i) => (&e[..i], e[i..].trim_start()),
        None => (e, ""),
    };
    let rest_off = off + (e.len() - rest.len());
    let no_args = |x: Expr| {
        if rest.is_empty() {
            Ok(Parsed::Expr(x))
        } else {
            Err(TplError::new(
                rest_off,
                format!("'{head}' takes no arguments"),
            ))
        }
    };
    match head {
        "" => Err(TplError::new(off, "empty template expression").hint(EXPR_HINT)),
        "uuid" => no_args(Expr::Uuid),
        "vu" => no_args(Expr::Vu),
        "iter" => no_args(Expr::Iter),
        "seq" => no_args(Expr::Seq),
        "now" => no_args(Expr::Now),
        "now_us" => no_args(Expr::NowUs),
        "rand" => rand(rest, rest_off),
        "pick" => pick(rest, rest_off),
        "blob" if rest.is_empty() => {
            Err(TplError::new(off, "blob needs a size")
                .hint("write {{blob 600KiB}} or {{blob 1000}}"))
        }
        "blob" => blob(rest, rest_off),
        _ if head.starts_with("upload.") || head.starts_with("chunk.") => {
            if !rest.is_empty() {
                return Err(TplError::new(
                    rest_off,
                    format!("'{head}' takes no arguments"),
                ));
            }
            step_var(head, off, scope.step).map(|v| Parsed::Expr(Expr::Step(v)))
        }
        _ if head.starts_with("env.") => env_var(&head[4..], (rest, rest_off), off, scope),
        _ if head.starts_with("sent.") => sent(&head[5..], rest, off),
        _ if is_ident(head) && rest.is_empty() => var(head, off, scope),
        _ => Err(TplError::new(
            off,
            format!(
                "unknown template expression '{e}'{}",
                suggestion(head, BUILTINS.into_iter().chain(["rand", "pick", "blob"]))
            ),
        )
        .hint(EXPR_HINT)),
    }
}

/// `env.NAME`: the variable's value, read at load.
fn env_var(
    name: &str,
    (rest, rest_off): (&str, usize),
    off: usize,
    scope: &Scope,
) -> Result<Parsed, TplError> {
    match scope.env.get(name) {
        Some(v) if rest.is_empty() => Ok(Parsed::Text(v.clone())),
        Some(_) => Err(TplError::new(rest_off, "'env.NAME' takes no arguments")),
        None => Err(
            TplError::new(off, format!("undefined environment variable '{name}'"))
                .hint(format!("set {name} in the environment squall runs in")),
        ),
    }
}

/// `sent./pointer`: a field of the last frame sent (`p` after `sent.`, `rest` what follows).
fn sent(p: &str, rest: &str, off: usize) -> Result<Parsed, TplError> {
    if !p.is_empty() && !p.starts_with('/') || !rest.is_empty() {
        return Err(
            TplError::new(off + 5, format!("'{p}{rest}' is not a JSON pointer"))
                .hint("write sent./field or sent./data/0/id"),
        );
    }
    Ok(Parsed::Expr(Expr::Sent(p.to_owned())))
}

/// A variable by name: one `vars:` or an earlier capture set.
fn var(name: &str, off: usize, scope: &Scope) -> Result<Parsed, TplError> {
    if scope.vars.iter().any(|v| v == name) {
        return Ok(Parsed::Expr(Expr::Var(name.to_owned())));
    }
    let known = scope.vars.iter().map(String::as_str).chain(BUILTINS);
    Err(TplError::new(
        off,
        format!("undefined variable '{name}'{}", suggestion(name, known)),
    )
    .hint("variables come from vars: or an earlier capture: in the same behaviour"))
}

const UPLOAD_FIELDS: [&str; 7] = [
    "id",
    "name",
    "size",
    "chunks",
    "chunk_size",
    "sha256",
    "corrupt",
];
const CHUNK_FIELDS: [&str; 6] = ["index", "offset", "size", "base64", "sha256", "last"];

/// `upload.<field>` or `chunk.<field>`, where the step scope allows it.
fn step_var(head: &str, off: usize, scope: StepScope) -> Result<StepVar, TplError> {
    let (prefix, field) = head.split_once('.').unwrap_or((head, ""));
    let unknown = |fields: &[&str]| {
        TplError::new(
            off + prefix.len() + 1,
            format!(
                "unknown field '{field}' of {prefix}{}",
                suggestion(field, fields.iter().copied())
            ),
        )
        .hint(format!("{prefix} fields are {}", fields.join(", ")))
    };
    let var = if prefix == "upload" {
        StepVar::Upload(match field {
            "id" => UploadVar::Id,
            "name" => UploadVar::Name,
            "size" => UploadVar::Size,
            "chunks" => UploadVar::Chunks,
            "chunk_size" => UploadVar::ChunkSize,
            "sha256" => UploadVar::Sha256,
            "corrupt" => UploadVar::Corrupt,
            _ => return Err(unknown(&UPLOAD_FIELDS)),
        })
    } else {
        StepVar::Chunk(match field {
            "index" => ChunkVar::Index,
            "offset" => ChunkVar::Offset,
            "size" => ChunkVar::Size,
            "base64" => ChunkVar::Base64,
            "sha256" => ChunkVar::Sha256,
            "last" => ChunkVar::Last,
            _ => return Err(unknown(&CHUNK_FIELDS)),
        })
    };
    match (var, scope) {
        (StepVar::Upload(_), StepScope::Upload | StepScope::Chunk)
        | (StepVar::Chunk(_), StepScope::Chunk) => Ok(var),
        (StepVar::Upload(_), StepScope::None) => Err(TplError::new(
            off,
            format!("'{head}' is only defined inside an upload step"),
        )
        .hint("upload.* values exist in the templates and matchers of an upload: step")),
        (StepVar::Chunk(_), _) => Err(TplError::new(
            off,
            format!("'{head}' is only defined in an upload step's chunk: and chunk_ack:"),
        )
        .hint("elsewhere in an upload step use upload.* (upload.corrupt names the bad chunk)")),
    }
}

/// `blob 600KiB`: a filler string of that many bytes.
fn blob(rest: &str, off: usize) -> Result<Parsed, TplError> {
    if rest.contains(char::is_whitespace) {
        return Err(TplError::new(off, "blob takes one size")
            .hint("write {{blob 600KiB}} or {{blob 1000}}"));
    }
    let n = parse_size(rest).map_err(|e| TplError::new(off, e.message).hint(e.hint))?;
    if n > MAX_BLOB {
        return Err(TplError::new(
            off,
            format!("blob of {n} bytes is over the 64MiB limit"),
        ));
    }
    Ok(Parsed::Expr(Expr::Blob(n)))
}

/// Variable names: letters, digits, `_` and `-`, not starting with a digit.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn rand(rest: &str, off: usize) -> Result<Parsed, TplError> {
    let usage = || TplError::new(off, "rand needs two integers").hint("write {{rand 1 100}}");
    let nums: Vec<i64> = rest
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| usage())?;
    match nums[..] {
        [a, b] if a <= b => Ok(Parsed::Expr(Expr::Rand(a, b))),
        [a, b] => Err(TplError::new(
            off,
            format!("rand bounds are reversed: {a} > {b}"),
        )),
        _ => Err(usage()),
    }
}

fn pick(rest: &str, off: usize) -> Result<Parsed, TplError> {
    let values: Vec<Value> = if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| {
            TplError::new(off, format!("pick list is not a JSON array: {e}"))
                .hint("write {{pick [\"a\", \"b\"]}} or {{pick a b}}")
        })?
    } else {
        rest.split_whitespace()
            .map(|w| Value::String(w.to_owned()))
            .collect()
    };
    if values.is_empty() {
        return Err(TplError::new(off, "pick needs at least one choice")
            .hint("write {{pick [\"a\", \"b\"]}} or {{pick a b}}"));
    }
    let choices = values
        .iter()
        .map(|v| Choice {
            text: match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            json: v.to_string(),
        })
        .collect();
    Ok(Parsed::Expr(Expr::Pick(choices)))
}

/// Compiles a JSON body; every bad string in it is reported.
pub(crate) fn compile_json(node: &Node, scope: &Scope) -> Result<JsonTemplate, Vec<Issue>> {
    let mut b = JsonBuilder {
        segs: Vec::new(),
        lit: String::new(),
        errors: Vec::new(),
    };
    b.node(node, scope);
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    b.flush();
    Ok(JsonTemplate { segs: b.segs })
}

struct JsonBuilder {
    segs: Vec<Seg>,
    lit: String,
    errors: Vec<Issue>,
}

impl JsonBuilder {
    fn flush(&mut self) {
        if !self.lit.is_empty() {
            self.segs.push(Seg::Lit(std::mem::take(&mut self.lit)));
        }
    }

    fn push(&mut self, seg: Seg) {
        self.flush();
        self.segs.push(seg);
    }

    fn node(&mut self, node: &Node, scope: &Scope) {
        match &node.kind {
            Kind::Null => self.lit.push_str("null"),
            Kind::Bool(b) => self.lit.push_str(if *b { "true" } else { "false" }),
            Kind::Int(i) => self.lit.push_str(&i.to_string()),
            Kind::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => self.lit.push_str(&n.to_string()),
                None => self
                    .errors
                    .push(Issue::new(node.pos, format!("{f} is not a JSON number"))),
            },
            Kind::Str { value, content } => self.string(value, *content, scope),
            Kind::Seq(items) => {
                self.lit.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(',');
                    }
                    self.node(item, scope);
                }
                self.lit.push(']');
            }
            Kind::Map(entries) => {
                self.lit.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(',');
                    }
                    self.lit
                        .push_str(&Value::String(k.name.clone()).to_string());
                    self.lit.push(':');
                    self.node(v, scope);
                }
                self.lit.push('}');
            }
        }
    }

    fn string(&mut self, src: &str, start: Pos, scope: &Scope) {
        let t = match compile(src, scope) {
            Ok(t) => t,
            Err(e) => return self.errors.push(e.at(src, start)),
        };
        // A string that is exactly one expression stands for a typed value.
        if let [Part::Expr(e)] = t.parts.as_slice() {
            return self.push(Seg::Typed(e.clone()));
        }
        self.lit.push('"');
        for part in t.parts {
            match part {
                Part::Lit(s) => {
                    let quoted = Value::String(s).to_string();
                    self.lit.push_str(&quoted[1..quoted.len() - 1]);
                }
                Part::Expr(e) => self.push(Seg::Escaped(e)),
            }
        }
        self.lit.push('"');
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
