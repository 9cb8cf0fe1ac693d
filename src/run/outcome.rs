//! How a run ends on disk: the final results written (to a fallback folder when the output
//! folder fails), the JUnit file, the summary printed, and why a run that measured nothing
//! cannot pass.

use std::path::PathBuf;

use super::{default_out, RunArgs};
use crate::metrics::interval_log;
use crate::report::{render_junit, render_summary, Results, ResultsWriter};
use crate::scenario::{self, plan::Plan};

/// Removes an interval log no results.json will name.
pub(super) fn discard(log: Option<interval_log::Writer>) {
    if let Some(log) = log {
        log.discard();
    }
}

/// Writes the final results (to a named fallback folder when the output folder fails),
/// the JUnit file if asked, and prints the summary whatever happened; returns where the
/// results went.
pub(super) fn conclude(
    results: &Results,
    name: &str,
    args: &RunArgs,
    writer: &ResultsWriter,
) -> Option<PathBuf> {
    let written = match writer.write(results) {
        Ok(()) => Some(writer.path().to_path_buf()),
        Err(e) => {
            eprintln!("squall: cannot write the results: {e}");
            write_fallback(results, name)
        }
    };
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, render_junit(results)) {
            eprintln!("squall: junit: {}: {e}", path.display());
        }
    }
    if !args.quiet {
        println!("{}", render_summary(results));
    }
    match &written {
        Some(p) if p == writer.path() => {
            if !args.quiet {
                println!("results: {}", p.display());
            }
        }
        Some(p) => eprintln!(
            "squall: results written to the fallback {} instead",
            p.display()
        ),
        None => eprintln!(
            "squall: the results were not written anywhere; the summary above is all there is"
        ),
    }
    written
}

/// Writes `results` under the system's temporary folder; its path, or `None` when even
/// that fails.
pub(crate) fn write_fallback(results: &Results, name: &str) -> Option<PathBuf> {
    let stem = default_out(name);
    let stem = stem
        .file_name()
        .map_or_else(|| name.into(), |s| s.to_os_string());
    let mut leaf = stem;
    leaf.push(format!("-{}", std::process::id()));
    let dir = std::env::temp_dir().join("squall").join(leaf);
    // The interval log stays in the output folder (if anywhere): it is not beside this copy.
    let results = &Results {
        interval_log: None,
        ..results.clone()
    };
    let written = ResultsWriter::create(&dir).and_then(|w| {
        w.write(results)?;
        Ok(w.path().to_path_buf())
    });
    match written {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("squall: the fallback failed too: {e}");
            // Only removes the folder when the failed write left it empty.
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

/// Why a run that ran to its end measured nothing a gate could pass on (it then ends
/// aborted, exit 3): no connection opened; no iteration ended and nothing came back; requests
/// went out and not one was answered (nor timed out) before the stop; or none of the
/// scenario's sends happened. Whatever the timing, a broken target never passes.
pub(crate) fn measured_nothing(r: &Results, plan: &Plan) -> Option<String> {
    let c = &r.counters;
    if c.connections.opened == 0 {
        return Some(format!(
            "no connection was opened ({} attempts failed{}; attempts still under way at the stop are not counted)",
            c.connections.failed,
            causes(&c.connections.failed_by_cause)
        ));
    }
    let l = &r.load;
    let q = &c.requests;
    if l.iterations_ok + l.iterations_failed == 0 && q.replies == 0 && c.frames_in == 0 {
        return Some(format!(
            "no iteration completed ({} cut at the stop) and nothing came back from the target",
            l.iterations_cut
        ));
    }
    let auto = c.kinds_out.get("(auto-reply)").map_or(0, |k| k.frames);
    if c.frames_out.saturating_sub(auto) == 0 && plan.behaviours.iter().any(|b| sends(&b.steps)) {
        return Some("none of the scenario's requests was sent".into());
    }
    if q.sent > 0 && q.replies == 0 && q.timeouts == 0 {
        return Some(format!(
            "none of the {} requests was answered or timed out: the run stopped or their connection died first",
            q.sent
        ));
    }
    None
}

/// `: refused 3, http_404 2`, or nothing.
fn causes(by_cause: &std::collections::BTreeMap<String, u64>) -> String {
    let causes: Vec<String> = by_cause.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if causes.is_empty() {
        String::new()
    } else {
        format!(": {}", causes.join(", "))
    }
}

/// Whether any of `steps` sends something of its own.
fn sends(steps: &[scenario::plan::Step]) -> bool {
    use scenario::plan::Step;
    steps.iter().any(|s| match s {
        Step::Send { .. } | Step::Pace(_) | Step::Burst { .. } | Step::Upload(_) => true,
        Step::Repeat { steps, .. } => sends(steps),
        Step::Choose { branches } => branches.iter().any(|b| sends(&b.1)),
        Step::Continue(step) => sends(std::slice::from_ref(step)),
        _ => false,
    })
}
