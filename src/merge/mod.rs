//! `squall merge`: the results of a sharded run's shards (`squall run --shard I/N`) made
//! into one result, exactly: histograms added (never percentiles averaged), counters summed,
//! the per-second series and interval logs aligned on wall-clock seconds, violations merged,
//! thresholds evaluated on the merged figures, each shard's health kept.
//!
//! Inputs are checked before anything is written: every shard of one run (same scenario,
//! seed and shard count), each once. A missing, aborted or unfinished shard stops the
//! merge unless `allow_partial`, which merges what there is and says so loudly.

mod combine;
mod per_second;
pub mod wait;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::check::verdict;
use crate::metrics::interval_log::{self, Log};
use crate::report::{self, render_junit, ReportError, Results, ResultsWriter, Status};
use crate::scenario::plan::Pos;
use crate::scenario::thresholds::{parse, Threshold};

/// What `squall merge` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct MergeArgs {
    /// Shard results: `results.json` files or the run folders holding them.
    pub inputs: Vec<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Merge even with shards missing, aborted or unfinished (with a warning for each).
    pub allow_partial: bool,
    /// Also draw report.html and the PNG charts.
    pub report: bool,
}

/// Why a merge could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards do not make one run (each problem on a line).
    #[error("these results cannot be merged:\n{}", .0.join("\n"))]
    Inputs(Vec<String>),
    /// A results file could not be read or written.
    #[error("{0}")]
    Results(#[from] ReportError),
    /// A shard's interval log could not be read.
    #[error("{0}")]
    Log(#[from] interval_log::ReadError),
}

impl MergeError {
    /// Exit code: 2 for inputs that do not merge, 3 when the output could not be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            MergeError::Inputs(_) | MergeError::Log(_) => 2,
            MergeError::Results(e) => e.exit_code(),
        }
    }
}

/// A merge that was written.
#[derive(Debug)]
pub struct Merged {
    /// The merged results, as written.
    pub results: Results,
    /// The output folder.
    pub out_dir: PathBuf,
    /// What `allow_partial` let through, one line each (also in the results' health).
    pub warnings: Vec<String>,
}

impl Merged {
    /// Exit code: 1 when a threshold failed on the merged figures or a frame broke its
    /// protocol's schemas, else 0.
    pub fn exit_code(&self) -> u8 {
        let r = &self.results;
        u8::from(!r.thresholds.iter().all(|t| t.pass) || r.violations.total > 0)
    }
}

/// One shard as read.
pub(crate) struct Shard {
    /// As given on the command line.
    pub(crate) file: String,
    pub(crate) results: Results,
    pub(crate) log: Option<Log>,
    /// Its start, on the wall clock.
    pub(crate) started: SystemTime,
}

/// Reads, checks and merges the shards; writes results.json, the interval log, junit.xml
/// and (if asked) the report into `args.out`.
pub fn merge(args: &MergeArgs) -> Result<Merged, MergeError> {
    if args.inputs.is_empty() {
        return Err(MergeError::Inputs(vec![
            "no results given: name each shard's results.json (or its folder)".into(),
        ]));
    }
    let mut shards = Vec::with_capacity(args.inputs.len());
    for p in &args.inputs {
        shards.push(read_shard(p)?);
    }
    let (problems, partial) = check(&shards);
    if !problems.is_empty() || (!partial.is_empty() && !args.allow_partial) {
        let mut all = problems;
        if !partial.is_empty() {
            all.extend(partial);
            all.push("(--allow-partial merges what there is, with a warning)".into());
        }
        return Err(MergeError::Inputs(all));
    }
    shards.sort_by_key(|s| s.results.shard.as_ref().map_or(0, |i| i.index));
    let warnings: Vec<String> = partial
        .iter()
        .map(|p| format!("partial merge: {p}"))
        .collect();
    let mut results = combine::results(&shards, &warnings);
    let names: Vec<String> = results.metrics.keys().cloned().collect();
    let seconds = per_second::merge(&shards, &names)?;
    per_second::fill_series(&mut results.series, &seconds);
    results.thresholds = verdict::evaluate(&thresholds(&shards[0].results), &results);
    write(args, &mut results, &seconds)?;
    Ok(Merged {
        results,
        out_dir: args.out.clone(),
        warnings,
    })
}

/// Shards' results already in memory (each named, in shard order), added up as [`merge`]
/// adds them: histograms added, counters summed, each shard's health kept. No interval log
/// is read and no threshold evaluated; the series is binned on wall-clock seconds as
/// `merge` bins it (a caller with finer ticks lines them up itself). `None` without any.
pub fn add_up(parts: Vec<(String, Results)>) -> Option<Results> {
    let shards: Vec<Shard> = parts
        .into_iter()
        .map(|(file, results)| Shard {
            started: humantime::parse_rfc3339_weak(&results.meta.started_at)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            file,
            results,
            log: None,
        })
        .collect();
    (!shards.is_empty()).then(|| combine::results(&shards, &[]))
}

/// The scenario's thresholds, read back from a shard's outcomes (each keeps its source).
fn thresholds(r: &Results) -> Vec<Threshold> {
    r.thresholds
        .iter()
        .filter_map(|t| {
            let (lhs, op, rhs) = parse(&t.expr).ok()?;
            Some(Threshold {
                source: t.expr.clone(),
                pos: Pos::default(),
                lhs,
                op,
                rhs,
            })
        })
        .collect()
}

