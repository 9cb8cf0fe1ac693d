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

    /// The JSON text, when the body has no expressions.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segs.as_slice() {
            [Seg::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

impl Expr {
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
            Expr::Uuid | Expr::Now => {
                out.push('"');
                self.write_text(ctx, out);
                out.write_str("\"")
            }
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
