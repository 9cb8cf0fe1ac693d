//! Live progress on a terminal: elapsed/total, VUs, connections, msgs/s, errors, p99 so far.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Aggregate;

/// A one-line progress bar redrawn on every tick.
pub struct Bar {
    bar: ProgressBar,
    last_in: u64,
    last_out: u64,
    last_t: Duration,
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
        Bar {
            bar,
            last_in: 0,
            last_out: 0,
            last_t: Duration::ZERO,
        }
    }

    /// Redraws from the merged metrics.
    pub fn update(&mut self, agg: &Aggregate, elapsed: Duration) {
        let b = self;
        let dt = (elapsed - b.last_t.min(elapsed)).as_secs_f64().max(1e-3);
        let rate_in = (agg.frames_in() - b.last_in.min(agg.frames_in())) as f64 / dt;
        let rate_out = (agg.frames_out() - b.last_out.min(agg.frames_out())) as f64 / dt;
        b.last_in = agg.frames_in();
        b.last_out = agg.frames_out();
        b.last_t = elapsed;
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
