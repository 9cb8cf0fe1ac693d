//! Live progress on a terminal: elapsed/total, VUs, connections, msgs/s, errors, p99 so far.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Aggregate;

/// A one-line progress bar redrawn on every tick.
pub struct Bar {
    bar: ProgressBar,
    total: u64,
}

/// Where the bar stands and what it says first: the elapsed seconds, never past the
/// planned length, and `stopping` once the load is over (planned end reached, or Ctrl-C)
/// while iterations finish.
fn stand(elapsed: Duration, total: u64, stopping: bool) -> (u64, &'static str) {
    let secs = elapsed.as_secs();
    let word = if stopping || secs >= total {
        "stopping "
    } else {
        ""
    };
    (secs.min(total), word)
}

impl Bar {
    /// A bar for a run planned to last `total`.
    pub fn new(total: Duration) -> Self {
        let total = total.as_secs().max(1);
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar { bar, total }
    }

    /// Redraws from the merged metrics. Rates are the last complete second of the series
    /// (every worker's events in it), not counters read mid-tick, so they show no false
    /// dips.
    pub fn update(&mut self, agg: &Aggregate, elapsed: Duration, stopping: bool) {
        let b = self;
        let (rate_in, rate_out) = agg
            .series()
            .last()
            .map_or((0.0, 0.0), |p| (p.msgs_in, p.msgs_out));
        let p99 = agg
            .p99_us()
            .map_or("-".to_string(), |us| format!("{:.2}ms", us as f64 / 1000.0));
        let (pos, word) = stand(elapsed, b.total, stopping);
        b.bar.set_position(pos);
        b.bar.set_message(format!(
            "{word}vus {} conns {} in {:.0}/s out {:.0}/s errors {} p99 {}",
            agg.active_vus(),
            agg.active_connections(),
            rate_in,
            rate_out,
            agg.errors(),
            p99
        ));
    }

    /// Redraws from what `--procs` shard processes last wrote: VUs, connections, rates and
    /// errors summed; p99 the worst shard's (percentiles do not add; the merge at the end
    /// is exact).
    pub fn update_summed(&mut self, live: &Summed, elapsed: Duration, stopping: bool) {
        let p99 = live
            .worst_p99_us
            .map_or("-".to_string(), |us| format!("{:.2}ms", us as f64 / 1000.0));
        let (pos, word) = stand(elapsed, self.total, stopping);
        self.bar.set_position(pos);
        self.bar.set_message(format!(
            "{word}{} procs: vus {} conns {} in {:.0}/s out {:.0}/s errors {} p99 {} (worst shard)",
            live.running, live.vus, live.connections, live.rate_in, live.rate_out, live.errors, p99
        ));
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Leaves the last line on screen as it stands (an interrupted run's bar does not
    /// jump to the end).
    pub fn finish(self) {
        self.bar.abandon();
    }
}

/// The shard processes' live figures added up (see [`Bar::update_summed`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summed {
    /// Shard processes still running.
    pub running: usize,
    /// Running VUs.
    pub vus: u64,
    /// Open connections.
    pub connections: u64,
    /// Messages per second received, last complete second.
    pub rate_in: f64,
    /// Messages per second sent, last complete second.
    pub rate_out: f64,
    /// Errors so far.
    pub errors: u64,
    /// The highest p99 latency of any metric on any shard, µs.
    pub worst_p99_us: Option<u64>,
}

impl Summed {
    /// Adds one shard's latest results.
    pub fn add(&mut self, r: &crate::report::Results) {
        if let Some(p) = r.series.last() {
            self.vus += p.active_vus;
            self.connections += p.active_connections;
            self.rate_in += p.msgs_in;
            self.rate_out += p.msgs_out;
        }
        self.errors += r.counters.errors;
        let p99 = r.metrics.values().filter(|m| m.latency.count > 0);
        if let Some(worst) = p99.map(|m| m.latency.p99).max() {
            self.worst_p99_us = Some(self.worst_p99_us.map_or(worst, |w| w.max(worst)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_never_runs_past_its_length_and_says_when_it_is_stopping() {
        let s = Duration::from_secs;
        assert_eq!(stand(s(3), 600, false), (3, ""));
        assert_eq!(stand(s(3), 600, true), (3, "stopping "), "Ctrl-C at 3 s");
        assert_eq!(
            stand(s(5), 4, false),
            (4, "stopping "),
            "graceful stop past the end"
        );
        assert_eq!(stand(s(4), 4, false), (4, "stopping "));
    }
}
