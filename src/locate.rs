//! Finding a profile by name or path. A name is looked up in order: `--schemas DIR`, the
//! `schemas/` folder beside the scenario file, the current directory's `schemas/`, and last
//! the profiles built into the binary. A path names a profile folder, or an AsyncAPI
//! document imported in memory. It sits above `protocol` and `asyncapi`, the two it joins.

use std::path::{Path, PathBuf};

use crate::protocol::catalog::{built_in, built_in_names, folder, problem, Located, Origin};
use crate::protocol::ProfileError;

/// The folders a name is looked up in, before the built-in profiles.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// `--schemas DIR`.
    pub schemas: Option<PathBuf>,
    /// The scenario file's folder: its `schemas/` is searched, and relative paths in its
    /// `protocol:` start there.
    pub scenario_dir: Option<PathBuf>,
}

/// One row of `squall schemas list`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The profile's name (its folder's).
    pub name: String,
    /// Where it is.
    pub origin: Origin,
    /// Whether a profile of the same name earlier in the lookup order hides it.
    pub shadowed: bool,
}

impl Places {
    /// The folders searched for a name, in order, each with how it is described.
    pub fn folders(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        if let Some(s) = &self.schemas {
            out.push(("--schemas".to_string(), s.clone()));
        }
        if let Some(d) = &self.scenario_dir {
            out.push(("beside the scenario".to_string(), d.join("schemas")));
        }
        out.push(("current directory".to_string(), PathBuf::from("schemas")));
        out
    }

    /// Finds the profile `spec` names: a folder holding `protocol.yaml`, an AsyncAPI
    /// document, or a name looked up in [`Places::folders`] and then the built-in ones.
    pub fn locate(&self, spec: &str) -> Result<Located, ProfileError> {
        let path = match &self.scenario_dir {
            Some(d) if Path::new(spec).is_relative() => d.join(spec),
            _ => PathBuf::from(spec),
        };
        if path.join("protocol.yaml").is_file() {
            return Ok(folder(path));
        }
        if path.is_file() {
            return crate::asyncapi::import_located(&path);
        }
        if looks_like_path(spec) {
            return Err(problem(format!(
                "protocol {spec}: {} is neither a profile folder (with protocol.yaml) nor an \
                 AsyncAPI document",
                path.display()
            )));
        }
        for (_, dir) in self.folders() {
            let here = dir.join(spec);
            if here.join("protocol.yaml").is_file() {
                return Ok(folder(here));
            }
        }
        built_in(spec).ok_or_else(|| self.unknown(spec))
    }

    /// Every profile found, in lookup order (a name found twice: the later one shadowed).
    pub fn list(&self) -> Vec<Listed> {
        let mut out: Vec<Listed> = Vec::new();
        for (_, dir) in self.folders() {
            let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.path()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.join("protocol.yaml").is_file())
                .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
                .collect();
            names.sort();
            for (name, p) in names {
                let shadowed = out.iter().any(|l| l.name == name);
                out.push(Listed {
                    name,
                    origin: Origin::Folder(p),
                    shadowed,
                });
            }
        }
        for name in built_in_names() {
            let shadowed = out.iter().any(|l| l.name == name);
            out.push(Listed {
                name: name.to_string(),
                origin: Origin::BuiltIn,
                shadowed,
            });
        }
        out
    }

    fn unknown(&self, spec: &str) -> ProfileError {
        let mut known: Vec<String> = self.list().into_iter().map(|l| l.name).collect();
        known.sort();
        known.dedup();
        let hint = crate::scenario::suggestion(spec, known.iter().map(String::as_str));
        let looked: Vec<String> = self
            .folders()
            .iter()
            .map(|(why, d)| format!("{} ({why})", d.display()))
            .collect();
        problem(format!(
            "unknown protocol '{spec}'{hint}; known: {}. Looked in {}, then the built-in \
             profiles; name a profile folder or an AsyncAPI document by its path, or pass \
             --schemas DIR",
            known.join(", "),
            looked.join(", ")
        ))
    }
}

fn looks_like_path(spec: &str) -> bool {
    spec.contains('/')
        || spec.contains('\\')
        || spec.starts_with('.')
        || [".yaml", ".yml", ".json"].iter().any(|x| spec.ends_with(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::catalog::Origin;

    #[test]
    fn a_folder_on_the_path_comes_before_the_built_in_profile() {
        let d = tempfile::tempdir().unwrap();
        let mine = d.path().join("schemas/kite");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(
            mine.join("protocol.yaml"),
            "name: kite\ndiscriminator: [/t]\n",
        )
        .unwrap();
        let places = Places {
            schemas: None,
            scenario_dir: Some(d.path().to_path_buf()),
        };
        let found = places.locate("kite").unwrap();
        assert_eq!(found.origin, Origin::Folder(mine));
        let listed = places.list();
        let kite: Vec<&Listed> = listed.iter().filter(|l| l.name == "kite").collect();
        assert!(!kite[0].shadowed && kite.last().unwrap().shadowed);
        assert_eq!(kite.last().unwrap().origin, Origin::BuiltIn);
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones_and_suggests() {
        let e = Places::default().locate("kitee").unwrap_err().to_string();
        assert!(
            e.contains("unknown protocol 'kitee' (did you mean 'kite'?)"),
            "{e}"
        );
        assert!(e.contains("covetpy, hexabase, kecs, kite, newloom"), "{e}");
    }
}
