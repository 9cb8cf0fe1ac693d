//! Reading results files and writing the report and comparison folders: report.html or
//! compare.html, and one PNG per chart beside it.

use std::fs;
use std::path::{Path, PathBuf};

use super::charts::{compare_charts, report_charts};
use super::compare::{compare, Comparison, Options, Run};
use super::compare_page::compare_html;
use super::html::{report, Figure};
use super::model::Model;
use super::plots::{self, Chart};
use crate::results::{ReportError, Results, RESULTS_VERSION};

/// What a report or comparison wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// report.html or compare.html.
    pub html: PathBuf,
    /// One PNG per chart, in the page's order.
    pub pngs: Vec<PathBuf>,
    /// What was left out and why (e.g. an interval log that could not be read), one line
    /// each, for the caller to say.
    pub notes: Vec<String>,
}

impl Written {
    /// Two lines for the terminal: the page, and the PNG files written beside it.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self
            .pngs
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        let charts = match names.len() {
            0 => "no charts".to_string(),
            n => format!("{n} PNG charts beside it: {}", names.join(", ")),
        };
        format!(
            "report: {}
charts: {charts}",
            self.html.display()
        )
    }
}

/// Reads and parses a results file; problems name the file (and line:column when the JSON
/// is at fault).
pub fn read_results(path: &Path) -> Result<Results, ReportError> {
    let input = |location: String, problem: String| ReportError::Input { location, problem };
    let name = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|e| input(name.clone(), e.to_string()))?;
    serde_json::from_str::<Results>(&text).map_err(|e| {
        // A file from another squall version gets a version message, not a field error.
        #[derive(serde::Deserialize)]
        struct Versioned {
            version: u32,
        }
        if let Ok(v) = serde_json::from_str::<Versioned>(&text) {
            if v.version != RESULTS_VERSION {
                return input(
                    name.clone(),
                    format!(
                        "results version {}; this squall reads version {RESULTS_VERSION}",
                        v.version
                    ),
                );
            }
        }
        let msg = e.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m);
        let what = if e.is_syntax() || e.is_eof() {
            "not valid JSON"
        } else {
            "not a squall results file"
        };
        input(
            format!("{name}:{}:{}", e.line(), e.column()),
            format!("{what}: {msg}"),
        )
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Draws every chart as inline SVG and as a PNG in `dir`. Charts are independent, so the
/// work is split over the available cores.
fn draw_all<'a>(
    charts: &'a [Chart],
    dir: &Path,
) -> Result<(Vec<Figure<'a>>, Vec<PathBuf>), ReportError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(charts.len().max(1));
    let chunk = charts.len().div_ceil(threads).max(1);
    let drawn: Vec<Result<Vec<(Figure, PathBuf)>, ReportError>> = std::thread::scope(|s| {
        let handles: Vec<_> = charts
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|c| draw_one(c, dir)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ReportError::Usage("a drawing thread panicked".into())))
            })
            .collect()
    });
    let mut figs = Vec::with_capacity(charts.len());
    let mut pngs = Vec::with_capacity(charts.len());
    for part in drawn {
        for (f, p) in part? {
            figs.push(f);
            pngs.push(p);
        }
    }
    Ok((figs, pngs))
}

fn draw_one<'a>(c: &'a Chart, dir: &Path) -> Result<(Figure<'a>, PathBuf), ReportError> {
    let plot = |message| ReportError::Plot {
        chart: c.file.clone(),
        message,
    };
    let svg = plots::svg(c).map_err(plot)?;
    let png = plots::png(c).map_err(plot)?;
    let path = dir.join(format!("{}.png", c.file));
    fs::write(&path, png).map_err(io(&path))?;
    Ok((Figure { chart: c, svg }, path))
}

/// Writes `report.html` and a PNG per chart into `dir` (created if needed), with the
/// interval log named by the results read from `dir` too.
pub fn write_report(r: &Results, dir: &Path) -> Result<Written, ReportError> {
    write_report_beside(r, dir, dir, false)
}

/// [`write_report`], with the latency-by-percentile charts on a log scale of latency when
/// `log_latency` (`--log-latency`): one outlier then no longer flattens the curve.
pub fn write_report_with(
    r: &Results,
    dir: &Path,
    log_latency: bool,
) -> Result<Written, ReportError> {
    write_report_beside(r, dir, dir, log_latency)
}

