//! Templates: `{{...}}` expressions inside strings and JSON bodies, compiled once at load.
//!
//! Compilation (`template_compile.rs`) resolves `env.NAME`, checks variable names and
//! pre-serializes every literal part, so rendering is a flat loop that only appends to the
//! caller's buffer: no parsing, no intermediate strings.

use std::fmt::{self, Write as _};

use rand::rngs::SmallRng;
use rand::RngExt;
use serde_json::Value;

/// What a template may read while rendering; the swarm implements it per VU.
pub trait Context {
    /// 1-based VU number.
    fn vu(&self) -> u64;
    /// 0-based iteration of this VU.
    fn iter(&self) -> u64;
    /// Next value of this VU's `{{seq}}` counter (starts at 1, increments per use).
    fn next_seq(&mut self) -> u64;
    /// The VU's seeded random generator.
    fn rng(&mut self) -> &mut SmallRng;
    /// A captured (or `vars:`) value.
    fn var(&self, name: &str) -> Option<&Value>;
    /// The value at `pointer` in the last frame this VU sent.
    fn sent(&mut self, pointer: &str) -> Option<Value>;
    /// The value of `upload.<field>` / `chunk.<field>` while an `upload` step renders its
    /// templates; `None` (text: nothing, JSON: `null`) anywhere else.
    fn step_value(&self, _var: StepVar) -> Option<StepValue<'_>> {
        None
    }
}

/// A [`Context`] with fixed values, for rendering a template outside a run: `squall check
/// --portable` renders stand-ins with it (no variables, nothing sent), and tests use it.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// `{{vu}}`.
    pub vu: u64,
    /// `{{iter}}`.
    pub iter: u64,
    /// The last `{{seq}}` given (the next is one more).
    pub seq: u64,
    /// The generator `pick` and `uuid` draw from.
    pub rng: SmallRng,
    /// Captured and `vars:` values.
    pub vars: std::collections::HashMap<String, Value>,
    /// The last frame "sent", read by `{{sent./pointer}}`.
    pub sent: Value,
}

impl Fixed {
    /// VU `vu`, iteration `iter`, a generator seeded with `seed`, no variables, nothing sent.
    pub fn new(vu: u64, iter: u64, seed: u64) -> Fixed {
        Fixed {
            vu,
            iter,
            seq: 0,
            rng: rand::SeedableRng::seed_from_u64(seed),
            vars: Default::default(),
            sent: Value::Null,
        }
    }
}

impl Context for Fixed {
    fn vu(&self) -> u64 {
        self.vu
    }
    fn iter(&self) -> u64 {
        self.iter
    }
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
    fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
    fn var(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }
    fn sent(&mut self, pointer: &str) -> Option<Value> {
        self.sent.pointer(pointer).cloned()
    }
}

/// A value an `upload` step puts in scope for its own templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepVar {
    /// `upload.<field>`: the file being uploaded.
    Upload(UploadVar),
    /// `chunk.<field>`: the chunk being sent.
    Chunk(ChunkVar),
}

/// `upload.<field>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadVar {
    /// `upload.id`: unique per upload (the step's `id:`, default a seeded v4 UUID).
    Id,
    /// `upload.name`: the file name (the step's `name:`, default `<id>.bin`).
    Name,
    /// `upload.size`: file size in bytes.
    Size,
    /// `upload.chunks`: number of chunks.
    Chunks,
    /// `upload.chunk_size`: bytes per chunk (the last may be shorter).
    ChunkSize,
    /// `upload.sha256`: lowercase hex SHA-256 of the whole file.
    Sha256,
    /// `upload.corrupt`: index of the chunk sent with a wrong checksum (`null` without one).
    Corrupt,
}

/// `chunk.<field>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkVar {
    /// `chunk.index`: 0-based.
    Index,
    /// `chunk.offset`: byte offset in the file.
    Offset,
    /// `chunk.size`: bytes in this chunk.
    Size,
    /// `chunk.base64`: the chunk's bytes, standard base64 with padding.
    Base64,
    /// `chunk.sha256`: lowercase hex SHA-256 of the chunk's bytes (wrong for the corrupt one).
    Sha256,
    /// `chunk.last`: whether this is the last chunk.
    Last,
}

/// The value of a [`StepVar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepValue<'a> {
    /// A count, index or size.
    Num(u64),
    /// Text (ids, names, hex, base64).
    Str(&'a str),
    /// A flag.
    Bool(bool),
}

/// A compiled string template: literal text and expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub(crate) parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Lit(String),
    Expr(Expr),
}

