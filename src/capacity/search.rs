//! The search itself, free of I/O: exponential steps from `--from` until a step breaks,
//! then bisection between the last good and the first bad rate until their gap is within
//! `--precision` of the good one.

/// Where the search may go and when it is close enough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// First rate tried, per second.
    pub from: f64,
    /// Highest rate tried, per second.
    pub to: f64,
    /// Largest gap between the good and the bad rate, as a fraction of the good one.
    pub precision: f64,
}

/// How the rates tried came out, once the search is over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Conclusion {
    /// The knee: `sustained` held, `breaking` did not, within the precision.
    Found {
        /// The highest rate that held.
        sustained: f64,
        /// The lowest rate that broke.
        breaking: f64,
    },
    /// Even `--from` broke.
    BelowFrom,
    /// `--to` held: the capacity is at least that.
    AboveTo,
}

/// The state of a search: the best good and bad rates so far, and what to try next.
#[derive(Debug, Clone)]
pub struct Search {
    bounds: Bounds,
    good: Option<f64>,
    bad: Option<f64>,
    next: Option<f64>,
    done: Option<Conclusion>,
}

impl Search {
    /// A search starting at `bounds.from`.
    pub fn new(bounds: Bounds) -> Self {
        Search {
            bounds,
            good: None,
            bad: None,
            next: Some(bounds.from),
            done: None,
        }
    }

    /// The rate to run next; `None` once the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// The highest rate that held so far.
    pub fn good(&self) -> Option<f64> {
        self.good
    }

    /// The lowest rate that broke so far.
    pub fn bad(&self) -> Option<f64> {
        self.bad
    }

    /// The outcome, once [`next_rate`](Self::next_rate) is `None`.
    pub fn conclusion(&self) -> Option<Conclusion> {
        self.done
    }

    /// Records how the step at `rate` came out and picks the next rate.
    pub fn record(&mut self, rate: f64, held: bool) {
        if held {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else {
            self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
        }
        self.next = None;
        self.done = match (self.good, self.bad) {
            (None, Some(_)) => Some(Conclusion::BelowFrom),
            (Some(g), None) if g >= self.bounds.to => Some(Conclusion::AboveTo),
            (Some(g), None) => {
                self.next = Some(round_rate(g * 2.0).min(self.bounds.to));
                None
            }
            (Some(g), Some(b)) => {
                let mid = round_rate((g + b) / 2.0);
                if (b - g) / g <= self.bounds.precision || mid <= g || mid >= b {
                    Some(Conclusion::Found {
                        sustained: g,
                        breaking: b,
                    })
                } else {
                    self.next = Some(mid);
                    None
                }
            }
            (None, None) => None,
        };
    }
}

/// Whole rates above 100/s, two decimals below: readable steps, no false precision.
fn round_rate(r: f64) -> f64 {
    if r >= 100.0 {
        r.round()
    } else {
        (r * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a target that holds every rate up to `capacity`.
    fn search(bounds: Bounds, capacity: f64) -> (Conclusion, Vec<f64>) {
        let mut s = Search::new(bounds);
        let mut tried = Vec::new();
        while let Some(r) = s.next_rate() {
            assert!(tried.len() < 64, "the search does not end: {tried:?}");
            tried.push(r);
            s.record(r, r <= capacity);
        }
        (s.conclusion().unwrap(), tried)
    }

    #[test]
    fn doubles_then_bisects_to_the_precision() {
        let b = Bounds {
            from: 100.0,
            to: 1e6,
            precision: 0.05,
        };
        let (c, tried) = search(b, 41_200.0);
        let Conclusion::Found {
            sustained,
            breaking,
        } = c
        else {
            panic!("{c:?}")
        };
        assert!(sustained <= 41_200.0 && breaking > 41_200.0, "{c:?}");
        assert!((breaking - sustained) / sustained <= 0.05, "{c:?}");
        assert_eq!(&tried[..3], &[100.0, 200.0, 400.0]);
        // 100 → 51,200 is 10 doublings, then 4 or 5 halvings of the last gap.
        assert!(tried.len() <= 16, "{tried:?}");
    }

    #[test]
    fn even_from_breaking_and_to_holding_end_at_once() {
        let b = Bounds {
            from: 100.0,
            to: 1_000.0,
            precision: 0.05,
        };
        assert_eq!(search(b, 50.0), (Conclusion::BelowFrom, vec![100.0]));
        let (c, tried) = search(b, 5_000.0);
        assert_eq!(c, Conclusion::AboveTo);
        assert_eq!(tried, vec![100.0, 200.0, 400.0, 800.0, 1_000.0]);
    }

    #[test]
    fn small_rates_keep_two_decimals_and_rounding_cannot_loop() {
        let b = Bounds {
            from: 1.0,
            to: 1e6,
            precision: 0.0,
        };
        let (c, tried) = search(b, 150.0);
        assert!(
            matches!(c, Conclusion::Found { sustained, breaking } if sustained == 150.0 && breaking == 151.0),
            "{c:?} {tried:?}"
        );
        assert_eq!(&tried[..3], &[1.0, 2.0, 4.0]);
    }
}