/// Writes `report.html` and a PNG per chart into `dir` (created if needed). The results'
/// interval log, if they name one, is read from `source` (the results file's folder) for
/// the per-metric latency over time; without it those charts are left out.
pub fn write_report_beside(
    r: &Results,
    source: &Path,
    dir: &Path,
    log_latency: bool,
) -> Result<Written, ReportError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    if let Some(c) = &r.capacity {
        let charts = super::capacity_page::charts(c);
        let (figs, pngs) = draw_all(&charts, dir)?;
        let html = dir.join("report.html");
        let page = super::capacity_page::report(r, c, &figs);
        fs::write(&html, page).map_err(io(&html))?;
        return Ok(Written {
            html,
            pngs,
            notes: Vec::new(),
        });
    }
    let mut charts = report_charts(r, log_latency)?;
    let mut notes = Vec::new();
    if let Some(name) = &r.interval_log {
        // The log only adds charts: without it the report still stands, and says so.
        match crate::metrics::interval_log::read(&source.join(name)) {
            Ok(log) => {
                // Beside the all-metrics latency over time.
                let at = charts
                    .iter()
                    .position(|c| c.file == "time-latency")
                    .map_or(charts.len(), |i| i + 1);
                let per = super::per_metric::charts(r, &log);
                charts.splice(at..at, per);
            }
            Err(e) => notes.push(format!(
                "latency over time per metric left out: {e} (keep the interval log beside results.json)"
            )),
        }
    }
    let (figs, pngs) = draw_all(&charts, dir)?;
    let html = dir.join("report.html");
    fs::write(&html, report(&Model::new(r), &figs)).map_err(io(&html))?;
    Ok(Written { html, pngs, notes })
}

/// How a run is named when no `--label` is given: its folder's name for a file called
/// `results.json` (the run folder), else the file's name without `.json`.
pub fn default_label(path: &Path) -> String {
    let folder = path
        .parent()
        .and_then(|p| p.file_name())
        .filter(|_| path.file_name().is_some_and(|f| f == "results.json"));
    let name = folder
        .or_else(|| path.file_stem())
        .unwrap_or(path.as_os_str());
    name.to_string_lossy().into_owned()
}

/// Reads the runs to compare and names them: `labels` in order, else [`default_label`];
/// a repeated name gets `#2`, `#3`.
pub fn load_runs(paths: &[PathBuf], labels: &[String]) -> Result<Vec<Run>, ReportError> {
    if !labels.is_empty() && labels.len() != paths.len() {
        return Err(ReportError::Usage(format!(
            "{} --label for {} results files: give one per file, in the same order",
            labels.len(),
            paths.len()
        )));
    }
    let mut runs: Vec<Run> = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let base = labels.get(i).cloned().unwrap_or_else(|| default_label(p));
        let mut label = base.clone();
        let mut n = 2;
        while runs.iter().any(|r| r.label == label) {
            label = format!("{base} #{n}");
            n += 1;
        }
        runs.push(Run {
            label,
            results: read_results(p)?,
        });
    }
    Ok(runs)
}

/// Compares `runs` (the first is the baseline) and writes `compare.html` and a PNG per
/// chart into `dir`.
pub fn write_comparison(
    runs: &[Run],
    opts: &Options,
    dir: &Path,
) -> Result<(Comparison, Written), ReportError> {
    if runs.len() < 2 {
        return Err(ReportError::Usage(
            "compare needs at least two results files".into(),
        ));
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let comparison = compare(runs, opts);
    let charts = compare_charts(runs)?;
    let (figs, pngs) = draw_all(&charts, dir)?;
    let html = dir.join("compare.html");
    fs::write(&html, compare_html(&comparison, &figs)).map_err(io(&html))?;
    Ok((
        comparison,
        Written {
            html,
            pngs,
            notes: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_default_to_the_run_folder() {
        let p = Path::new("reports/kite-smoke-20261122T0230Z/results.json");
        assert_eq!(default_label(p), "kite-smoke-20261122T0230Z");
        assert_eq!(default_label(Path::new("/tmp/before.json")), "before");
    }
}
