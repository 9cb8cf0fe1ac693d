//! The files a scenario's pods need, gathered for a ConfigMap: the scenario itself and, when
//! its protocol is a profile folder or an AsyncAPI document on disk, that too, laid out so
//! that the scenario finds it in the pod exactly as it does here.

use std::path::{Component, Path, PathBuf};

use super::DeployError;
use crate::locate::Places;
use crate::protocol::catalog::Origin;
use crate::scenario::Plan;

/// A ConfigMap holds at most 1 MiB; what is left after its names and labels.
pub const MAX_BYTES: usize = 1_000_000;
/// More files than this in a profile folder is not a profile.
const MAX_FILES: usize = 2_000;

/// The files, each by its path relative to the mount point.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The scenario's path in the bundle.
    pub scenario: String,
    /// Every file, scenario included: path in the bundle (`/`-separated) and contents.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Gathers `scenario` (already loaded as `plan`) and the profile it names, looked up as
/// `squall run` would (`schemas` is run's `--schemas`). A built-in profile needs no file.
pub fn gather(scenario: &Path, plan: &Plan, schemas: Option<&Path>) -> Result<Bundle, DeployError> {
    let here = canonical(scenario)?;
    let dir = here.parent().unwrap_or(Path::new("/")).to_path_buf();
    let (root, extra) = match &plan.protocol {
        Some(spec) => profile_files(scenario, spec, schemas, &dir)?,
        None => (dir, Vec::new()),
    };
    let mut files = vec![(slashed(&rel(&root, &here)), read(&here)?)];
    for (disk, inside) in extra {
        files.push((slashed(&inside), read(&disk)?));
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let total: usize = files.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_BYTES {
        return Err(DeployError::File {
            path: scenario.display().to_string(),
            problem: format!(
                "the scenario and its profile come to {total} bytes, more than a ConfigMap \
                 holds (1 MiB); build an image with them in it instead"
            ),
        });
    }
    Ok(Bundle {
        scenario: slashed(&rel(&root, &here)),
        files,
    })
}

/// Files to carry: each on disk, and its path from the bundle's root.
type Carried = Vec<(PathBuf, PathBuf)>;

/// The files of the profile `spec` (named by `scenario` in `dir`), and the bundle's root:
/// `dir`, or a folder above it that holds the profile too.
fn profile_files(
    scenario: &Path,
    spec: &str,
    schemas: Option<&Path>,
    dir: &Path,
) -> Result<(PathBuf, Carried), DeployError> {
    let places = Places {
        schemas: schemas.map(Path::to_path_buf),
        scenario_dir: scenario.parent().map(Path::to_path_buf),
    };
    let profile_err = |source| DeployError::Profile {
        scenario: scenario.display().to_string(),
        source,
    };
    let located = places.locate(spec).map_err(profile_err)?;
    located.load().map_err(profile_err)?;
    let by_path = scenario
        .parent()
        .unwrap_or(Path::new(""))
        .join(spec)
        .exists();
    match (&located.origin, by_path) {
        (Origin::BuiltIn, _) => Ok((dir.to_path_buf(), Vec::new())),
        (Origin::Folder(p) | Origin::Document(p), true) => by_its_path(spec, p, dir),
        // Found by name in a schemas/ folder: beside the scenario in the pod.
        (Origin::Folder(p) | Origin::Document(p), false) => {
            Ok((dir.to_path_buf(), by_its_name(spec, p)?))
        }
    }
}

/// A profile the scenario names by its path `spec` (found at `p`): where it is from the
/// common root of it and the scenario's `dir`.
fn by_its_path(spec: &str, p: &Path, dir: &Path) -> Result<(PathBuf, Carried), DeployError> {
    if Path::new(spec).is_absolute() {
        return Err(DeployError::File {
            path: spec.to_string(),
            problem: "an absolute protocol path cannot be carried into the pods; \
                      name the profile by a path relative to the scenario"
                .into(),
        });
    }
    let target = canonical(p)?;
    let found = with_refs(walk(&target)?.into_iter().filter(|f| needed(&target, f)))?;
    let root = found
        .iter()
        .fold(common_ancestor(dir, &target), |r, f| common_ancestor(&r, f));
    let carried = found
        .into_iter()
        .map(|f| {
            let inside = rel(&root, &f);
            (f, inside)
        })
        .collect();
    Ok((root, carried))
}

/// A profile the scenario names by `spec`, found at `p` in a schemas/ folder: under
/// `schemas/<spec>` beside the scenario, so it must not refer to files outside its folder.
fn by_its_name(spec: &str, p: &Path) -> Result<Carried, DeployError> {
    let target = canonical(p)?;
    let found = with_refs(walk(&target)?.into_iter().filter(|f| needed(&target, f)))?;
    if let Some(out) = found.iter().find(|f| !f.starts_with(&target)) {
        return Err(DeployError::File {
            path: out.display().to_string(),
            problem: format!(
                "profile {spec} refers to this file outside its folder; name the \
                 profile by its path from the scenario (protocol: ./path/to/{spec}) \
                 so the pods get both where they are"
            ),
        });
    }
    Ok(found
        .into_iter()
        .map(|f| {
            let inner = rel(&target, &f);
            (f, Path::new("schemas").join(spec).join(inner))
        })
        .collect())
}

fn canonical(p: &Path) -> Result<PathBuf, DeployError> {
    p.canonicalize().map_err(|e| DeployError::File {
        path: p.display().to_string(),
        problem: e.to_string(),
    })
}

fn read(p: &Path) -> Result<Vec<u8>, DeployError> {
    std::fs::read(p).map_err(|e| DeployError::File {
        path: p.display().to_string(),
        problem: e.to_string(),
    })
}

/// What a profile folder needs in the pods: protocol.yaml and the schemas it names, not
/// its README or the examples `squall schemas lint` checks.
fn needed(profile: &Path, f: &Path) -> bool {
    let data = f
        .extension()
        .is_some_and(|x| x == "json" || x == "yaml" || x == "yml");
    data && !rel(profile, f).starts_with("examples")
}

/// `files` and every file their `$ref`s name (relative paths; `#…` fragments and URLs are not
/// files), and theirs in turn, canonical and sorted.
fn with_refs(files: impl Iterator<Item = PathBuf>) -> Result<Vec<PathBuf>, DeployError> {
    let mut todo: Vec<PathBuf> = files.collect();
    let mut seen: std::collections::BTreeSet<PathBuf> = todo.iter().cloned().collect();
    while let Some(f) = todo.pop() {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        // What does not parse was already refused by the profile's loader, or is not a schema.
        let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        let base = f.parent().unwrap_or(Path::new("/"));
        for r in refs {
            let Ok(next) = base.join(r).canonicalize() else {
                continue;
            };
            if next.is_file() && seen.insert(next.clone()) {
                todo.push(next);
            }
        }
        if seen.len() > MAX_FILES {
            return Err(DeployError::File {
                path: f.display().to_string(),
                problem: format!("more than {MAX_FILES} files referred to: not a profile"),
            });
        }
    }
    Ok(seen.into_iter().collect())
}

/// The file parts of the `$ref`s in `v`.
fn collect_refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                let file = r.split('#').next().unwrap_or("");
                if !file.is_empty() && !file.contains("://") {
                    out.push(file);
                }
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// Every regular file under `p` (or `p` itself when it is a file), in a stable order.
fn walk(p: &Path) -> Result<Vec<PathBuf>, DeployError> {
    let mut out = Vec::new();
    let mut todo = vec![p.to_path_buf()];
    while let Some(next) = todo.pop() {
        if next.is_file() {
            out.push(next);
        } else if next.is_dir() {
            let entries = std::fs::read_dir(&next).map_err(|e| DeployError::File {
                path: next.display().to_string(),
                problem: e.to_string(),
            })?;
            todo.extend(entries.filter_map(|e| Some(e.ok()?.path())));
        }
        if out.len() + todo.len() > MAX_FILES {
            return Err(DeployError::File {
                path: p.display().to_string(),
                problem: format!("more than {MAX_FILES} files: not a profile folder"),
            });
        }
    }
    out.sort();
    Ok(out)
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.ancestors()
        .find(|x| b.starts_with(x))
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// `p` below `root` (both canonical, `root` an ancestor of `p`).
fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap_or(p).to_path_buf()
}

fn slashed(p: &Path) -> String {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_file, LoadOptions};

    const SCENARIO: &str = "name: s\ntarget: ws://127.0.0.1:1/ws\nprotocol: PROTO\n\
        load: { vus: 1, duration: 1s }\nbehaviours:\n  - steps:\n      - listen: 1s\n";

    /// A copy of the repository's kite profile in `dir`.
    fn profile(dir: &Path) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
        for f in walk(&src).unwrap() {
            let to = dir.join(rel(&src, &f));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&f, to).unwrap();
        }
    }

    fn bundle(root: &Path, scenario: &str, proto: &str) -> Result<Bundle, DeployError> {
        let path = root.join(scenario);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = match proto {
            "" => SCENARIO.replace("protocol: PROTO\n", ""),
            _ => SCENARIO.replace("PROTO", proto),
        };
        std::fs::write(&path, text).unwrap();
        let plan = load_file(&path, &LoadOptions::default()).unwrap();
        gather(&path, &plan, None)
    }

    fn names(b: &Bundle) -> Vec<&str> {
        b.files.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_scenario_without_a_profile_needs_only_itself() {
        // (A built-in name would be found in the repository's schemas/, the tests' current
        // directory, as squall run would find it there.)
        let d = tempfile::tempdir().unwrap();
        let b = bundle(d.path(), "s.yaml", "").unwrap();
        assert_eq!(b.scenario, "s.yaml");
        assert_eq!(names(&b), ["s.yaml"]);
    }

    #[test]
    fn a_profile_by_relative_path_keeps_its_place_from_the_scenario() {
        let d = tempfile::tempdir().unwrap();
        profile(&d.path().join("proj/schemas/mine"));
        let b = bundle(d.path(), "proj/scenarios/s.yaml", "../schemas/mine").unwrap();
        assert_eq!(b.scenario, "scenarios/s.yaml");
        let n = names(&b);
        assert!(n.contains(&"scenarios/s.yaml"), "{n:?}");
        assert!(n.contains(&"schemas/mine/protocol.yaml"), "{n:?}");
        assert!(n.contains(&"schemas/mine/inbound/welcome.json"), "{n:?}");
    }

    #[test]
    fn a_profile_by_name_goes_beside_the_scenario() {
        let d = tempfile::tempdir().unwrap();
        profile(&d.path().join("schemas/mine"));
        let b = bundle(d.path(), "s.yaml", "mine").unwrap();
        let n = names(&b);
        assert_eq!(n[0], "s.yaml");
        assert!(n.contains(&"schemas/mine/protocol.yaml"), "{n:?}");
        assert!(
            n[1..].iter().all(|f| f.starts_with("schemas/mine/")),
            "{n:?}"
        );
    }

    #[test]
    fn an_asyncapi_document_comes_with_the_files_it_refers_to() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("api/shared")).unwrap();
        std::fs::write(
            d.path().join("api/chat.yaml"),
            "asyncapi: 3.0.0\ninfo: { title: chat, version: '1' }\nchannels:\n  chat:\n    \
             address: /ws\n    messages:\n      hello:\n        payload:\n          \
             $ref: 'shared/hello.json'\noperations:\n  get:\n    action: receive\n    \
             channel: { $ref: '#/channels/chat' }\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("api/shared/hello.json"),
            r#"{"type":"object","properties":{"type":{"const":"hello"}},"required":["type"]}"#,
        )
        .unwrap();
        let b = bundle(d.path(), "run/s.yaml", "../api/chat.yaml").unwrap();
        assert_eq!(b.scenario, "run/s.yaml");
        assert_eq!(
            names(&b),
            ["api/chat.yaml", "api/shared/hello.json", "run/s.yaml"]
        );
    }

    #[test]
    fn an_unknown_profile_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = bundle(d.path(), "s.yaml", "nosuch")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown protocol 'nosuch'"), "{e}");
    }
}
