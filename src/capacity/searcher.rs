//! One search, step by step: each rate the [`Search`] asks for is run (in this process or
//! by the `--procs` pool), judged, recorded, and the results so far written, until the
//! search has its answer.

use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::knob::Knob;
use super::live::View;
use super::search::{Bounds, Conclusion, Search};
use super::{procs, slo, step, CapacityArgs, CapacityError};
use crate::metrics::Aggregate;
use crate::report::capacity::{Capacity, Outcome, Settings, Step, Verdict};
use crate::report::fmt_rate;
use crate::report::{Results, ResultsWriter, Status};
use crate::run::{self, RunArgs};
use crate::scenario::plan::Plan;
use crate::scenario::thresholds::Threshold;
use crate::swarm::{Control, RunOptions};

/// Everything a search holds while it runs.
pub(super) struct Searcher<'a> {
    pub(super) plan: &'a Plan,
    pub(super) args: &'a CapacityArgs,
    pub(super) run_args: &'a RunArgs,
    pub(super) slo: &'a [Threshold],
    pub(super) knob: Knob,
    pub(super) opts: RunOptions,
    pub(super) writer: &'a ResultsWriter,
}

impl Searcher<'_> {
    pub(super) async fn run(
        &self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut pool: Option<&mut procs::Pool>,
    ) -> Results {
        let a = self.args;
        let mut search = Search::new(Bounds {
            from: a.from,
            to: a.to,
            precision: a.precision,
        });
        let metric = slo::plotted_metric(self.slo, self.plan);
        let mut view = View::new(a.run.progress, a.run.quiet, a.step, metric.clone());
        let t0 = Instant::now();
        let mut steps: Vec<Step> = Vec::new();
        let (mut best, mut last): (Option<Results>, Option<Results>) = (None, None);
        let mut stopped = None;
        while let Some(rate) = search.next_rate() {
            view.start(steps.len() + 1, rate);
            let at = t0.elapsed().as_secs_f64();
            let cfg = self.config(rate);
            let k = steps.len() + 1;
            let ran = self
                .step(&cfg, (k, at), &mut control, pool.as_deref_mut(), &mut view)
                .await;
            view.finish(steps.len() + 1, &ran.step);
            match ran.step.verdict {
                Verdict::Good => search.record(rate, true),
                Verdict::Bad => search.record(rate, false),
                Verdict::GeneratorLimited => stopped = Some(Outcome::GeneratorLimited),
                Verdict::TargetFailed => stopped = Some(Outcome::TargetFailed),
                Verdict::Interrupted => stopped = Some(Outcome::Interrupted),
            }
            let is_best = ran.step.verdict == Verdict::Good && search.good() == Some(rate);
            steps.push(ran.step);
            if is_best {
                best = Some(ran.results);
            } else {
                last = Some(ran.results);
            }
            let outcome = stopped.or_else(|| search.conclusion().map(outcome_of));
            let mut partial = pick(&best, &last).clone();
            partial.capacity = Some(self.capacity(outcome, &search, &steps, &metric));
            if outcome.is_some() {
                return partial;
            }
            partial.status = Status::Running;
            if let Err(e) = self.writer.write(&partial) {
                eprintln!("squall: {e}");
            }
        }
        unreachable!("a search ends with an outcome")
    }

    /// What the step at `rate` runs with.
    fn config(&self, rate: f64) -> step::StepConfig<'_> {
        step::StepConfig {
            rate,
            warmup: self.args.warmup,
            step: self.args.step,
            opts: self.opts.clone(),
            slo: self.slo,
            slo_us: slo::tightest_latency_us(self.slo),
            args: self.run_args,
            knob: self.knob,
        }
    }

    /// Runs step `k`, which starts `at` seconds into the search, in this process or by the
    /// `--procs` pool.
    async fn step(
        &self,
        cfg: &step::StepConfig<'_>,
        (k, at): (usize, f64),
        control: &mut mpsc::UnboundedReceiver<Control>,
        pool: Option<&mut procs::Pool>,
        view: &mut View,
    ) -> step::Ran {
        let Some(pool) = pool else {
            return step::run(self.plan, cfg, at, control, &mut |agg, el| {
                view.tick(agg, el)
            })
            .await;
        };
        let mut tick = |el| view.elapsed(el);
        match pool.step(k, cfg.rate, control, &mut tick).await {
            Ok(parts) => {
                let plan = self.knob.plan(self.plan, cfg.rate, cfg.step);
                step::conclude(&plan, cfg, procs::add(parts), at)
            }
            Err(e) => self.failed_step(cfg, at, e),
        }
    }

    /// A step that did not take place because a shard process failed: aborted, naming it.
    fn failed_step(&self, cfg: &step::StepConfig<'_>, at: f64, e: CapacityError) -> step::Ran {
        let plan = self.knob.plan(self.plan, cfg.rate, cfg.step);
        let meta = run::meta(&plan, self.run_args, SystemTime::now(), self.opts.threads);
        let mut whole = Aggregate::new(plan.metrics.clone()).results(meta, Status::Aborted);
        whole.status_reason = Some(format!("not the target: squall's {e}"));
        let m = step::Measured {
            whole,
            at_warmup: None,
            at_middle: None,
            ticks: Vec::new(),
        };
        step::conclude(&plan, cfg, m, at)
    }

    fn capacity(
        &self,
        outcome: Option<Outcome>,
        search: &Search,
        steps: &[Step],
        metric: &Option<String>,
    ) -> Capacity {
        let a = self.args;
        let outcome = outcome.unwrap_or(Outcome::Interrupted);
        Capacity {
            outcome,
            answer: answer(outcome, search, steps, self.slo, (self.knob, a.procs)),
            sustained_rate: search.good(),
            breaking_rate: search.bad(),
            slo: self.slo.iter().map(|t| t.source.clone()).collect(),
            metric: metric.clone(),
            search: Settings {
                from: a.from,
                to: a.to,
                precision: a.precision,
                step_s: a.step.as_secs_f64(),
                warmup_s: a.warmup.as_secs_f64(),
            },
            steps: steps.to_vec(),
        }
    }
}

