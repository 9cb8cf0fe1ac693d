//! Where a profile's files are read from: a folder on disk, or files held in memory (the
//! profiles built into the binary, and profiles imported from an AsyncAPI document at load).
//!
//! Everything that reads a profile (`protocol.yaml`, schemas and the files their `$ref`s
//! name, examples) goes through a [`Source`], so a profile in memory is checked exactly as
//! one on disk.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A profile's file system.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// The real file system.
    #[default]
    Disk,
    /// Files in memory, by absolute path (e.g. `/built-in/kite/protocol.yaml`).
    Memory(Arc<BTreeMap<PathBuf, String>>),
}

impl Source {
    /// Files in memory: `files` are paths relative to `root` (an absolute path naming no
    /// real folder, shown in messages) with their text.
    pub fn memory<'a>(root: &Path, files: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        Source::Memory(Arc::new(
            files
                .into_iter()
                .map(|(rel, text)| (normalize(&root.join(rel)), text))
                .collect(),
        ))
    }

    /// The text of a file.
    pub fn read(&self, path: &Path) -> io::Result<String> {
        match self {
            Source::Disk => std::fs::read_to_string(path),
            Source::Memory(files) => files
                .get(&normalize(path))
                .cloned()
                .ok_or_else(|| not_found(path)),
        }
    }

    /// The one spelling of a path to an existing file or folder (`..` and `.` resolved).
    pub fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        match self {
            Source::Disk => path.canonicalize(),
            Source::Memory(files) => {
                let p = normalize(path);
                let exists = files.contains_key(&p) || files.keys().any(|k| k.starts_with(&p));
                exists.then_some(p).ok_or_else(|| not_found(path))
            }
        }
    }

    /// The files directly inside a folder (not sorted).
    pub fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        match self {
            Source::Disk => std::fs::read_dir(dir)?
                .map(|e| e.map(|e| e.path()))
                .collect(),
            Source::Memory(files) => {
                let dir = normalize(dir);
                let found: Vec<PathBuf> = files
                    .keys()
                    .filter(|k| k.parent() == Some(dir.as_path()))
                    .cloned()
                    .collect();
                if found.is_empty() && !files.keys().any(|k| k.starts_with(&dir)) {
                    return Err(not_found(&dir));
                }
                Ok(found)
            }
        }
    }

    /// Whether `path` is a file.
    pub fn is_file(&self, path: &Path) -> bool {
        match self {
            Source::Disk => path.is_file(),
            Source::Memory(files) => files.contains_key(&normalize(path)),
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

/// `path` with `.` and `..` resolved by their text (no file system involved); a relative
/// path keeps the `..`s it cannot resolve.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                let climbable = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if climbable {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_lists_and_resolves_dots() {
        let s = Source::memory(
            Path::new("/built-in/p"),
            [
                ("protocol.yaml", "name: p".to_string()),
                ("inbound/a.json", "{}".to_string()),
                ("defs.json", "{}".to_string()),
            ],
        );
        let a = Path::new("/built-in/p/inbound/../defs.json");
        assert_eq!(s.read(a).unwrap(), "{}");
        assert_eq!(
            s.canonical(a).unwrap(),
            PathBuf::from("/built-in/p/defs.json")
        );
        assert!(s.canonical(Path::new("/built-in/p")).is_ok());
        assert!(s.read(Path::new("/built-in/p/nope.json")).is_err());
        let mut in_root = s.list(Path::new("/built-in/p")).unwrap();
        in_root.sort();
        assert_eq!(in_root.len(), 2);
        assert!(s.list(Path::new("/built-in/q")).is_err());
        assert!(s.is_file(Path::new("/built-in/p/protocol.yaml")));
        assert_eq!(normalize(Path::new("../a/./b/../c")), Path::new("../a/c"));
        assert_eq!(normalize(Path::new("/a/../../c")), Path::new("/c"));
    }
}