fn read_shard(p: &Path) -> Result<Shard, MergeError> {
    let file = if p.is_dir() {
        p.join("results.json")
    } else {
        p.to_path_buf()
    };
    let results = report::read_results(&file)?;
    // Every histogram decodes, or the merge stops here: none is left out quietly.
    let summaries = results
        .metrics
        .values()
        .flat_map(|m| [&m.latency, &m.service])
        .chain([&results.connect]);
    for s in summaries {
        s.histogram().map_err(|e| ReportError::Input {
            location: file.display().to_string(),
            problem: e.to_string(),
        })?;
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let log = match &results.interval_log {
        Some(name) => Some(interval_log::read(&dir.join(name))?),
        None => None,
    };
    let started = humantime::parse_rfc3339_weak(&results.meta.started_at).map_err(|e| {
        ReportError::Input {
            location: file.display().to_string(),
            problem: format!("meta.started_at '{}': {e}", results.meta.started_at),
        }
    })?;
    Ok(Shard {
        file: p.display().to_string(),
        results,
        log,
        started,
    })
}

/// What stops the merge outright (different runs, a shard twice), and what only
/// `allow_partial` lets through (a shard missing, aborted or unfinished, or without its
/// interval log).
fn check(shards: &[Shard]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut partial = Vec::new();
    let first = &shards[0];
    let count = first.results.shard.as_ref().map(|s| s.count);
    let mut seen: Vec<Vec<&str>> = vec![Vec::new(); count.unwrap_or(0) as usize];
    for s in shards {
        let (r, f) = (&s.results, &s.file);
        let Some(info) = &r.shard else {
            problems.push(format!(
                "{f}: not a shard: run each part with squall run --shard I/N"
            ));
            continue;
        };
        if info.index == 0 || info.index > info.count {
            problems.push(format!(
                "{f}: shard {}/{} does not exist: shards count from 1 to N",
                info.index, info.count
            ));
        } else if Some(info.count) != count {
            problems.push(format!(
                "{f}: shard {}/{}, but {} is one of {}: all shards must come from one --shard .../N",
                info.index,
                info.count,
                first.file,
                count.map_or("?".into(), |c| c.to_string())
            ));
        } else if let Some(slot) = seen.get_mut(info.index as usize - 1) {
            slot.push(f);
        }
        problems.extend(other_run(s, first));
        partial.extend(partial_shard(s, info));
    }
    for (i, files) in seen.iter().enumerate() {
        let n = count.unwrap_or(0);
        match files.len() {
            0 => partial.push(format!("shard {}/{n} is missing", i + 1)),
            1 => {}
            _ => problems.push(format!(
                "shard {}/{n} given {} times ({}): each shard once",
                i + 1,
                files.len(),
                files.join(", ")
            )),
        }
    }
    (problems, partial)
}

/// What makes shard `s` part of another run than `first`: its scenario or its seed.
fn other_run(s: &Shard, first: &Shard) -> Vec<String> {
    let (r, f) = (&s.results, &s.file);
    let mut problems = Vec::new();
    if r.meta.scenario_sha256 != first.results.meta.scenario_sha256 {
        problems.push(format!(
            "{f}: a different scenario (sha256 {}) from {}'s ({})",
            short(&r.meta.scenario_sha256),
            first.file,
            short(&first.results.meta.scenario_sha256)
        ));
    }
    if r.meta.seed != first.results.meta.seed {
        problems.push(format!(
            "{f}: seed {} but {} has seed {}: run every shard with one --seed",
            r.meta.seed, first.file, first.results.meta.seed
        ));
    }
    problems
}

/// What makes shard `s` (shard `info`) partial: it did not complete, or has no interval log.
fn partial_shard(s: &Shard, info: &crate::results::ShardInfo) -> Vec<String> {
    let (r, f) = (&s.results, &s.file);
    let mut partial = Vec::new();
    if r.status != Status::Complete {
        partial.push(format!(
            "{f}: shard {}/{} did not complete (status {}{})",
            info.index,
            info.count,
            format!("{:?}", r.status).to_lowercase(),
            r.status_reason
                .as_deref()
                .map_or(String::new(), |w| format!(": {w}"))
        ));
    }
    if s.log.is_none() {
        partial.push(format!(
            "{f}: no interval log: its latency per second is left out of the merged series"
        ));
    }
    partial
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Writes the merged results, their interval log, junit.xml and the report.
fn write(
    args: &MergeArgs,
    results: &mut Results,
    seconds: &per_second::Seconds,
) -> Result<(), MergeError> {
    let writer = ResultsWriter::create(&args.out)?;
    let log_path = args.out.join(interval_log::FILE_NAME);
    let io = |source| ReportError::Io {
        path: log_path.clone(),
        source,
    };
    let names: Vec<String> = results.metrics.keys().cloned().collect();
    let mut log = interval_log::Writer::create(&log_path, seconds.start, &names).map_err(io)?;
    for iv in &seconds.intervals {
        log.append(iv).map_err(io)?;
    }
    results.interval_log = Some(interval_log::FILE_NAME.to_string());
    writer.write(results)?;
    let junit = args.out.join("junit.xml");
    std::fs::write(&junit, render_junit(results)).map_err(|source| ReportError::Io {
        path: junit,
        source,
    })?;
    if args.report {
        report::write_report(results, &args.out)?;
    }
    Ok(())
}
