//! Runs side by side: each run's figures with the ratio to the first run, better or worse
//! marked, threshold outcomes in a grid, and the regression gate of `--fail-if-worse`.

use super::fmt::fmt_us;
use super::model::{status_label, LATENCY_COLUMNS};
use crate::results::{Results, Summary};

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
    /// Threshold expressions (union, in order of appearance) with each run's outcome.
    pub thresholds: Vec<ThresholdAcross>,
    /// Band in percent used for marking.
    pub band_pct: f64,
    /// Gated figures worse than `--fail-if-worse` allows, one line each.
    pub regressions: Vec<String>,
    /// How the runs differ in what they were asked to do (scenario, planned duration, peak
    /// VUs or rate, worker threads): figures that are not like for like.
    pub warnings: Vec<String>,
}

/// One threshold across the runs.
#[derive(Debug, Clone)]
pub struct ThresholdAcross {
    /// The expression as written.
    pub expr: String,
    /// Per run: `Some((pass, message))`, or `None` when the run has no such threshold.
    pub outcomes: Vec<Option<(bool, String)>>,
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
    let mut judge = Judge {
        runs,
        band: opts.fail_if_worse.unwrap_or(DEFAULT_BAND_PCT),
        floor_us: opts.min_delta_us as f64,
        gate: opts.fail_if_worse,
        regressions: Vec::new(),
    };
    let mut metric_names: Vec<&String> = Vec::new();
    for name in runs.iter().flat_map(|r| r.results.metrics.keys()) {
        if !metric_names.contains(&name) {
            metric_names.push(name);
        }
    }
    let mut metrics: Vec<Table> = metric_names
        .into_iter()
        .map(|name| {
            let summaries: Vec<Option<&Summary>> = runs
                .iter()
                .map(|r| r.results.metrics.get(name).map(|m| &m.latency))
                .collect();
            judge.latency_table(name, &format!("latency {name}"), &summaries)
        })
        .collect();
    let connects: Vec<Option<&Summary>> = runs.iter().map(|r| Some(&r.results.connect)).collect();
    metrics.push(judge.latency_table("connect", "connect", &connects));
    let overview = judge.overview();
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
        band_pct: judge.band,
        regressions: judge.regressions,
        warnings: differences(runs),
    }
}

/// One line per setting in which a later run differs from the first: the scenario, the
/// planned duration, the planned peak (VUs, or arrivals per second) and the worker threads.
fn differences(runs: &[Run]) -> Vec<String> {
    let peak = |r: &Results| {
        let p = r.meta.phases.iter().map(|p| p.to).fold(0.0, f64::max);
        match r.meta.load_model.as_str() {
            "open" => format!("{p:.0}/s"),
            _ => format!("{p:.0} VUs"),
        }
    };
    let column = |read: &dyn Fn(&Results) -> String| -> Vec<String> {
        runs.iter().map(|r| read(&r.results)).collect()
    };
    let settings = [
        ("scenario", column(&|r| r.meta.scenario_name.clone())),
        (
            "planned duration",
            column(&|r| format!("{:.1}s", r.meta.planned_duration_s)),
        ),
        ("peak load", column(&peak)),
        ("worker threads", column(&|r| r.meta.threads.to_string())),
    ];
    let mut out = Vec::new();
    for (what, values) in settings {
        if values.iter().any(|v| *v != values[0]) {
            let each: Vec<String> = runs
                .iter()
                .zip(&values)
                .map(|(r, v)| format!("{} {v}", r.label))
                .collect();
            out.push(format!(
                "the runs differ in {what} ({}): their figures are not like for like",
                each.join(", ")
            ));
        }
    }
    out
}

/// Gated columns of a latency table: p50, p90 and p99 (p99.9 and max are shown and
/// marked, but they rest on a handful of samples and would make the gate flaky).
const GATED: [&str; 3] = ["p50", "p90", "p99"];

/// Judges every run's figures against the first run's, and collects the regressions.
struct Judge<'a> {
    runs: &'a [Run],
    /// Percent within which a change is not marked.
    band: f64,
    /// Latency changes no larger than this (µs) are never marked.
    floor_us: f64,
    /// `--fail-if-worse`, when given.
    gate: Option<f64>,
    regressions: Vec<String>,
}

