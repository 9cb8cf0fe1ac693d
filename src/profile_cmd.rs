//! The commands about protocol profiles: `squall schemas lint|list|import|export`,
//! `squall scenario new` (a first scenario from a profile) and `squall validate` (a
//! recording checked against one).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use squall::check::offline::validate_lines;
use squall::locate::Places;
use squall::protocol::catalog::Origin;
use squall::protocol::checker::Engine;
use squall::protocol::{self, Conformance};

#[derive(Subcommand)]
pub(crate) enum SchemasCmd {
    /// Check profiles: files exist and compile, examples validate or fail as expected
    /// (exit 0 sound, 1 problems, 2 a profile does not load).
    Lint {
        /// Profile folders (schemas/<name>), names (looked up as `validate --protocol`
        /// does) or AsyncAPI documents.
        #[arg(required = true)]
        profiles: Vec<String>,
        /// Where profiles are looked for first.
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
    /// Import a profile from another description format.
    Import {
        #[command(subcommand)]
        from: ImportCmd,
    },
    /// Export a profile in another description format.
    Export {
        #[command(subcommand)]
        to: ExportCmd,
    },
    /// List the profiles found, in lookup order: --schemas DIR, schemas/ beside the
    /// scenario, the current directory's schemas/, then the built-in ones.
    List {
        /// Where profiles are looked for first.
        #[arg(long)]
        schemas: Option<PathBuf>,
        /// A scenario file, to include the schemas/ folder beside it.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ScenarioCmd {
    /// Write a first, commented smoke scenario from a profile or an AsyncAPI document: one
    /// send + expect per request/reply pair, a listen for the rest, violations and errors
    /// at zero (exit 0 written, 2 the profile does not load, 3 not written).
    New {
        /// A profile folder (schemas/NAME), a profile name, or an AsyncAPI document.
        #[arg(long)]
        from: String,
        /// The scenario file to write [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where profile names are looked for first.
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExportCmd {
    /// An AsyncAPI 3.0 document (JSON, which YAML readers read too); importing it again
    /// gives an equivalent profile (exit 0 written, 2 the profile does not load, 3 not
    /// written).
    Asyncapi {
        /// A profile folder, a profile name, or an AsyncAPI document.
        profile: String,
        /// The document to write [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where profile names are looked for first.
        #[arg(long)]
        schemas: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ImportCmd {
    /// An AsyncAPI 2.6 or 3.x document (YAML or JSON) as a profile folder; its README says
    /// every choice made (exit 0 written, 1 it does not lint, 2 bad document or usage).
    Asyncapi {
        /// The document.
        doc: PathBuf,
        /// The profile folder to write (its name is the profile's).
        #[arg(long)]
        out: PathBuf,
        /// The JSON pointer that names a frame's kind [default: found in the payloads].
        #[arg(long, value_name = "POINTER")]
        discriminator: Option<String>,
        /// Replace a profile already in --out.
        #[arg(long)]
        force: bool,
    },
}

/// `squall schemas …`.
pub(crate) fn schemas(cmd: SchemasCmd) -> u8 {
    match cmd {
        SchemasCmd::Lint { profiles, schemas } => lint(&profiles, schemas),
        SchemasCmd::Import {
            from:
                ImportCmd::Asyncapi {
                    doc,
                    out,
                    discriminator,
                    force,
                },
        } => import_asyncapi(&doc, &out, discriminator, force),
        SchemasCmd::Export {
            to:
                ExportCmd::Asyncapi {
                    profile,
                    out,
                    schemas,
                },
        } => export_asyncapi(&profile, out.as_deref(), schemas),
        SchemasCmd::List { schemas, scenario } => {
            let places = Places {
                schemas,
                scenario_dir: scenario
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf),
            };
            for l in places.list() {
                let note = if l.shadowed {
                    "  (hidden by the one above)"
                } else {
                    ""
                };
                println!("{:<12} {}{note}", l.name, l.origin);
            }
            0
        }
    }
}

/// `squall scenario new`: a first, commented scenario from a profile.
pub(crate) fn scenario_new(from: &str, out: Option<&Path>, schemas: Option<PathBuf>) -> u8 {
    let places = Places {
        schemas,
        scenario_dir: None,
    };
    let located = places.locate(from);
    let profile = match located
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|l| l.load().map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("squall: {e}");
            return 2;
        }
    };
    // A folder or a document is named by its path from where the scenario will live.
    let base = out
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let reference = match located.map(|l| l.origin) {
        Ok(Origin::Folder(p) | Origin::Document(p)) => squall::smoke::relative(base, &p)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string()),
        _ => profile.name.clone(),
    };
    let text = squall::smoke::scenario(&profile, &reference, from);
    match out {
        None => {
            print!("{text}");
            0
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => {
                println!(
                    "{}: written; check it with squall check {}",
                    path.display(),
                    path.display()
                );
                0
            }
            Err(e) => {
                eprintln!("squall: {}: {e}", path.display());
                3
            }
        },
    }
}

fn export_asyncapi(spec: &str, out: Option<&Path>, schemas: Option<PathBuf>) -> u8 {
    let places = Places {
        schemas,
        scenario_dir: None,
    };
    let profile = match places.locate(spec).and_then(|l| l.load()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("squall: {e}");
            return 2;
        }
    };
    let doc = match squall::asyncapi::export(&profile) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("squall: {e}");
            return 2;
        }
    };
    match out {
        None => {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            0
        }
        Some(path) => match squall::asyncapi::write_export(&doc, path) {
            Ok(()) => {
                println!(
                    "{}: AsyncAPI 3.0.0 for {} written",
                    path.display(),
                    profile.name
                );
                0
            }
            Err(e) => {
                eprintln!("squall: {}: {e}", path.display());
                3
            }
        },
    }
}

