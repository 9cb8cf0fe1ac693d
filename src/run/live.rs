//! What a run does on every tick while the load goes: results.json rewritten, the interval
//! log appended, the Prometheus exposition and the progress bar updated, warnings said.

use std::time::{Duration, SystemTime};

use super::meta::{meta, stamp};
use super::{progress, prometheus, RunArgs};
use crate::metrics::interval_log::{self, IntervalHistograms};
use crate::metrics::Aggregate;
use crate::report::{ReportError, ResultsWriter, Status};
use crate::scenario::plan::Plan;
use crate::swarm::Observer;

/// Writes results and draws progress after every tick.
pub(super) struct Live<'a> {
    pub(super) plan: &'a Plan,
    pub(super) args: &'a RunArgs,
    pub(super) writer: &'a ResultsWriter,
    pub(super) started: SystemTime,
    pub(super) threads: usize,
    pub(super) bar: Option<progress::Bar>,
    pub(super) error: Option<ReportError>,
    /// A stop was asked for (Ctrl-C): the bar says so.
    pub(super) stopping: bool,
    /// The interval log; `None` once a write to it failed (results.json then names none).
    pub(super) log: Option<interval_log::Writer>,
    /// Where `--metrics-listen` serves from, rendered every tick.
    pub(super) exposition: Option<prometheus::Exposition>,
}

impl Live<'_> {
    /// Appends the seconds sealed since the last tick to the interval log.
    fn log_intervals(&mut self, sealed: Vec<IntervalHistograms>) {
        let Some(log) = &mut self.log else { return };
        if let Err(e) = sealed.iter().try_for_each(|iv| log.append(iv)) {
            eprintln!(
                "squall: {}: {e}; results.json will name no interval log",
                log.path().display()
            );
            if let Some(log) = self.log.take() {
                log.discard();
            }
        }
    }
}

impl Observer for Live<'_> {
    fn on_tick(&mut self, agg: &mut Aggregate, elapsed: Duration) {
        self.log_intervals(agg.drain_intervals());
        let mut meta = meta(self.plan, self.args, self.started, self.threads);
        meta.duration_s = elapsed.as_secs_f64();
        let mut results = agg.results(meta, Status::Running);
        stamp(&mut results, self.args, self.log.is_some());
        if let Some(text) = &self.exposition {
            let rendered = prometheus::render(&results);
            if let Ok(mut t) = text.lock() {
                *t = rendered;
            }
        }
        if let Err(e) = self.writer.write(&results) {
            if self.error.is_none() {
                eprintln!("squall: {e}");
            }
            self.error = Some(e);
        }
        if let Some(bar) = &mut self.bar {
            bar.update(agg, elapsed, self.stopping);
        }
        if !self.args.quiet {
            for w in agg.drain_warnings() {
                eprintln!("squall: warning: {w}");
            }
        }
    }

    fn on_interrupt(&mut self, grace: Option<Duration>) {
        // Said even with --quiet: it answers the user's own keystroke.
        let line = match grace {
            Some(g) => format!(
                "squall: stopping: finishing iterations (up to {}s), Ctrl-C again to stop now",
                g.as_secs_f64()
            ),
            None => "squall: stopping now".to_string(),
        };
        self.stopping = true;
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => eprintln!("{line}"),
        }
    }
}
