//! Which charts a report and a comparison draw, and their data, from [`Results`] alone.

use std::collections::HashSet;

use hdrhistogram::Histogram;

use super::compare::Run;
use super::fmt::{close_label, fmt_us};
use super::plots::{palette, Bar, Body, Chart, Line, Section};
use crate::results::{ReportError, Results, SeriesPoint, Summary};

/// Points per decade on the percentile axis (x = log10(1/(1-q)), 0 to 4).
const STEPS_PER_DECADE: u32 = 24;

/// Bars of the connect-time distribution.
const CONNECT_BINS: u64 = 16;

/// The latency-by-percentile curve of `h`, µs at x = log10(1/(1-q)) from 0 % to 99.99 %.
/// Empty without samples.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=4 * STEPS_PER_DECADE)
        .map(|i| {
            let x = f64::from(i) / f64::from(STEPS_PER_DECADE);
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64)
        })
        .collect()
}

/// The curve of a stored summary.
pub fn summary_curve(s: &Summary) -> Result<Vec<(f64, f64)>, ReportError> {
    Ok(percentile_curve(&s.histogram()?))
}

/// Turns names into distinct file stems: `[A-Za-z0-9_-]` kept, anything else `_`, and a
/// number appended when two names would otherwise meet.
#[derive(Default)]
pub struct FileNames(HashSet<String>);

impl FileNames {
    /// A stem for `prefix-name` not handed out before.
    pub fn stem(&mut self, prefix: &str, name: &str) -> String {
        let safe: String = name
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
        let base = format!("{prefix}-{safe}");
        let mut stem = base.clone();
        let mut n = 2;
        while !self.0.insert(stem.clone()) {
            stem = format!("{base}-{n}");
            n += 1;
        }
        stem
    }
}

fn line(label: &str, color: plotters::style::RGBColor, points: Vec<(f64, f64)>) -> Line {
    Line {
        label: label.into(),
        color,
        points,
        dashed: false,
    }
}

fn series_line(
    r: &Results,
    label: &str,
    color: plotters::style::RGBColor,
    f: impl Fn(&SeriesPoint) -> Option<f64>,
) -> Line {
    let points = r.series.iter().filter_map(|p| Some((p.t, f(p)?))).collect();
    line(label, color, points)
}

/// Every chart of one run's report, in the order the HTML shows them.
pub fn report_charts(r: &Results, log_latency: bool) -> Result<Vec<Chart>, ReportError> {
    let mut names = FileNames::default();
    let mut charts = Vec::new();
    for (name, m) in &r.metrics {
        let latency = line(
            "latency (from the intended send time)",
            palette::BLUE,
            summary_curve(&m.latency)?,
        );
        let mut service = line(
            "service time (from the actual send)",
            palette::ORANGE,
            summary_curve(&m.service)?,
        );
        service.dashed = true;
        charts.push(Chart {
            section: Section::Latency,
            file: names.stem("latency", name),
            title: format!("{name}: latency by percentile"),
            body: if log_latency {
                Body::PercentilesLog(vec![latency, service])
            } else {
                Body::Percentiles(vec![latency, service])
            },
        });
    }
    charts.extend(time_charts(r, &mut names));
    charts.push(connect_distribution(r, &mut names)?);
    charts.push(close_codes(r, &mut names));
    if r.series.iter().any(|p| p.cpu.is_some()) {
        let cpu = series_line(r, "squall threads CPU", palette::PURPLE, |p| p.cpu);
        let cores = line(
            "cores available",
            palette::INK,
            r.series.iter().map(|p| (p.t, r.health.cores)).collect(),
        );
        let mut chart = over_time(
            &mut names,
            "cpu",
            "Generator CPU (squall's own threads)",
            "cores",
            vec![cpu, cores],
            r,
        );
        chart.section = Section::Generator;
        charts.push(chart);
    }
    Ok(charts)
}

fn over_time(
    names: &mut FileNames,
    file: &str,
    title: &str,
    y_desc: &str,
    lines: Vec<Line>,
    r: &Results,
) -> Chart {
    Chart {
        section: Section::OverTime,
        file: names.stem("time", file),
        title: title.into(),
        body: Body::OverTime {
            lines,
            y_desc: y_desc.into(),
            phases: r.meta.phases.clone(),
        },
    }
}

