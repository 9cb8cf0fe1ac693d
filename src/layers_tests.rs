//! The layers point one way: no circle of `use` arrows between the top-level modules of
//! either crate (squall's `src/`, squall-server's `reference-server/src/`), nor between the
//! files of one folder.
//!
//! An arrow is a path a file names: `crate::a::…` (also inside `use crate::{…}` groups) or
//! `super::a` (from a file outside `mod.rs`). Arrows from a folder's `mod.rs` down to its
//! own files, from the crate root (`lib.rs`), and inside `#[cfg(test)] mod tests { … }`
//! blocks are not counted; methods a file adds to another file's type (`impl Vu` in
//! `swarm/pace.rs`) are not arrows either, as they name no path.
//!
//! When this fails, it names each circle and the files whose arrows close it: move the
//! shared piece down (into its own file, or into the lower module) instead of adding an
//! entry to [`KNOWN`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles known and owned by other work, as (folder, from, to) arrows that close them;
/// each one names why. An entry whose arrow has gone fails the test, so the list only
/// shrinks.
const KNOWN: &[(&str, &str, &str, &str)] = &[];

/// A module path inside a crate, e.g. `["scenario", "plan"]`.
type ModPath = Vec<String>;

/// The source with comments, string and char literals blanked out, and inline test modules
/// dropped, so that only code is searched for paths.
fn code_of(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &src[..i],
        None => src,
    };
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = src[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i..].starts_with(b"'\"'") {
            i += 3;
        } else {
            let c = src[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths named after each `prefix` (`crate::` or `super::`) that is not itself the
/// tail of a longer path: `a::b` for `prefix a::b`, each item for `prefix a::{b, c::d}`.
fn paths_after(code: &str, prefix: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back().unwrap_or(' ');
        if !is_ident(before) && before != ':' && before != '$' {
            expand(Vec::new(), &code[at + prefix.len()..], &mut out);
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Adds the paths `text` starts with, after `path`: `b::c` → `path::b::c`, `{b, c::{d}}` →
/// `path::b` and `path::c::d`; `a::B as C` → `a::B`.
fn expand(mut path: ModPath, text: &str, out: &mut Vec<ModPath>) {
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(path.clone(), &group[start..i], out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(path.clone(), &group[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        match rest[end..].trim_start().strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => break,
        }
    }
    out.push(path);
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module a file holds, from where it lies: `a/mod.rs` → `a`, `a/b.rs` → `a::b`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).expect("under src");
    let mut path: ModPath = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|l| l == "mod") {
        path.pop();
    }
    path
}

/// Arrows between siblings, per parent module: `parent → from → {to: files}`.
type Arrows = BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, BTreeSet<String>>>>;

/// The arrows of the library whose root is `src/lib.rs`: only modules `lib.rs` declares
/// (a binary's own modules beside it are not the library's).
fn arrows(src: &Path) -> Arrows {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let tops: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l
                .trim_start()
                .strip_prefix("pub ")
                .unwrap_or(l.trim_start());
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Arrows::new();
    for file in files {
        let me = module_of(src, &file);
        if me.first().is_none_or(|t| !tops.contains(t)) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("readable source"));
        let is_mod = file.ends_with("mod.rs");
        let mut targets = paths_after(&code, "crate::");
        if !is_mod && me.len() > 1 {
            let parent = &me[..me.len() - 1];
            for p in paths_after(&code, "super::") {
                if p[0] != "super" && p[0] != "self" {
                    targets.push(parent.iter().cloned().chain(p).collect());
                }
            }
        }
        let shown = file.strip_prefix(src).unwrap().display().to_string();
        for to in targets {
            let common = me.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < me.len() && common < to.len() {
                let (from, to_mod) = (me[common].clone(), to[common].clone());
                out.entry(me[..common].to_vec())
                    .or_default()
                    .entry(from)
                    .or_default()
                    .entry(to_mod)
                    .or_default()
                    .insert(shown.clone());
            }
        }
    }
    // Keep only arrows to modules that exist (a path's head may be an item, not a module).
    for (parent, graph) in out.iter_mut() {
        let dir = parent.iter().fold(src.to_path_buf(), |d, c| d.join(c));
        for tos in graph.values_mut() {
            tos.retain(|to, _| dir.join(format!("{to}.rs")).is_file() || dir.join(to).is_dir());
        }
    }
    out
}

/// The circles (strongly connected sets of two or more) of one graph.
fn circles(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<Vec<String>> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for to in graph.get(&n).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for (n, r) in &reached {
        let circle: Vec<String> = r
            .iter()
            .filter(|m| reached.get(m).is_some_and(|back| back.contains(*n)))
            .cloned()
            .collect();
        if circle.len() > 1 && !out.contains(&circle) {
            out.push(circle);
        }
    }
    out
}

/// The order the modules of one graph can be read in, lowest first (assuming no circle).
fn order(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<String> {
    let mut all: BTreeSet<String> = graph.keys().cloned().collect();
    all.extend(graph.values().flat_map(|t| t.keys().cloned()));
    let mut out = Vec::new();
    while !all.is_empty() {
        let ready: Vec<String> = all
            .iter()
            .filter(|n| {
                let tos = graph.get(*n).into_iter().flat_map(|t| t.keys());
                tos.filter(|t| *t != *n).all(|t| !all.contains(t))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            out.extend(all.iter().map(|n| format!("{n}(circle)")));
            break;
        }
        for n in &ready {
            all.remove(n);
        }
        out.push(ready.join(" "));
    }
    out
}

/// Every problem with the layers of the crate whose sources are `src` (shown as `name`).
fn problems(name: &str, src: &Path, known: &mut BTreeSet<(String, String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (parent, mut graph) in arrows(src) {
        let folder = [name.to_string()]
            .into_iter()
            .chain(parent)
            .collect::<Vec<_>>()
            .join("/");
        for (k_folder, from, to, _) in KNOWN {
            if *k_folder == folder {
                let gone = graph.get_mut(*from).and_then(|t| t.remove(*to)).is_none();
                if !gone {
                    known.remove(&(folder.clone(), from.to_string(), to.to_string()));
                }
            }
        }
        for circle in circles(&graph) {
            let mut why = Vec::new();
            for from in &circle {
                for (to, files) in graph.get(from).into_iter().flatten() {
                    if circle.contains(to) {
                        let files: Vec<&str> = files.iter().map(String::as_str).collect();
                        why.push(format!("{from} → {to} ({})", files.join(", ")));
                    }
                }
            }
            out.push(format!(
                "{folder}: circle {}: {}",
                circle.join(" ↔ "),
                why.join("; ")
            ));
        }
    }
    out
}

#[test]
fn no_circles_between_modules_or_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut known: BTreeSet<(String, String, String)> = KNOWN
        .iter()
        .map(|(f, a, b, _)| (f.to_string(), a.to_string(), b.to_string()))
        .collect();
    let mut found = problems("src", &root.join("src"), &mut known);
    found.extend(problems(
        "reference-server/src",
        &root.join("reference-server/src"),
        &mut known,
    ));
    for (folder, from, to) in known {
        found.push(format!(
            "{folder}: the known arrow {from} → {to} is gone: delete it from KNOWN in \
             src/layers_tests.rs"
        ));
    }
    assert!(
        found.is_empty(),
        "layers point both ways:\n{}",
        found.join("\n")
    );
}

/// The module order the test above keeps, lowest first (`cargo test --lib layers -- --nocapture`).
#[test]
fn module_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, src) in [("squall", "src"), ("squall-server", "reference-server/src")] {
        let arrows = arrows(&root.join(src));
        let top = arrows.get(&Vec::new()).cloned().unwrap_or_default();
        let mut graph = top;
        for (folder, from, to, _) in KNOWN {
            if *folder == src {
                if let Some(t) = graph.get_mut(*from) {
                    t.remove(*to);
                }
            }
        }
        println!("{name}: {}", order(&graph).join(" < "));
        assert!(!order(&graph).is_empty());
    }
}

#[test]
fn paths_are_read_from_code_only() {
    let code = code_of(
        "use crate::a::{b, c::d};\n// crate::e\nlet s = \"crate::f\";\nfoo(crate::g::h);\n\
         $crate::i\n#[cfg(test)]\nmod tests {\n    use crate::j;\n}\n",
    );
    let paths = paths_after(&code, "crate::");
    assert_eq!(
        paths,
        vec![
            vec!["a".to_string(), "b".into()],
            vec!["a".into(), "c".into(), "d".into()],
            vec!["g".into(), "h".into()],
        ]
    );
}

#[test]
fn circles_are_found_and_only_circles() {
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("e", "d")] {
        graph
            .entry(from.into())
            .or_default()
            .insert(to.into(), BTreeSet::new());
    }
    assert_eq!(
        circles(&graph),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
    graph.get_mut("c").unwrap().clear();
    assert!(circles(&graph).is_empty());
    assert_eq!(order(&graph), ["c", "b", "a", "d", "e"]);
}