fn import_asyncapi(doc: &Path, out: &Path, discriminator: Option<String>, force: bool) -> u8 {
    if out.join("protocol.yaml").exists() && !force {
        eprintln!(
            "squall: {}: a profile is already there; pass --force to replace it",
            out.display()
        );
        return 2;
    }
    let opts = squall::asyncapi::Options {
        name: out.file_name().and_then(|n| n.to_str()).map(str::to_string),
        discriminator,
    };
    let imported = match squall::asyncapi::import(doc, &opts) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("squall: {e}");
            return 2;
        }
    };
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    if force && out.exists() {
        if let Err(e) = std::fs::remove_dir_all(out) {
            eprintln!("squall: {}: {e}", out.display());
            return 3;
        }
    }
    if let Err(e) = imported.write(out) {
        eprintln!("squall: {}: {e}", out.display());
        return 3;
    }
    println!(
        "{}: profile {} written (discriminator {}, correlation {}, {} reply rules); choices in {}",
        out.display(),
        imported.name,
        imported.discriminator,
        imported.correlation.as_deref().unwrap_or("none"),
        imported.replies.len(),
        out.join("README.md").display()
    );
    lint(&[out.display().to_string()], None)
}

/// `squall validate`: a recording checked against a profile by `engine`.
pub(crate) fn validate(
    protocol: &str,
    schemas: Option<PathBuf>,
    file: &str,
    conformance: Conformance,
    engine: Engine,
) -> u8 {
    let places = Places {
        schemas,
        scenario_dir: None,
    };
    let profile = match places
        .locate(protocol)
        .and_then(|l| l.load_with(conformance))
    {
        Ok(p) => std::sync::Arc::new(p),
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let result = if file == "-" {
        validate_lines(&profile, engine, std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => validate_lines(&profile, engine, std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("squall: {file}: {e}");
                return 2;
            }
        }
    };
    match result {
        Ok((frames, findings)) => {
            for f in &findings {
                println!("{file}:{}: {}", f.line, f.violation);
            }
            let bad: std::collections::BTreeSet<usize> = findings.iter().map(|f| f.line).collect();
            println!(
                "{frames} frames, {} with violations ({} violations)",
                bad.len(),
                findings.len()
            );
            u8::from(!findings.is_empty())
        }
        Err(e) => {
            eprintln!("squall: {file}: {e}");
            2
        }
    }
}

fn lint(profiles: &[String], schemas: Option<PathBuf>) -> u8 {
    let places = Places {
        schemas,
        scenario_dir: None,
    };
    let mut code = 0;
    for d in profiles {
        let linted = places
            .locate(d)
            .and_then(|l| protocol::lint_in(&l.source, &l.dir));
        match linted {
            Ok(r) if r.problems.is_empty() => {
                println!("{d}: ok ({} examples)", r.checked);
                for n in &r.notes {
                    println!("  note: {n}");
                }
            }
            Ok(r) => {
                for p in &r.problems {
                    println!("{p}");
                }
                println!(
                    "{d}: {} problems in {} examples",
                    r.problems.len(),
                    r.checked
                );
                code = code.max(1);
            }
            Err(e) => {
                eprintln!("{e}");
                code = 2;
            }
        }
    }
    code
}