/// The latency chart's axis and lines, in µs or ms: p50, p99 and, when measured, the
/// generator's own lateness beside the latency it may be part of.
fn latency_lines(r: &Results) -> (String, Vec<Line>) {
    let lateness = r.series.iter().any(|p| p.lag_max_us.is_some());
    let max_us = r
        .series
        .iter()
        .flat_map(|p| [p.p99_us, p.lag_max_us])
        .flatten()
        .max()
        .unwrap_or(0) as f64;
    let (unit, div) = if max_us < 2_000.0 {
        ("µs", 1.0)
    } else {
        ("ms", 1e3)
    };
    let us = |v: Option<u64>| v.map(|v| v as f64 / div);
    let mut v = vec![
        series_line(r, "p50", palette::BLUE, |p| us(p.p50_us)),
        series_line(r, "p99", palette::VERMILLION, |p| us(p.p99_us)),
    ];
    if lateness {
        v.push(Line {
            dashed: true,
            ..series_line(r, "generator lateness max", palette::PURPLE, |p| {
                us(p.lag_max_us)
            })
        });
    }
    (format!("latency ({unit})"), v)
}

/// The charts over time: latency, throughput, connections, errors and violations.
fn time_charts(r: &Results, names: &mut FileNames) -> Vec<Chart> {
    let (latency_axis, latency) = latency_lines(r);
    let line =
        |label, color, f: fn(&SeriesPoint) -> f64| series_line(r, label, color, |p| Some(f(p)));
    let vus = Line {
        dashed: true,
        ..line("running VUs", palette::ORANGE, |p| p.active_vus as f64)
    };
    // (file, title, y axis, lines)
    let specs = [
        (
            "latency",
            "Latency over time (all metrics, per second)",
            latency_axis,
            latency,
        ),
        (
            "throughput",
            "Throughput",
            "messages per second".into(),
            vec![
                line("in (received)", palette::GREEN, |p| p.msgs_in),
                line("out (sent)", palette::SKY, |p| p.msgs_out),
            ],
        ),
        (
            "connections",
            "Active connections (load phases shaded)",
            "connections / VUs".into(),
            vec![
                line("open connections", palette::BLUE, |p| {
                    p.active_connections as f64
                }),
                vus,
            ],
        ),
        (
            "errors",
            "Errors and violations",
            "count per interval".into(),
            vec![
                line("errors", palette::VERMILLION, |p| p.errors as f64),
                line("violations", palette::PURPLE, |p| p.violations as f64),
            ],
        ),
    ];
    specs
        .into_iter()
        .map(|(file, title, y_desc, lines)| over_time(names, file, title, &y_desc, lines, r))
        .collect()
}

/// Connect times in equal bins from the fastest to p99.9; slower ones join the last bin.
fn connect_distribution(r: &Results, names: &mut FileNames) -> Result<Chart, ReportError> {
    let h = r.connect.histogram()?;
    let mut bars = Vec::new();
    if !h.is_empty() {
        let lo = h.min();
        let hi = h.value_at_quantile(0.999).max(lo + CONNECT_BINS);
        let width = (hi - lo).div_ceil(CONNECT_BINS);
        let mut counts = [0u64; CONNECT_BINS as usize];
        // Each recorded value counted once, in the bin its value falls in.
        for v in h.iter_recorded() {
            let bin = ((v.value_iterated_to().saturating_sub(lo)) / width).min(CONNECT_BINS - 1);
            counts[bin as usize] += v.count_at_value();
        }
        for (i, n) in counts.into_iter().enumerate() {
            let from = fmt_us((lo + i as u64 * width) as f64);
            let last = i + 1 == counts.len();
            bars.push(Bar {
                label: if last { format!("≥{from}") } else { from },
                value: n as f64,
                color: palette::BLUE,
            });
        }
    }
    Ok(Chart {
        section: Section::Connections,
        file: names.stem("connect", "time"),
        title: "Connect time (TCP + TLS + upgrade)".into(),
        body: Body::Bars {
            bars,
            x_desc: "connect time (bin start)".into(),
            y_desc: "connections".into(),
        },
    })
}

