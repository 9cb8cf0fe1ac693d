//! Where a profile's files are: a folder on disk, the profiles built into the binary (the
//! five bundled ones, embedded by `build.rs`), or a document imported in memory. Looking a
//! profile up by name or path is [`crate::locate`]'s, above this module and AsyncAPI.

use std::path::{Path, PathBuf};

use super::source::Source;
use super::{Profile, ProfileError};

/// Where the built-in profiles appear to live (in messages): no real folder.
pub const BUILT_IN_ROOT: &str = "/built-in";

/// The bundled profiles: name, then each file's path inside the profile and its text.
static BUILT_IN: &[(&str, &[(&str, &str)])] = include!(concat!(env!("OUT_DIR"), "/built_in.rs"));

/// Where a profile was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A folder on disk (the profile's own folder).
    Folder(PathBuf),
    /// Built into the binary.
    BuiltIn,
    /// Imported in memory from an AsyncAPI document.
    Document(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Folder(p) => write!(f, "{}", p.display()),
            Origin::BuiltIn => f.write_str("built in"),
            Origin::Document(p) => write!(f, "{} (AsyncAPI, imported at load)", p.display()),
        }
    }
}

/// A profile's files, found but not yet compiled.
#[derive(Debug, Clone)]
pub struct Located {
    /// Where its files are read.
    pub source: Source,
    /// Its folder (in `source`).
    pub dir: PathBuf,
    /// Where it was found.
    pub origin: Origin,
}

impl Located {
    /// Compiles the profile.
    pub fn load(&self) -> Result<Profile, ProfileError> {
        Profile::load_in(&self.source, &self.dir)
    }

    /// Compiles the profile holding frames to `conformance`.
    pub fn load_with(
        &self,
        conformance: crate::protocol::Conformance,
    ) -> Result<Profile, ProfileError> {
        Profile::load_in_with(&self.source, &self.dir, conformance)
    }

    /// Compiles the profile without squall-server's extensions (`squall check --portable`).
    pub fn load_portable(&self) -> Result<Profile, ProfileError> {
        Profile::load_portable(&self.source, &self.dir)
    }
}

/// The built-in profile `name`, if there is one.
pub fn built_in(name: &str) -> Option<Located> {
    let (name, files) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
    let dir = Path::new(BUILT_IN_ROOT).join(name);
    Some(Located {
        source: Source::memory(&dir, files.iter().map(|(f, t)| (*f, (*t).to_string()))),
        dir,
        origin: Origin::BuiltIn,
    })
}

/// The names of the built-in profiles, sorted.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(n, _)| *n)
}

/// A profile folder on disk.
pub(crate) fn folder(dir: PathBuf) -> Located {
    Located {
        source: Source::Disk,
        origin: Origin::Folder(dir.clone()),
        dir,
    }
}

/// A [`ProfileError`] of one problem.
pub(crate) fn problem(message: String) -> ProfileError {
    ProfileError {
        problems: vec![message],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_profile_is_built_in_and_loads() {
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["covetpy", "hexabase", "kecs", "kite", "newloom"]);
        for n in names {
            let p = built_in(n).unwrap().load().unwrap();
            assert_eq!(p.name, n);
        }
    }

    #[test]
    fn an_imported_profile_is_checked_by_the_compiled_checks_too() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/asyncapi/kraken-request-reply-3.1.yml");
        let p = crate::asyncapi::import_located(&doc)
            .unwrap()
            .load()
            .unwrap();
        for (dir, schemas) in [("in", &p.inbound), ("out", &p.outbound)] {
            for (kind, s) in schemas {
                assert!(
                    s.compiled.is_some(),
                    "{dir} {kind} left to the general validator"
                );
            }
        }
    }
}