/// An overview column: heading, format, lower is better, gated.
type OverviewSpec = (&'static str, fn(f64) -> String, bool, bool);

/// How one figure is read and judged.
struct Measure {
    /// E.g. `latency rtt p99`, `error rate`.
    name: String,
    fmt: fn(f64) -> String,
    lower_is_better: bool,
    /// Changes no larger than this are noise.
    floor: f64,
    /// Counts for `--fail-if-worse`.
    gated: bool,
}

fn per_s(v: f64) -> String {
    format!("{v:.1}/s")
}

fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

impl Judge<'_> {
    /// Run `i`'s value `v` of `m`, judged against the first run's `base`; a gated figure
    /// worse beyond `--fail-if-worse` is a regression.
    fn cell(&mut self, i: usize, m: &Measure, base: Option<f64>, v: f64) -> Cell {
        let judged = base
            .filter(|_| i > 0)
            .map(|b| (b, judge(b, v, m.lower_is_better, self.band, m.floor)));
        if let (Some(pct), Some((b, Change::Worse)), true) = (self.gate, judged, m.gated) {
            self.regressions.push(format!(
                "{}: {} {} vs {} in {} (more than {pct}% worse)",
                self.runs[i].label,
                m.name,
                (m.fmt)(v),
                (m.fmt)(b),
                self.runs[0].label
            ));
        }
        Cell {
            text: (m.fmt)(v),
            ratio: judged.and_then(|(b, _)| ratio(b, v)),
            change: judged.map(|(_, c)| c),
        }
    }

    /// Count, p50, p90, p99, p99.9 and max of one histogram per run (`None`: not measured).
    fn latency_table(&mut self, name: &str, what: &str, summaries: &[Option<&Summary>]) -> Table {
        let figures = |s: &Summary| [s.p50, s.p90, s.p99, s.p99_9, s.max].map(|v| v as f64);
        let base = summaries[0].filter(|s| s.count > 0).map(figures);
        let mut rows = Vec::with_capacity(self.runs.len());
        for (i, s) in summaries.iter().enumerate() {
            let cells = match s.filter(|s| s.count > 0) {
                None => None,
                Some(s) => {
                    let mut cells = vec![Cell {
                        text: s.count.to_string(),
                        ratio: None,
                        change: None,
                    }];
                    for (col, v) in figures(s).into_iter().enumerate() {
                        let column = LATENCY_COLUMNS[col + 1];
                        let m = Measure {
                            name: format!("{what} {column}"),
                            fmt: fmt_us,
                            lower_is_better: true,
                            floor: self.floor_us,
                            gated: GATED.contains(&column),
                        };
                        cells.push(self.cell(i, &m, base.map(|b| b[col]), v));
                    }
                    Some(cells)
                }
            };
            rows.push((self.runs[i].label.clone(), cells));
        }
        Table {
            name: name.into(),
            columns: LATENCY_COLUMNS.to_vec(),
            rows,
        }
    }

    /// Per run: msgs/s in and out, error rate (gated), violations.
    fn overview(&mut self) -> Table {
        // (column, format, lower is better, gated)
        let spec: [OverviewSpec; 4] = [
            ("msgs in", per_s, false, false),
            ("msgs out", per_s, false, false),
            ("error rate", percent, true, true),
            ("violations", count, true, false),
        ];
        let measures = spec.map(|(name, fmt, lower_is_better, gated)| Measure {
            name: name.into(),
            fmt,
            lower_is_better,
            floor: 0.0,
            gated,
        });
        let figures = |r: &Results| {
            let d = r.meta.duration_s.max(1e-9);
            let c = &r.counters;
            let err = if c.ops > 0 {
                c.errors as f64 / c.ops as f64
            } else {
                0.0
            };
            let frames = |n: u64| n as f64 / d;
            [
                frames(c.frames_in),
                frames(c.frames_out),
                err,
                r.violations.total as f64,
            ]
        };
        let base = figures(&self.runs[0].results);
        let mut rows = Vec::with_capacity(self.runs.len());
        for i in 0..self.runs.len() {
            let f = figures(&self.runs[i].results);
            let cells = (0..measures.len())
                .map(|col| self.cell(i, &measures[col], Some(base[col]), f[col]))
                .collect();
            rows.push((self.runs[i].label.clone(), Some(cells)));
        }
        Table {
            name: "overview".into(),
            columns: spec.map(|(name, ..)| name).to_vec(),
            rows,
        }
    }
}

fn thresholds(runs: &[Run]) -> Vec<ThresholdAcross> {
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
            ThresholdAcross { expr: e, outcomes }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{test_meta, Status};

    /// A run of `vus` VUs for `secs` on `threads` threads that received `frames_in` frames.
    fn run(label: &str, vus: f64, secs: f64, threads: usize, frames_in: u64) -> Run {
        let meta = test_meta(vus, secs, threads);
        let mut results =
            crate::metrics::Aggregate::new(Vec::new()).results(meta, Status::Complete);
        results.counters.frames_in = frames_in;
        Run {
            label: label.into(),
            results,
        }
    }

    #[test]
    fn runs_that_differ_in_what_they_were_asked_to_do_are_warned_about() {
        let same = [run("a", 10.0, 10.0, 2, 100), run("b", 10.0, 10.0, 2, 150)];
        assert!(compare(&same, &Options::default()).warnings.is_empty());
        let differ = [run("a", 10.0, 10.0, 2, 100), run("b", 50.0, 60.0, 1, 100)];
        let w = compare(&differ, &Options::default()).warnings;
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("the runs differ in planned duration (a 10.0s, b 60.0s)"));
        assert!(w[1].contains("peak load (a 10 VUs, b 50 VUs)"), "{w:?}");
        assert!(w[2].contains("worker threads (a 2, b 1)"), "{w:?}");
        let text = crate::report::compare_text(&compare(&differ, &Options::default()));
        assert!(
            text.contains("warning: the runs differ in worker threads"),
            "{text}"
        );
    }

    #[test]
    fn the_text_tables_line_up_whether_a_figure_is_marked_or_not() {
        let runs = [
            run("base", 10.0, 10.0, 2, 100),
            run("same", 10.0, 10.0, 2, 101),
            run("a-long-label", 10.0, 10.0, 2, 12_345_678),
        ];
        let text = crate::report::compare_text(&compare(&runs, &Options::default()));
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "overview")
            .skip(1)
            .take(4)
            .collect();
        // Every figure ends in the column its heading ends in: `msgs in`'s.
        let end = lines[0].find("msgs in").unwrap() + "msgs in".len();
        for l in &lines[1..] {
            let chars: Vec<char> = l.chars().collect();
            let at = chars.iter().position(|c| *c == '/').unwrap() + 2;
            let figure_end = chars[at..]
                .iter()
                .position(|c| *c == ' ')
                .map(|i| at + i)
                .unwrap();
            let with_ratio = if chars[figure_end + 1] == '×' {
                figure_end
                    + 1
                    + chars[figure_end + 1..]
                        .iter()
                        .position(|c| *c == ' ' || *c == '▲' || *c == '▼')
                        .unwrap()
            } else {
                figure_end
            };
            assert_eq!(with_ratio, end, "out of line:\n{text}");
        }
    }

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