/// How connections ended (by close code) and how attempts failed (by cause).
fn close_codes(r: &Results, names: &mut FileNames) -> Chart {
    let c = &r.counters.connections;
    // Every connection opened ended in one of these bars (or is still open); every
    // attempt that failed is in one of the red ones.
    let mut codes: Vec<_> = c.closed_by_code.iter().collect();
    codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let open = (c.open_at_stop > 0).then(|| Bar {
        label: "open at the stop".into(),
        value: c.open_at_stop as f64,
        color: palette::INK,
    });
    let closes = codes
        .into_iter()
        .map(|(code, n)| Bar {
            label: close_label(code),
            value: *n as f64,
            color: palette::BLUE,
        })
        .chain(open);
    let failures = c.failed_by_cause.iter().map(|(cause, n)| Bar {
        label: format!("failed: {cause}"),
        value: *n as f64,
        color: palette::VERMILLION,
    });
    Chart {
        section: Section::Connections,
        file: names.stem("connections", "closes"),
        title: match c.failed {
            0 => format!("How the {} connections ended (close code)", c.opened),
            n => format!(
                "How the {} connections ended (close code), and the {n} failed attempts",
                c.opened
            ),
        },
        body: Body::Bars {
            bars: closes.chain(failures).collect(),
            x_desc: "close code / failure cause".into(),
            y_desc: "connections".into(),
        },
    }
}

/// A comparison's charts: per latency metric (union over the runs), then connect time,
/// each run's latency-by-percentile curve overlaid in its own colour.
pub fn compare_charts(runs: &[Run]) -> Result<Vec<Chart>, ReportError> {
    let mut names = FileNames::default();
    let mut metrics: Vec<&String> = Vec::new();
    for name in runs.iter().flat_map(|r| r.results.metrics.keys()) {
        if !metrics.contains(&name) {
            metrics.push(name);
        }
    }
    let mut charts = Vec::new();
    for name in metrics {
        let summaries: Vec<Option<&Summary>> = runs
            .iter()
            .map(|r| r.results.metrics.get(name).map(|m| &m.latency))
            .collect();
        charts.push(Chart {
            section: Section::Latency,
            file: names.stem("compare", name),
            title: format!("{name}: latency by percentile"),
            body: Body::Percentiles(overlaid(runs, &summaries)?),
        });
    }
    let connects: Vec<Option<&Summary>> = runs.iter().map(|r| Some(&r.results.connect)).collect();
    charts.push(Chart {
        section: Section::Connections,
        file: names.stem("compare", "connect"),
        title: "Connect time by percentile".into(),
        body: Body::Percentiles(overlaid(runs, &connects)?),
    });
    Ok(charts)
}

fn overlaid(runs: &[Run], summaries: &[Option<&Summary>]) -> Result<Vec<Line>, ReportError> {
    let mut lines = Vec::new();
    for (i, (run, s)) in runs.iter().zip(summaries).enumerate() {
        if let Some(s) = s {
            let color = palette::RUNS[i % palette::RUNS.len()];
            lines.push(line(&run.label, color, summary_curve(s)?));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_by_percentile_can_be_drawn_on_a_log_scale() {
        use crate::metrics::{Aggregate, Recorder};
        use crate::results::{test_meta, Status};
        let names = vec!["rtt".to_string()];
        let mut rec = Recorder::with_worker(0, &names);
        for us in 100..1_100u64 {
            rec.latency(crate::scenario::plan::MetricId(0), us, us);
        }
        // One outlier that would flatten a linear axis.
        rec.latency(crate::scenario::plan::MetricId(0), 5_000_000, 5_000_000);
        let mut agg = Aggregate::new(names);
        agg.add(rec.take());
        let r = agg.results(test_meta(1.0, 1.0, 1), Status::Complete);
        let log = report_charts(&r, true).unwrap();
        assert!(matches!(log[0].body, Body::PercentilesLog(_)));
        let svg = super::super::plots::svg(&log[0]).unwrap();
        assert!(svg.contains("log scale)"), "the axis says so");
        let linear = report_charts(&r, false).unwrap();
        assert!(matches!(linear[0].body, Body::Percentiles(_)));
        assert!(!super::super::plots::svg(&linear[0])
            .unwrap()
            .contains("log scale)"));
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let mut n = FileNames::default();
        assert_eq!(n.stem("latency", "rtt"), "latency-rtt");
        assert_eq!(n.stem("latency", "a/b c"), "latency-a_b_c");
        assert_eq!(n.stem("latency", "a_b_c"), "latency-a_b_c-2");
    }

    #[test]
    fn curve_spans_the_classic_axis() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let c = percentile_curve(&h);
        assert_eq!(c.first().unwrap().0, 0.0);
        assert_eq!(c.last().unwrap().0, 4.0);
        // x = 2 is p99.
        let p99 = c.iter().find(|p| (p.0 - 2.0).abs() < 1e-9).unwrap().1;
        assert!((9_850.0..=9_950.0).contains(&p99), "{p99}");
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
