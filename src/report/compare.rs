//! Runs side by side: each run's figures with the ratio to the first run, better or worse
//! marked, threshold outcomes in a grid, and the regression gate of `--fail-if-worse`.

use super::model::{fmt_us, status_label, LATENCY_COLUMNS};
use super::results::{Results, Summary};

/// Changes within this many percent are marked neither better nor worse, unless
/// `--fail-if-worse` sets another band.
pub const DEFAULT_BAND_PCT: f64 = 5.0;

/// One run of a comparison.
#[derive(Debug, Clone)]
pub struct Run {
    /// How tables and legends name it.
    pub label: String,
    /// Its results.
    pub results: Results,
}

/// How figures are judged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--fail-if-worse PCT`: a gated figure of a later run more than PCT % worse than the
    /// first run's is a regression. Also the band within which changes are not marked.
    pub fail_if_worse: Option<f64>,
    /// Latency changes no larger than this (µs) are noise: never better, never worse.
    pub min_delta_us: u64,
}

/// How a figure moved against the first run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Moved the good way beyond the band.
    Better,
    /// Moved the bad way beyond the band.
    Worse,
    /// Within the band (or the noise floor).
    Same,
}

/// One figure of one run.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The figure, formatted.
    pub text: String,
    /// Value over the first run's value (`None` in the first run, or when not defined).
    pub ratio: Option<f64>,
    /// Marked change against the first run (`None` in the first run, or unmarked columns).
    pub change: Option<Change>,
}

/// A table: a row per run, `None` where the run lacks the measure.
#[derive(Debug, Clone)]
pub struct Table {
    /// Metric name, or `connect`, or `overview`.
    pub name: String,
    /// Column headings after the run label.
    pub columns: Vec<&'static str>,
    /// (run label, cells).
    pub rows: Vec<(String, Option<Vec<Cell>>)>,
}

/// Everything `squall compare` shows.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Run labels, in order (the first is the baseline).
    pub labels: Vec<String>,
    /// Per run: (label, scenario, target, status, duration), for the runs table.
    pub runs: Vec<[String; 5]>,
    /// Throughput, errors and violations.
    pub overview: Table,
    /// Per latency metric (union over the runs, first run's order), then `connect`.
    pub metrics: Vec<Table>,
    /// Threshold expressions (union, in order of appearance) with each run's outcome:
    /// `Some((pass, message))`, or `None` when the run has no such threshold.
    pub thresholds: Vec<(String, Vec<Option<(bool, String)>>)>,
    /// Band in percent used for marking.
    pub band_pct: f64,
    /// Gated figures worse than `--fail-if-worse` allows, one line each.
    pub regressions: Vec<String>,
}

impl Comparison {
    /// Whether the gate holds (always, without `--fail-if-worse`).
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }
}

/// Judges `v` against `base`. `floor` is the noise floor in the figure's units.
fn judge(base: f64, v: f64, lower_is_better: bool, band_pct: f64, floor: f64) -> Change {
    if (v - base).abs() <= floor {
        return Change::Same;
    }
    let k = 1.0 + band_pct / 100.0;
    let (worse, better) = if lower_is_better {
        (v > base * k, v * k < base)
    } else {
        (v * k < base, v > base * k)
    };
    match (worse, better) {
        (true, _) => Change::Worse,
        (_, true) => Change::Better,
        _ => Change::Same,
    }
}

fn ratio(base: f64, v: f64) -> Option<f64> {
    (base > 0.0).then(|| v / base)
}

/// Builds the comparison of `runs` (at least one; the first is the baseline).
pub fn compare(runs: &[Run], opts: &Options) -> Comparison {
    let band = opts.fail_if_worse.unwrap_or(DEFAULT_BAND_PCT);
    let floor = opts.min_delta_us as f64;
    let mut regressions = Vec::new();
    let mut metric_names: Vec<String> = Vec::new();
    for r in runs {
        for name in r.results.metrics.keys() {
            if !metric_names.contains(name) {
                metric_names.push(name.clone());
            }
        }
    }
    let mut metrics: Vec<Table> = metric_names
        .iter()
        .map(|name| {
            let summaries: Vec<Option<&Summary>> = runs
                .iter()
                .map(|r| r.results.metrics.get(name).map(|m| &m.latency))
                .collect();
            latency_table(
                name,
                &format!("latency {name}"),
                runs,
                &summaries,
                band,
                floor,
                opts,
                &mut regressions,
            )
        })
        .collect();
    let connects: Vec<Option<&Summary>> = runs.iter().map(|r| Some(&r.results.connect)).collect();
    metrics.push(latency_table(
        "connect",
        "connect",
        runs,
        &connects,
        band,
        floor,
        opts,
        &mut regressions,
    ));
    let overview = overview(runs, band, opts, &mut regressions);
    Comparison {
        labels: runs.iter().map(|r| r.label.clone()).collect(),
        runs: runs
            .iter()
            .map(|r| {
                let m = &r.results.meta;
                [
                    r.label.clone(),
                    m.scenario_name.clone(),
                    m.target.clone(),
                    status_label(r.results.status).to_string(),
                    format!("{:.1}s", m.duration_s),
                ]
            })
            .collect(),
        overview,
        metrics,
        thresholds: thresholds(runs),
        band_pct: band,
        regressions,
    }
}

