//! A step's figures without its warm-up: the run's totals minus the totals at the first
//! tick past `--warmup` (HdrHistograms subtract exactly), and the series points after it.
//!
//! Latency, service and connect histograms, request, error, frame and connection counts
//! are the measured window's. Violations, delivery and uploads stay the whole step's.

use std::time::Duration;

use crate::report::{Counters, Results, SeriesPoint, Summary};

/// The series points that lie in the measured window, `warmup` to `warmup + measured`.
pub fn window(series: &[SeriesPoint], warmup: Duration, measured: Duration) -> Vec<&SeriesPoint> {
    let (from, to) = (warmup.as_secs_f64(), (warmup + measured).as_secs_f64());
    // Ticks are exact multiples of the tick length: a small slack absorbs float error.
    series
        .iter()
        .filter(|p| p.t - p.span_s >= from - 1e-6 && p.t <= to + 1e-6)
        .collect()
}

/// `end` minus `at_warmup` (when the warm-up was reached), over `measured`.
pub fn steady(end: &Results, at_warmup: Option<&Results>, measured: Duration) -> Results {
    let mut r = end.clone();
    r.meta.duration_s = measured.as_secs_f64();
    let Some(w) = at_warmup else {
        return r;
    };
    for (name, m) in r.metrics.iter_mut() {
        if let Some(before) = w.metrics.get(name) {
            m.latency = minus(&m.latency, &before.latency);
            m.service = minus(&m.service, &before.service);
        }
    }
    r.connect = minus(&end.connect, &w.connect);
    subtract_counters(&mut r.counters, &w.counters);
    r
}

/// The samples of `a` not in `b` (`b` was taken from the same histogram earlier); `a`
/// itself when either does not decode.
fn minus(a: &Summary, b: &Summary) -> Summary {
    let (Ok(mut ha), Ok(hb)) = (a.histogram(), b.histogram()) else {
        return a.clone();
    };
    match ha.subtract(&hb) {
        Ok(()) => Summary::from_histogram(&ha),
        Err(_) => a.clone(),
    }
}

fn subtract_counters(c: &mut Counters, w: &Counters) {
    let less = |a: &mut u64, b: u64| *a = a.saturating_sub(b);
    less(&mut c.frames_in, w.frames_in);
    less(&mut c.frames_out, w.frames_out);
    less(&mut c.bytes_in, w.bytes_in);
    less(&mut c.bytes_out, w.bytes_out);
    less(&mut c.errors, w.errors);
    less(&mut c.ops, w.ops);
    less(&mut c.missed, w.missed);
    less(&mut c.requests.sent, w.requests.sent);
    less(&mut c.requests.replies, w.requests.replies);
    less(&mut c.requests.timeouts, w.requests.timeouts);
    // `unanswered` is counted at the stop only: it belongs to the window whole.
    less(&mut c.connections.opened, w.connections.opened);
    less(&mut c.connections.failed, w.connections.failed);
    less(&mut c.connections.closed, w.connections.closed);
    for (kind, n) in c.errors_by_kind.iter_mut() {
        less(n, w.errors_by_kind.get(kind).copied().unwrap_or(0));
    }
    c.errors_by_kind.retain(|_, n| *n > 0);
    for (cause, n) in c.connections.failed_by_cause.iter_mut() {
        less(
            n,
            w.connections
                .failed_by_cause
                .get(cause)
                .copied()
                .unwrap_or(0),
        );
    }
    c.connections.failed_by_cause.retain(|_, n| *n > 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    fn summary(values: &[u64]) -> Summary {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        Summary::from_histogram(&h)
    }

    #[test]
    fn the_warm_up_samples_are_taken_out_exactly() {
        // Warm-up: slow samples (a cold start); then fast ones.
        let warm = summary(&[90_000; 10]);
        let mut all = vec![90_000; 10];
        all.extend([1_000; 90]);
        let end = summary(&all);
        let d = minus(&end, &warm);
        assert_eq!(d.count, 90);
        assert!(d.p99 < 1_100, "{d:?}");
        assert!(end.p99 > 80_000);
    }

    #[test]
    fn counters_subtract_and_empty_kinds_go() {
        let mut c = Counters {
            errors: 5,
            ..Counters::default()
        };
        c.errors_by_kind.insert("timeout".into(), 2);
        c.errors_by_kind.insert("http_429".into(), 3);
        c.requests.sent = 100;
        let mut w = Counters {
            errors: 2,
            ..Counters::default()
        };
        w.errors_by_kind.insert("timeout".into(), 2);
        w.requests.sent = 40;
        subtract_counters(&mut c, &w);
        assert_eq!(c.errors, 3);
        assert_eq!(c.requests.sent, 60);
        assert_eq!(c.errors_by_kind.len(), 1);
        assert_eq!(c.errors_by_kind["http_429"], 3);
    }

    #[test]
    fn the_window_holds_the_ticks_after_the_warm_up() {
        let point = |t: f64| SeriesPoint {
            t,
            span_s: 0.25,
            ..serde_json::from_value(serde_json::json!({
                "t": 0, "msgs_in": 0, "msgs_out": 0, "bytes_in": 0, "bytes_out": 0,
                "active_connections": 0, "active_vus": 0, "errors": 0, "violations": 0,
                "p50_us": null, "p99_us": null, "cpu": null
            }))
            .unwrap()
        };
        let series: Vec<SeriesPoint> = (1..=14).map(|i| point(i as f64 * 0.25)).collect();
        let w = window(
            &series,
            Duration::from_millis(500),
            Duration::from_millis(2000),
        );
        let ts: Vec<f64> = w.iter().map(|p| p.t).collect();
        assert_eq!(ts, vec![0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]);
    }
}
