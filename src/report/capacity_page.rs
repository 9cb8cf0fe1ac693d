//! report.html of a capacity search: the answer, the knee plots (achieved against offered
//! rate; p50 and p99 against offered rate with the SLO line), every step in a table, and
//! each step's latency over time.

use std::fmt::Write as _;

use super::fmt_us;
use super::html::{escape, figures, num, page, table, Figure};
use super::plots::{palette, Body, Chart, Line, Section};
use crate::results::capacity::{Capacity, Outcome, Step, Verdict};
use crate::results::{Phase, Results, Status};
use crate::scenario::thresholds::{self, Quantity, Stat};

/// The charts of a capacity report, in page order.
pub fn charts(c: &Capacity) -> Vec<Chart> {
    let mut steps: Vec<&Step> = c.steps.iter().collect();
    steps.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    let top = steps.last().map_or(0.0, |s| s.offered_rate);
    let achieved = line(
        "answered per second",
        palette::BLUE,
        steps.iter().map(|s| (s.offered_rate, s.achieved_rate)),
    );
    let mut ideal = line(
        "all answered (achieved = offered)",
        palette::INK,
        [(0.0, 0.0), (top, top)].into_iter(),
    );
    ideal.dashed = true;
    let mut out = vec![Chart {
        section: Section::Capacity,
        file: "capacity-rate".into(),
        title: "Achieved against offered rate".into(),
        body: Body::Xy {
            lines: vec![achieved, ideal],
            x_desc: "offered rate (arrivals/s)".into(),
            y_desc: "achieved rate (answered/s)".into(),
        },
    }];
    if let Some(metric) = &c.metric {
        out.push(knee_latency(c, metric, &steps, top));
    }
    out.push(over_time(c));
    out
}

fn line(
    label: &str,
    color: plotters::style::RGBColor,
    pts: impl Iterator<Item = (f64, f64)>,
) -> Line {
    Line {
        label: label.into(),
        color,
        points: pts.collect(),
        dashed: false,
    }
}

/// p50 and p99 of `metric` against the offered rate, with each latency SLO on it as a
/// dashed line, in ms.
fn knee_latency(c: &Capacity, metric: &str, steps: &[&Step], top: f64) -> Chart {
    let at = |f: fn(&crate::results::capacity::Percentiles) -> u64| {
        steps
            .iter()
            .filter_map(|s| Some((s.offered_rate, f(s.metrics.get(metric)?) as f64 / 1e3)))
            .filter(|p| p.1 > 0.0)
            .collect::<Vec<_>>()
            .into_iter()
    };
    let mut lines = vec![
        line("p50", palette::BLUE, at(|p| p.p50)),
        line("p99", palette::VERMILLION, at(|p| p.p99)),
    ];
    for slo in &c.slo {
        let Ok((Quantity::Latency { metric: m, stat }, _, bound)) = thresholds::parse(slo) else {
            continue;
        };
        if m == metric && matches!(stat, Stat::Percentile(_) | Stat::Max | Stat::Mean) {
            let mut l = line(
                &format!("SLO {slo}"),
                palette::PURPLE,
                [(0.0, bound / 1e3), (top, bound / 1e3)].into_iter(),
            );
            l.dashed = true;
            lines.push(l);
        }
    }
    Chart {
        section: Section::Capacity,
        file: "capacity-latency".into(),
        title: format!("{metric}: latency against offered rate"),
        body: Body::Xy {
            lines,
            x_desc: "offered rate (arrivals/s)".into(),
            y_desc: "latency (ms)".into(),
        },
    }
}

/// Every step's per-tick p50 and p99 on the search's clock, each step shaded.
fn over_time(c: &Capacity) -> Chart {
    let points = |f: fn(&crate::results::capacity::Point) -> Option<u64>| {
        c.steps
            .iter()
            .flat_map(|s| {
                s.series
                    .iter()
                    .filter_map(move |p| Some((s.started_s + p.t, f(p)? as f64 / 1e3)))
            })
            .collect::<Vec<_>>()
            .into_iter()
    };
    let phases = c
        .steps
        .iter()
        .map(|s| Phase {
            start_s: s.started_s,
            end_s: s.started_s + s.series.last().map_or(0.0, |p| p.t),
            from: s.offered_rate,
            to: s.offered_rate,
        })
        .collect();
    Chart {
        section: Section::Capacity,
        file: "capacity-steps".into(),
        title: "Each step's latency over time (per tick, all metrics; shaded: the rate held)"
            .into(),
        body: Body::OverTime {
            lines: vec![
                line("p50", palette::BLUE, points(|p| p.p50_us)),
                line("p99", palette::VERMILLION, points(|p| p.p99_us)),
            ],
            y_desc: "latency (ms)".into(),
            phases,
        },
    }
}