/// A compiled `{{...}}` expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `uuid`: a random (seeded) v4 UUID.
    Uuid,
    /// `vu`: the VU number.
    Vu,
    /// `iter`: the iteration number.
    Iter,
    /// `seq`: the VU's counter, 1, 2, 3...
    Seq,
    /// `now`: the current time, RFC 3339 UTC with milliseconds.
    Now,
    /// `now_us`: the current time, RFC 3339 UTC with microseconds.
    NowUs,
    /// `blob SIZE`: SIZE bytes of ASCII filler (a JSON string without escapes).
    Blob(u64),
    /// `upload.<field>` / `chunk.<field>`: a value of the running `upload` step.
    Step(StepVar),
    /// `rand A B`: a uniform integer in `[A, B]`.
    Rand(i64, i64),
    /// `pick ...`: one of the choices, uniformly.
    Pick(Vec<Choice>),
    /// `sent./pointer`: a value of the last frame sent.
    Sent(String),
    /// A `vars:` or captured variable.
    Var(String),
}

/// A `pick` choice, pre-rendered as text (inside strings) and as JSON (typed position).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub text: String,
    pub json: String,
}

impl Template {
    /// A template with no expressions.
    pub fn literal(s: &str) -> Template {
        Template {
            parts: vec![Part::Lit(s.to_owned())],
        }
    }

    /// The text, when the template has no expressions.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether any expression of the template is `e`.
    pub(crate) fn uses(&self, e: &Expr) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Expr(x) if x == e))
    }

    /// Most bytes the template can render, as far as load time knows: literal text, blobs,
    /// the longest `pick` choice and fixed-width values; variables, `sent.` values and
    /// upload values count nothing (their size is the target's or the upload's).
    pub fn max_len(&self) -> u64 {
        self.parts.iter().fold(0u64, |n, p| {
            n.saturating_add(match p {
                Part::Lit(s) => s.len() as u64,
                Part::Expr(e) => e.max_text_len(),
            })
        })
    }

    /// Appends the rendered text to `out`.
    pub fn render<C: Context>(&self, ctx: &mut C, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => e.write_text(ctx, out),
            }
        }
    }
}

/// A compiled JSON body whose strings may hold templates.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {
    pub(crate) segs: Vec<Seg>,
}

/// A piece of a [`JsonTemplate`]; literal JSON text is merged into as few pieces as possible.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    /// Pre-serialized JSON text.
    Lit(String),
    /// An expression standing for a whole JSON value (`"{{seq}}"` renders `1`).
    Typed(Expr),
    /// An expression inside a JSON string: its text, escaped.
    Escaped(Expr),
}

impl JsonTemplate {
    /// Appends the rendered compact JSON text to `out`.
    pub fn render<C: Context>(&self, ctx: &mut C, out: &mut String) {
        for seg in &self.segs {
            match seg {
                Seg::Lit(s) => out.push_str(s),
                Seg::Typed(e) => e.write_json(ctx, out),
                Seg::Escaped(e) => e.write_text(ctx, &mut Escape(out)),
            }
        }
    }

    /// Most bytes the body can render, counted as [`Template::max_len`] does.
    pub fn max_len(&self) -> u64 {
        self.segs.iter().fold(0u64, |n, seg| {
            n.saturating_add(match seg {
                Seg::Lit(s) => s.len() as u64,
                Seg::Typed(e) => e.max_json_len(),
                Seg::Escaped(e) => e.max_escaped_len(),
            })
        })
    }

    /// Whether any expression of the body is `e`.
    pub(crate) fn uses(&self, e: &Expr) -> bool {
        self.segs
            .iter()
            .any(|s| matches!(s, Seg::Typed(x) | Seg::Escaped(x) if x == e))
    }

