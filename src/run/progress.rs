//! Live progress on a terminal: elapsed/total, VUs, connections, msgs/s, errors, p99 so far.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Aggregate;

/// A one-line progress bar redrawn on every tick.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar for a run planned to last `total`.
    pub fn new(total: Duration) -> Self {
        let bar = ProgressBar::new(total.as_secs().max(1));
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar { bar }
    }

    /// Redraws from the merged metrics. Rates are the last complete second of the series
    /// (every worker's events in it), not counters read mid-tick, so they show no false
    /// dips.
    pub fn update(&mut self, agg: &Aggregate, elapsed: Duration) {
        let b = self;
        let (rate_in, rate_out) = agg
            .series()
            .last()
            .map_or((0.0, 0.0), |p| (p.msgs_in, p.msgs_out));
        let p99 = agg
            .p99_us()
            .map_or("-".to_string(), |us| format!("{:.2}ms", us as f64 / 1000.0));
        b.bar.set_position(elapsed.as_secs());
        b.bar.set_message(format!(
            "vus {} conns {} in {:.0}/s out {:.0}/s errors {} p99 {}",
            agg.active_vus(),
            agg.active_connections(),
            rate_in,
            rate_out,
            agg.errors(),
            p99
        ));
    }

    /// Leaves the last line on screen.
    pub fn finish(self) {
        self.bar.finish();
    }
}