/// The report page of a capacity search; `r` is the sustained step's run.
pub fn report(r: &Results, c: &Capacity, figs: &[Figure]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>{}: capacity</h1>\n<p class=\"sub\"><span class=\"status {}\">{}</span> → {}</p>\n",
        escape(&r.meta.scenario_name),
        status_class(r.status),
        outcome_name(c.outcome),
        escape(&r.meta.target)
    );
    let _ = writeln!(
        o,
        "<p style=\"font-size:1.25em\"><b>{}</b></p>",
        escape(&c.answer)
    );
    if matches!(
        c.outcome,
        Outcome::GeneratorLimited | Outcome::TargetFailed | Outcome::Interrupted
    ) {
        let _ = writeln!(o, "<div class=\"banner\">⚠ {}</div>", escape(&c.answer));
    }
    o.push_str("<h2 id=\"slo\">SLO and search</h2>\n<ul>\n");
    for s in &c.slo {
        let _ = writeln!(o, "<li><code>{}</code></li>", escape(s));
    }
    let s = &c.search;
    let _ = writeln!(
        o,
        "</ul>\n<p>From {}/s to at most {}/s, doubling until a step broke, then halving the gap to {}%. \
         Each step held its rate for {} s and left its first {} s (the warm-up) out of its figures.</p>",
        rate(s.from),
        rate(s.to),
        trim(s.precision * 100.0),
        trim(s.step_s),
        trim(s.warmup_s)
    );
    o.push_str("<h2 id=\"knee\">Knee</h2>\n");
    figures(&mut o, figs, Section::Capacity);
    o.push_str("<h2 id=\"steps\">Steps</h2>\n");
    steps_table(&mut o, c);
    o.push_str(READING);
    let _ = writeln!(
        o,
        "<footer>Made by squall from results.json alone (its other sections are the sustained step's run); PNG copies of every chart are beside this file.</footer>"
    );
    page(&format!("squall capacity: {}", r.meta.scenario_name), &o)
}

const READING: &str = "<h2 id=\"reading\">Reading the answer</h2>\n<p>A step is good when every SLO held over \
its measured window (the step after its warm-up), its latency was steady (the median latency of the window's \
second half no more than a tenth of the tightest latency SLO above the first half's) and every request \
was answered. The sustained rate is the highest good step: the knee, where latency turns upward, not the \
most the target ever answered, which it reaches only while its queue grows.</p>\n";

fn steps_table(o: &mut String, c: &Capacity) {
    let metric = c.metric.as_deref().unwrap_or("");
    let rows: Vec<Vec<String>> = c
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = s.metrics.get(metric).copied().unwrap_or_default();
            let trend = s.trend.as_ref().map_or("not judged".into(), |t| {
                format!("{} → {}", fmt_us(t.first_half_us), fmt_us(t.second_half_us))
            });
            let cpu = s.health.cpu_peak.map_or("-".into(), |c| format!("{c:.2}"));
            vec![
                num(i + 1),
                num(rate(s.offered_rate)),
                num(rate(s.achieved_rate)),
                num(fmt_us(p.p50 as f64)),
                num(fmt_us(p.p99 as f64)),
                escape(&trend),
                num(format!(
                    "{} / {} / {}",
                    s.requests.sent, s.requests.timeouts, s.errors
                )),
                num(format!("{cpu} · {}", fmt_us(s.health.lag_p99_us as f64))),
                verdict(s.verdict),
                escape(&s.why.join("; ")),
            ]
        })
        .collect();
    let p50 = format!("{metric} p50");
    let p99 = format!("{metric} p99");
    table(
        o,
        &[
            "#",
            "offered/s",
            "answered/s",
            &p50,
            &p99,
            "trend (medians of the halves)",
            "sent / timed out / errors",
            "generator CPU peak · lateness p99",
            "verdict",
            "why",
        ],
        &rows,
    );
}

fn verdict(v: Verdict) -> String {
    match v {
        Verdict::Good => "<span class=\"pass\">✓ good</span>".into(),
        Verdict::Bad => "<span class=\"fail\">✗ bad</span>".into(),
        Verdict::GeneratorLimited => "<span class=\"fail\">! generator</span>".into(),
        Verdict::TargetFailed => "<span class=\"fail\">! target failed</span>".into(),
        Verdict::Interrupted => "interrupted".into(),
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Found => "found",
        Outcome::BelowFrom => "breaks below --from",
        Outcome::AboveTo => "holds at --to",
        Outcome::GeneratorLimited => "generator limited",
        Outcome::TargetFailed => "target failed",
        Outcome::Interrupted => "interrupted",
    }
}

