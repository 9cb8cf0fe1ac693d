//! The terminal view of a search: a progress bar for the step under way (on a terminal),
//! one line per step as it ends, and the lines of the final table.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Aggregate;
use crate::report::capacity::{Step, Verdict};
use crate::report::{fmt_rate, fmt_us};

/// What the search shows as it goes.
pub struct View {
    /// Draw a bar for the step under way (stdout is a terminal).
    progress: bool,
    /// Print nothing.
    quiet: bool,
    step_len: Duration,
    bar: Option<ProgressBar>,
    /// The metric whose percentiles the lines show.
    metric: Option<String>,
}

impl View {
    /// A view for steps of `step_len`.
    pub fn new(progress: bool, quiet: bool, step_len: Duration, metric: Option<String>) -> Self {
        View {
            progress: progress && !quiet,
            quiet,
            step_len,
            bar: None,
            metric,
        }
    }

    /// A step begins.
    pub fn start(&mut self, n: usize, rate: f64) {
        if !self.progress {
            return;
        }
        let bar = ProgressBar::new(self.step_len.as_millis().max(1) as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:24}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("step {n:>2} {:>10}/s", fmt_rate(rate)));
        self.bar = Some(bar);
    }

    /// The step's merged metrics so far.
    pub fn tick(&mut self, agg: &Aggregate, elapsed: Duration) {
        let Some(bar) = &self.bar else { return };
        let last = agg.series().last();
        let p99 = last
            .and_then(|p| p.p99_us)
            .map_or("-".into(), |us| fmt_us(us as f64));
        let span = last.map_or(0.0, |p| p.span_s);
        let rate = last.map_or(0.0, |p| {
            if span > 0.0 {
                p.samples as f64 / span
            } else {
                0.0
            }
        });
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "answered {}/s  p99 {p99}  open {}  errors {}",
            fmt_rate(rate),
            agg.active_connections(),
            agg.errors()
        ));
    }

    /// Time since the step began, when its figures are in other processes (`--procs`).
    pub fn elapsed(&mut self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_millis() as u64);
        }
    }

    /// A step ended: its line replaces the bar.
    pub fn finish(&mut self, n: usize, step: &Step) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        // Off a terminal each step goes to stderr as it ends, so stdout leads with the
        // answer (the steps follow it there too).
        if self.progress {
            println!("{}", self.line(n, step));
        } else if !self.quiet {
            eprintln!("{}", self.line(n, step));
        }
    }

    /// One step in one line: mark, rate offered and achieved, percentiles, and why.
    pub fn line(&self, n: usize, s: &Step) -> String {
        let mark = match s.verdict {
            Verdict::Good => "✓",
            Verdict::Bad => "✗",
            _ => "!",
        };
        let pct = self
            .metric
            .as_ref()
            .and_then(|m| Some((m, s.metrics.get(m)?)))
            .filter(|(_, p)| p.count > 0)
            .map_or(String::new(), |(m, p)| {
                format!(
                    "  {m} p50 {} p99 {}",
                    fmt_us(p.p50 as f64),
                    fmt_us(p.p99 as f64)
                )
            });
        let why = match s.verdict {
            Verdict::Good => "  steady".to_string(),
            _ => format!("  {}", s.why.join("; ")),
        };
        format!(
            "{mark} step {n:>2} {:>10}/s → {:>10}/s answered{pct}{why}",
            fmt_rate(s.offered_rate),
            fmt_rate(s.achieved_rate)
        )
    }
}
