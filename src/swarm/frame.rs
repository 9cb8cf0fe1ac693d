//! An inbound text frame as the swarm sees it: its kind and correlation id as the
//! protocol's [`Checker`](crate::protocol::checker::Checker) read them, and the full JSON
//! value built only if something asks for it (a field matcher, a capture), then kept.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::Instant;

use serde_json::Value;

use crate::protocol::checker::Checked;
use crate::protocol::pointer::IdKey;

/// One inbound text frame.
pub struct Frame<'a> {
    text: &'a str,
    /// When it arrived.
    pub at: Instant,
    json: bool,
    kind: Option<Cow<'a, str>>,
    id: Option<IdKey>,
    full: OnceCell<Option<Value>>,
}

impl<'a> Frame<'a> {
    /// The frame `text` that arrived `at`, as the checker read it.
    pub fn new(text: &'a str, at: Instant, read: Checked<'a>) -> Frame<'a> {
        let full = match (read.json, read.value) {
            (false, _) => OnceCell::from(None),
            (true, Some(v)) => OnceCell::from(Some(v)),
            (true, None) => OnceCell::new(),
        };
        Frame {
            text,
            at,
            json: read.json,
            kind: read.kind,
            id: read.id,
            full,
        }
    }

    /// Whether the text was JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The frame's kind.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The correlation id.
    pub fn id(&self) -> Option<&IdKey> {
        self.id.as_ref()
    }

    /// The whole frame as JSON, parsed on first use.
    pub fn value(&self) -> Option<&Value> {
        self.full
            .get_or_init(|| serde_json::from_str(self.text).ok())
            .as_ref()
    }

    /// The text.
    pub fn text(&self) -> &'a str {
        self.text
    }
}