fn rate(r: f64) -> String {
    super::fmt_rate(r)
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Complete => "complete",
        Status::Interrupted => "interrupted",
        Status::Aborted => "aborted",
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::{Percentiles, Point, Settings};
    use crate::report::{Health, RequestCounts};

    fn step(rate: f64, achieved: f64, p99_ms: u64, verdict: Verdict) -> Step {
        let p = Percentiles {
            count: 100,
            p50: 300,
            p90: 500,
            p99: p99_ms * 1000,
            p99_9: p99_ms * 1000,
            max: p99_ms * 1000,
        };
        Step {
            offered_rate: rate,
            achieved_rate: achieved,
            started_s: rate / 100.0,
            measured_s: 1.5,
            verdict,
            why: vec![],
            metrics: [("rtt".to_string(), p)].into(),
            slo: vec![],
            trend: None,
            requests: RequestCounts::default(),
            errors: 0,
            connections_failed: 0,
            connections_lost: 0,
            missed: 0,
            health: Health::default(),
            series: vec![Point {
                t: 0.25,
                p50_us: Some(300),
                p99_us: Some(p99_ms * 1000),
            }],
        }
    }

    fn capacity() -> Capacity {
        Capacity {
            outcome: Outcome::Found,
            answer: "sustains 200/s with latency.rtt.p99 < 50ms".into(),
            sustained_rate: Some(200.0),
            breaking_rate: Some(400.0),
            slo: vec!["latency.rtt.p99 < 50ms".into(), "errors.rate < 1%".into()],
            metric: Some("rtt".into()),
            search: Settings {
                from: 100.0,
                to: 1e6,
                precision: 0.05,
                step_s: 2.0,
                warmup_s: 0.5,
            },
            // In the order run: 400/s came before 200/s's neighbour was known.
            steps: vec![
                step(100.0, 100.0, 2, Verdict::Good),
                step(400.0, 310.0, 900, Verdict::Bad),
                step(200.0, 199.0, 3, Verdict::Good),
            ],
        }
    }

    #[test]
    fn the_knee_plots_sort_the_steps_by_rate_and_draw_the_slo() {
        let charts = charts(&capacity());
        let files: Vec<&str> = charts.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            ["capacity-rate", "capacity-latency", "capacity-steps"]
        );
        let Body::Xy { lines, .. } = &charts[0].body else {
            panic!("{:?}", charts[0].body)
        };
        assert_eq!(
            lines[0].points,
            vec![(100.0, 100.0), (200.0, 199.0), (400.0, 310.0)]
        );
        let Body::Xy { lines, .. } = &charts[1].body else {
            panic!("{:?}", charts[1].body)
        };
        let p99: Vec<f64> = lines[1].points.iter().map(|p| p.1).collect();
        assert_eq!(p99, vec![2.0, 3.0, 900.0]);
        // One SLO line (the error-rate SLO is not a latency), at 50 ms, across the rates.
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].points, vec![(0.0, 50.0), (400.0, 50.0)]);
        assert!(lines[2].dashed);
        let Body::OverTime { phases, lines, .. } = &charts[2].body else {
            panic!("{:?}", charts[2].body)
        };
        assert_eq!(phases.len(), 3);
        // Each step's ticks on the search's clock.
        assert_eq!(lines[0].points[1].0, 4.0 + 0.25);
    }

    #[test]
    fn the_page_leads_with_the_answer_and_lists_every_step() {
        let r = crate::metrics::Aggregate::new(vec!["rtt".into()]).results(
            serde_json::from_value(serde_json::json!({
                "tool_version": "0", "scenario_name": "kite-capacity", "scenario_file": "c.yaml",
                "scenario_sha256": "ab", "protocol": "kite", "target": "ws://t/ws", "seed": 1,
                "threads": 1, "started_at": "2026-12-07T00:00:00Z", "ended_at": null,
                "duration_s": 2.0, "planned_duration_s": 2.0, "load_model": "open",
                "host": "h", "phases": []
            }))
            .unwrap(),
            Status::Complete,
        );
        let html = report(&r, &capacity(), &[]);
        let answer = html.find("sustains 200/s").unwrap();
        assert!(answer < html.find("id=\"knee\"").unwrap());
        assert_eq!(html.matches("✓ good").count(), 2);
        assert_eq!(html.matches("✗ bad").count(), 1);
        assert!(
            html.contains("<code>latency.rtt.p99 &lt; 50ms</code>"),
            "{html}"
        );
    }
}
