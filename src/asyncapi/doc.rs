//! AsyncAPI documents as read: YAML or JSON, each file parsed once, `$ref`s followed inside a
//! document and into relative files, and every place known by file:line:col for messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ImportError;
use crate::protocol::source::{normalize, Source};
use crate::scenario::node::{Kind, Node};

/// `$ref` chains longer than this are refused (a cycle of references).
const MAX_CHAIN: usize = 32;

/// A place in a document: its file and a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct At {
    pub file: PathBuf,
    pub pointer: String,
}

impl At {
    /// The place one member or item further in.
    pub fn join(&self, segment: &str) -> At {
        At {
            file: self.file.clone(),
            pointer: format!("{}/{}", self.pointer, escape(segment)),
        }
    }

    /// `#/components/messages/ping` (with the file's name when it is not the root's).
    pub fn path(&self, root: &Path) -> String {
        if self.file == root {
            format!("#{}", self.pointer)
        } else {
            format!("{}#{}", self.file.display(), self.pointer)
        }
    }
}

struct Loaded {
    value: Value,
    tree: Node,
}

/// The files of one document, loaded as `$ref`s reach them.
pub(crate) struct Docs {
    source: Source,
    files: HashMap<PathBuf, Loaded>,
    /// The document named on the command line (or in the scenario).
    pub root: PathBuf,
}

impl Docs {
    /// Reads the document at `path`.
    pub fn open(path: &Path) -> Result<Docs, ImportError> {
        Docs::open_in(&Source::Disk, path)
    }

    /// Reads the document at `path` in `source` (a profile's schema files, for export).
    pub fn open_in(source: &Source, path: &Path) -> Result<Docs, ImportError> {
        let mut docs = Docs {
            source: source.clone(),
            files: HashMap::new(),
            root: normalize(path),
        };
        docs.load(&docs.root.clone())?;
        Ok(docs)
    }

    /// The root of the main document.
    pub fn top(&self) -> At {
        At {
            file: self.root.clone(),
            pointer: String::new(),
        }
    }

    fn load(&mut self, path: &Path) -> Result<(), ImportError> {
        if self.files.contains_key(path) {
            return Ok(());
        }
        let text = self.source.read(path).map_err(|source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let tree = crate::scenario::parse_spanned(&text).map_err(|(pos, message)| {
            ImportError::Document {
                at: format!("{}:{}:{}", path.display(), pos.line, pos.col),
                message,
            }
        })?;
        let value = crate::scenario::node::to_json(&tree);
        self.files
            .insert(path.to_path_buf(), Loaded { value, tree });
        Ok(())
    }

    /// The value at a place, as written (no `$ref` followed).
    pub fn get(&self, at: &At) -> Option<&Value> {
        self.files.get(&at.file)?.value.pointer(&at.pointer)
    }

    /// The value at `at`, with `$ref`s followed (into other files too) to the place that
    /// holds it.
    pub fn deref(&mut self, at: &At) -> Result<(At, Value), ImportError> {
        let mut here = at.clone();
        for _ in 0..MAX_CHAIN {
            let v = self
                .get(&here)
                .cloned()
                .ok_or_else(|| self.error(at, format!("nothing at {}", here.path(&self.root))))?;
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => here = self.reference(&here, r)?,
                None => return Ok((here, v)),
            }
        }
        Err(self.error(at, "a cycle of $refs".to_string()))
    }

    /// Where `reference` (found at `from`) points; loads the file it names.
    pub fn reference(&mut self, from: &At, reference: &str) -> Result<At, ImportError> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        if file.contains("://") {
            return Err(self.error(
                from,
                format!(
                    "$ref {reference}: only references inside the document and to relative \
                     files are followed; download it and refer to the file"
                ),
            ));
        }
        let target = if file.is_empty() {
            from.file.clone()
        } else {
            normalize(&from.file.parent().unwrap_or(Path::new(".")).join(file))
        };
        if !file.is_empty() {
            self.load(&target).map_err(|e| match e {
                ImportError::Io { source, .. } => self.error(
                    from,
                    format!("$ref {reference}: {}: {source}", target.display()),
                ),
                other => other,
            })?;
        }
        let at = At {
            file: target,
            pointer: percent_decode(fragment),
        };
        if self.get(&at).is_none() {
            return Err(self.error(from, format!("$ref {reference} names nothing")));
        }
        Ok(at)
    }

    /// An error at a place of the document.
    pub fn error(&self, at: &At, message: String) -> ImportError {
        ImportError::Document {
            at: self.pos(at),
            message,
        }
    }

    /// `file:line:col` of a place (of its nearest enclosing node that exists).
    pub fn pos(&self, at: &At) -> String {
        let Some(loaded) = self.files.get(&at.file) else {
            return at.file.display().to_string();
        };
        let mut node = &loaded.tree;
        for seg in at.pointer.split('/').skip(1).map(unescape) {
            let next = match &node.kind {
                Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == seg).map(|e| &e.1),
                Kind::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        format!("{}:{}:{}", at.file.display(), node.pos.line, node.pos.col)
    }
}

/// A JSON pointer segment written for a pointer (`~` and `/` escaped).
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// A `$ref` fragment is a URI fragment: `%7B` stands for `{`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_into_relative_files_are_followed_and_places_have_positions() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("common")).unwrap();
        std::fs::write(
            d.path().join("api.yaml"),
            "a:\n  $ref: 'common/s.yaml#/defs/x%7By%7D'\nb:\n  c: 1\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("common/s.yaml"),
            "defs:\n  x{y}:\n    type: string\n",
        )
        .unwrap();
        let mut docs = Docs::open(&d.path().join("api.yaml")).unwrap();
        let (at, v) = docs.deref(&docs.top().join("a")).unwrap();
        assert_eq!(v, serde_json::json!({"type": "string"}));
        assert!(at.file.ends_with("common/s.yaml"));
        assert!(docs.pos(&at).ends_with("s.yaml:3:5"), "{}", docs.pos(&at));
        assert!(docs
            .pos(&docs.top().join("b").join("c"))
            .ends_with("api.yaml:4:6"));
        let e = docs
            .reference(&docs.top(), "#/nope")
            .unwrap_err()
            .to_string();
        assert!(e.contains("api.yaml:1:1: $ref #/nope names nothing"), "{e}");
    }
}