/// Gated columns of a latency table: p50, p90 and p99 (p99.9 and max are shown and
/// marked, but they rest on a handful of samples and would make the gate flaky).
const GATED: [&str; 3] = ["p50", "p90", "p99"];

#[allow(clippy::too_many_arguments)]
fn latency_table(
    name: &str,
    what: &str,
    runs: &[Run],
    summaries: &[Option<&Summary>],
    band: f64,
    floor: f64,
    opts: &Options,
    regressions: &mut Vec<String>,
) -> Table {
    let figures = |s: &Summary| [s.p50, s.p90, s.p99, s.p99_9, s.max].map(|v| v as f64);
    let base = summaries[0].filter(|s| s.count > 0).map(figures);
    let rows = runs
        .iter()
        .zip(summaries)
        .enumerate()
        .map(|(i, (run, s))| {
            let s = s.filter(|s| s.count > 0)?;
            let mut cells = vec![Cell {
                text: s.count.to_string(),
                ratio: None,
                change: None,
            }];
            for (col, v) in figures(s).into_iter().enumerate() {
                let judged = base
                    .filter(|_| i > 0)
                    .map(|b| (ratio(b[col], v), judge(b[col], v, true, band, floor)));
                let column = LATENCY_COLUMNS[col + 1];
                if let (Some(pct), Some((_, Change::Worse)), true) =
                    (opts.fail_if_worse, judged, GATED.contains(&column))
                {
                    let b = base.map_or(0.0, |b| b[col]);
                    regressions.push(format!(
                        "{}: {what} {column} {} vs {} in {} (more than {pct}% worse)",
                        run.label,
                        fmt_us(v),
                        fmt_us(b),
                        runs[0].label
                    ));
                }
                cells.push(Cell {
                    text: fmt_us(v),
                    ratio: judged.and_then(|j| j.0),
                    change: judged.map(|j| j.1),
                });
            }
            Some(cells)
        })
        .zip(runs)
        .map(|(cells, run)| (run.label.clone(), cells))
        .collect();
    Table {
        name: name.into(),
        columns: LATENCY_COLUMNS.to_vec(),
        rows,
    }
}

/// Per run: msgs/s in and out, error rate (gated), violations.
fn overview(runs: &[Run], band: f64, opts: &Options, regressions: &mut Vec<String>) -> Table {
    let figures = |r: &Results| {
        let d = r.meta.duration_s.max(1e-9);
        let c = &r.counters;
        let err = if c.ops > 0 {
            c.errors as f64 / c.ops as f64
        } else {
            0.0
        };
        [
            c.frames_in as f64 / d,
            c.frames_out as f64 / d,
            err,
            r.violations.total as f64,
        ]
    };
    let fmt = [
        |v: f64| format!("{v:.1}/s"),
        |v: f64| format!("{v:.1}/s"),
        |v: f64| format!("{:.2}%", v * 100.0),
        |v: f64| format!("{v:.0}"),
    ];
    let lower_is_better = [false, false, true, true];
    let base = figures(&runs[0].results);
    let rows = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let f = figures(&run.results);
            let cells = (0..4)
                .map(|col| {
                    let change =
                        (i > 0).then(|| judge(base[col], f[col], lower_is_better[col], band, 0.0));
                    if let (Some(pct), Some(Change::Worse), 2) = (opts.fail_if_worse, change, col) {
                        regressions.push(format!(
                            "{}: error rate {} vs {} in {} (more than {pct}% worse)",
                            run.label,
                            fmt[col](f[col]),
                            fmt[col](base[col]),
                            runs[0].label
                        ));
                    }
                    Cell {
                        text: fmt[col](f[col]),
                        ratio: (i > 0).then(|| ratio(base[col], f[col])).flatten(),
                        change,
                    }
                })
                .collect();
            (run.label.clone(), Some(cells))
        })
        .collect();
    Table {
        name: "overview".into(),
        columns: vec!["msgs in", "msgs out", "error rate", "violations"],
        rows,
    }
}

fn thresholds(runs: &[Run]) -> Vec<(String, Vec<Option<(bool, String)>>)> {
    let mut exprs: Vec<String> = Vec::new();
    for r in runs {
        for t in &r.results.thresholds {
            if !exprs.contains(&t.expr) {
                exprs.push(t.expr.clone());
            }
        }
    }
    exprs
        .into_iter()
        .map(|e| {
            let outcomes = runs
                .iter()
                .map(|r| {
                    let t = r.results.thresholds.iter().find(|t| t.expr == e)?;
                    Some((t.pass, t.message.clone()))
                })
                .collect();
            (e, outcomes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_respects_band_floor_and_direction() {
        assert_eq!(judge(100.0, 106.0, true, 5.0, 0.0), Change::Worse);
        assert_eq!(judge(100.0, 104.0, true, 5.0, 0.0), Change::Same);
        assert_eq!(judge(100.0, 90.0, true, 5.0, 0.0), Change::Better);
        assert_eq!(judge(100.0, 300.0, true, 5.0, 500.0), Change::Same);
        assert_eq!(judge(100.0, 90.0, false, 5.0, 0.0), Change::Worse);
        assert_eq!(judge(0.0, 0.01, true, 5.0, 0.0), Change::Worse);
        assert_eq!(judge(0.0, 0.0, true, 5.0, 0.0), Change::Same);
    }
}
