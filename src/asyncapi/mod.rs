//! AsyncAPI 2.6 and 3.x documents as squall profiles: `squall schemas import asyncapi`, and
//! `protocol: ./api.asyncapi.yaml` in a scenario (imported in memory at load).
//!
//! Read with a parser of our own over the spanned YAML tree (`doc`), not a typed AsyncAPI
//! model: payload schemas must reach the profile exactly as written, `$ref`s into relative
//! files must be followed, and every message must point at file:line:col of the document.

mod bundle;
mod doc;
mod export;
mod kinds;
mod model;
mod profile;

use std::path::{Path, PathBuf};

use crate::protocol::catalog::{Located, Origin};
use crate::protocol::ProfileError;

pub use export::{export, write as write_export};
pub use profile::Imported;

/// An AsyncAPI document that could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The document says something squall cannot use; `at` is `file:line:col`.
    #[error("{at}: {message}")]
    Document {
        /// Where, as `file:line:col`.
        at: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The profile's name [default: the document's file name without `.asyncapi.yaml`,
    /// `.yaml`, `.yml` or `.json`].
    pub name: Option<String>,
    /// The discriminator's JSON pointer [default: found in the payloads].
    pub discriminator: Option<String>,
}

/// Imports the document at `path` as a profile (its files in memory).
pub fn import(path: &Path, opts: &Options) -> Result<Imported, ImportError> {
    let mut docs = doc::Docs::open(path)?;
    let api = model::read(&mut docs)?;
    let name = opts.name.clone().unwrap_or_else(|| default_name(path));
    profile::build(&mut docs, &api, &name, opts.discriminator.as_deref())
}

/// `api.asyncapi.yaml` → `api`, `kraken-3.1.yml` → `kraken-3.1`.
fn default_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or("asyncapi");
    stem.strip_suffix(".asyncapi").unwrap_or(stem).to_string()
}

/// Where imported profiles appear to live (in messages): no real folder.
pub const IMPORTED_ROOT: &str = "/asyncapi";

/// The document at `path`, imported in memory, ready to load as a profile.
pub fn import_located(path: &Path) -> Result<Located, ProfileError> {
    let imported = import(path, &Options::default()).map_err(|e| ProfileError {
        problems: vec![format!("protocol {}: {e}", path.display())],
    })?;
    let dir = Path::new(IMPORTED_ROOT).join(&imported.name);
    Ok(Located {
        source: imported.source(&dir),
        dir,
        origin: Origin::Document(path.to_path_buf()),
    })
}

#[cfg(test)]
mod tests;
