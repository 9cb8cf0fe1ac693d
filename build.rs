//! Embeds the bundled protocol profiles (`schemas/<name>/` folders holding a `protocol.yaml`)
//! in the binary, so an installed `squall` checks frames without a `schemas/` folder.
//!
//! A build script rather than a proc-macro crate such as `include_dir`: cargo reruns it when
//! anything under `schemas/` changes (a file added included), it needs no dependency, and it
//! leaves out what is not a profile (`results.schema.json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let schemas = root.join("schemas");
    println!("cargo:rerun-if-changed={}", schemas.display());
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(&schemas)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    profiles.retain(|p| p.join("protocol.yaml").is_file());
    profiles.sort();
    let mut out = String::from("&[\n");
    for dir in &profiles {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name");
        let mut files = Vec::new();
        collect(dir, &mut files);
        files.sort();
        writeln!(out, "    ({name:?}, &[").unwrap();
        for f in &files {
            let rel = f.strip_prefix(dir).unwrap().to_str().expect("UTF-8 path");
            let abs = f.to_str().expect("UTF-8 path");
            writeln!(out, "        ({rel:?}, include_str!({abs:?})),").unwrap();
        }
        out.push_str("    ]),\n");
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("built_in.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

/// Every text file under `dir` (profiles hold JSON, YAML and Markdown only).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir)
        .expect("readable profile folder")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            collect(&p, files);
        } else if p
            .extension()
            .is_some_and(|x| x == "json" || x == "yaml" || x == "md")
        {
            files.push(p);
        }
    }
}