    /// The JSON text, when the body has no expressions.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segs.as_slice() {
            [Seg::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

/// Widest decimal u64 or i64, in bytes.
const NUMBER_BYTES: u64 = 20;

impl Expr {
    /// Most bytes [`Expr::write_text`] can write, as load time knows it.
    fn max_text_len(&self) -> u64 {
        match self {
            Expr::Uuid => uuid::fmt::Hyphenated::LENGTH as u64,
            // `2026-01-01T00:00:00.000Z` and `.000000Z`.
            Expr::Now => 24,
            Expr::NowUs => 27,
            Expr::Vu | Expr::Iter | Expr::Seq | Expr::Rand(..) => NUMBER_BYTES,
            Expr::Blob(n) => *n,
            Expr::Pick(cs) => cs.iter().map(|c| c.text.len() as u64).max().unwrap_or(0),
            Expr::Sent(_) | Expr::Var(_) | Expr::Step(_) => 0,
        }
    }

    /// Most bytes [`Expr::write_json`] can write.
    fn max_json_len(&self) -> u64 {
        match self {
            Expr::Pick(cs) => cs.iter().map(|c| c.json.len() as u64).max().unwrap_or(0),
            Expr::Uuid | Expr::Now | Expr::NowUs | Expr::Blob(_) => self.max_text_len() + 2,
            other => other.max_text_len(),
        }
    }

    /// Most bytes the expression's text takes escaped inside a JSON string.
    fn max_escaped_len(&self) -> u64 {
        match self {
            Expr::Pick(cs) => cs
                .iter()
                .map(|c| {
                    let mut out = String::new();
                    let _ = Escape(&mut out).write_str(&c.text);
                    out.len() as u64
                })
                .max()
                .unwrap_or(0),
            // Everything else writes nothing that needs escaping.
            other => other.max_text_len(),
        }
    }

    /// Writes the expression as text (strings raw, other values as JSON).
    fn write_text<C: Context, W: fmt::Write>(&self, ctx: &mut C, w: &mut W) {
        // Writing to a String (or the escaper over one) cannot fail.
        let _ = match self {
            Expr::Pick(choices) => {
                let i = ctx.rng().random_range(0..choices.len());
                w.write_str(&choices[i].text)
            }
            Expr::Var(name) => match ctx.var(name) {
                Some(v) => write_value_text(v, w),
                None => Ok(()),
            },
            Expr::Sent(p) => match ctx.sent(p) {
                Some(v) => write_value_text(&v, w),
                None => Ok(()),
            },
            Expr::Uuid => write_uuid(ctx, w),
            Expr::Now => write!(w, "{}", humantime::format_rfc3339_millis(now())),
            Expr::NowUs => write!(w, "{}", humantime::format_rfc3339_micros(now())),
            Expr::Blob(n) => write_blob(*n, w),
            Expr::Step(v) => match ctx.step_value(*v) {
                Some(StepValue::Num(n)) => write!(w, "{n}"),
                Some(StepValue::Str(s)) => w.write_str(s),
                Some(StepValue::Bool(b)) => write!(w, "{b}"),
                None => Ok(()),
            },
            _ => self.write_number(ctx, w),
        };
    }

    /// Writes the expression as a JSON value.
    fn write_json<C: Context>(&self, ctx: &mut C, out: &mut String) {
        let _ = match self {
            Expr::Pick(choices) => {
                let i = ctx.rng().random_range(0..choices.len());
                out.write_str(&choices[i].json)
            }
            Expr::Var(name) => match ctx.var(name) {
                Some(v) => write!(out, "{v}"),
                None => out.write_str("null"),
            },
            Expr::Sent(p) => match ctx.sent(p) {
                Some(v) => write!(out, "{v}"),
                None => out.write_str("null"),
            },
            Expr::Uuid | Expr::Now | Expr::NowUs | Expr::Blob(_) => {
                out.push('"');
                self.write_text(ctx, out);
                out.write_str("\"")
            }
            Expr::Step(v) => match ctx.step_value(*v) {
                Some(StepValue::Num(n)) => write!(out, "{n}"),
                Some(StepValue::Str(s)) => {
                    out.push('"');
                    let _ = Escape(out).write_str(s);
                    out.write_str("\"")
                }
                Some(StepValue::Bool(b)) => write!(out, "{b}"),
                None => out.write_str("null"),
            },
            _ => self.write_number(ctx, out),
        };
    }

    fn write_number<C: Context, W: fmt::Write>(&self, ctx: &mut C, w: &mut W) -> fmt::Result {
        match *self {
            Expr::Vu => write!(w, "{}", ctx.vu()),
            Expr::Iter => write!(w, "{}", ctx.iter()),
            Expr::Seq => write!(w, "{}", ctx.next_seq()),
            Expr::Rand(a, b) => write!(w, "{}", ctx.rng().random_range(a..=b)),
            _ => unreachable!("not a number expression"),
        }
    }
}

fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// Filler for `{{blob}}`: printable ASCII that needs no escaping in JSON.
const BLOB_PATTERN: &str = "squall-blob:0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS";

/// Writes `n` bytes of [`BLOB_PATTERN`], repeated.
fn write_blob<W: fmt::Write>(n: u64, w: &mut W) -> fmt::Result {
    let mut left = n as usize;
    while left > 0 {
        let take = left.min(BLOB_PATTERN.len());
        w.write_str(&BLOB_PATTERN[..take])?;
        left -= take;
    }
    Ok(())
}

fn write_value_text<W: fmt::Write>(v: &Value, w: &mut W) -> fmt::Result {
    match v {
        Value::String(s) => w.write_str(s),
        other => write!(w, "{other}"),
    }
}

/// A v4 UUID from the VU's seeded generator, so runs with one seed repeat exactly.
fn write_uuid<C: Context, W: fmt::Write>(ctx: &mut C, w: &mut W) -> fmt::Result {
    let bytes: [u8; 16] = ctx.rng().random();
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    w.write_str(id.hyphenated().encode_lower(&mut buf))
}

/// Escapes text written through it for use inside a JSON string.
pub(crate) struct Escape<'a>(pub &'a mut String);

impl fmt::Write for Escape<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let out = &mut *self.0;
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            out.push_str(&s[start..i]);
            if esc.is_empty() {
                write!(out, "\\u{b:04x}")?;
            } else {
                out.push_str(esc);
            }
            start = i + 1;
        }
        out.push_str(&s[start..]);
        Ok(())
    }
}