fn pick<'r>(best: &'r Option<Results>, last: &'r Option<Results>) -> &'r Results {
    // At least one step has run by the time this is asked.
    best.as_ref().or(last.as_ref()).expect("a step has run")
}

fn outcome_of(c: Conclusion) -> Outcome {
    match c {
        Conclusion::Found { .. } => Outcome::Found,
        Conclusion::BelowFrom => Outcome::BelowFrom,
        Conclusion::AboveTo => Outcome::AboveTo,
    }
}

/// The answer in one line, for people.
fn answer(
    outcome: Outcome,
    search: &Search,
    steps: &[Step],
    slo: &[Threshold],
    (knob, procs): (Knob, Option<u32>),
) -> String {
    let slos = slo
        .iter()
        .map(|t| t.source.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let at = |rate: Option<f64>| steps.iter().rev().find(|s| Some(s.offered_rate) == rate);
    let why = |s: Option<&Step>| s.and_then(|s| s.why.first().cloned()).unwrap_or_default();
    let held = search
        .good()
        .map_or("no rate held".into(), |g| format!("{}/s held", fmt_rate(g)));
    let last = steps.last();
    let last_rate = last.map_or(0.0, |s| s.offered_rate);
    match outcome {
        Outcome::Found => format!(
            "sustains {} with {slos} ({} answered/s); breaks at {}/s ({})",
            knob.total(search.good().unwrap_or(0.0)),
            fmt_rate(at(search.good()).map_or(0.0, |s| s.achieved_rate)),
            fmt_rate(search.bad().unwrap_or(0.0)),
            why(at(search.bad()))
        ),
        Outcome::BelowFrom => format!(
            "breaks already at --from {}/s ({}): lower --from",
            fmt_rate(last_rate),
            why(last)
        ),
        Outcome::AboveTo => format!(
            "sustains at least --to {}/s with {slos}: raise --to to find where it breaks",
            fmt_rate(last_rate)
        ),
        Outcome::GeneratorLimited => format!(
            "capacity is above what this generator can offer: {} — squall itself was the \
             limit at {}/s ({}); {held}",
            more_generator(procs),
            fmt_rate(last_rate),
            why(last)
        ),
        Outcome::TargetFailed => format!(
            "the target failed at {}/s: {}; {held}",
            fmt_rate(last_rate),
            why(last)
        ),
        Outcome::Interrupted => format!("interrupted at {}/s; {held}", fmt_rate(last_rate)),
    }
}

/// What to do when the generator was the limit: more processes, then more machines.
fn more_generator(procs: Option<u32>) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    match procs {
        None => format!(
            "use --procs or shards: search again with --procs N (N processes on this \
             machine, which has {cores} cores)"
        ),
        Some(n) => format!(
            "use more processes or machines: all {n} processes of --procs {n} together \
             could not offer more; raise --procs if this machine's {cores} cores were not \
             all busy, else search from a bigger machine (a search across machines is not \
             built yet)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saturated_generator_is_told_the_flag_it_has() {
        let without = more_generator(None);
        assert!(
            without.starts_with("use --procs or shards: search again with --procs N"),
            "{without}"
        );
        let with = more_generator(Some(2));
        assert!(!with.contains("--procs or shards"), "{with}");
        assert!(with.contains("all 2 processes of --procs 2"), "{with}");
        assert!(with.contains("raise --procs"), "{with}");
    }
}
