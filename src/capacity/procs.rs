//! `squall capacity --procs N`: every step run by N shard processes of this executable on
//! this machine (`squall capacity … --procs-worker I/N`), each offering its share of the
//! step's rate as `squall run --procs` shares a run out (arrivals dealt round-robin, VUs
//! shared out), each from its own source address towards a loopback target. The processes
//! live for the whole search and take their steps on stdin (`step K RATE`, `stop`); each
//! writes what its step measured ([`Measured`]: the whole step and its figures at the
//! marks, plus every tick's latency histogram) and says `done K`. The search adds them up
//! ([`add`]: histograms added, counters summed, ticks lined up) and judges the sum exactly
//! as it judges one process's step.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::step::Measured;
use super::{CapacityArgs, CapacityError};
use crate::report::{self, SeriesPoint, Summary};
use crate::swarm::Control;

/// The file a shard process writes for step `k`, in its folder.
pub fn step_file(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("step-{k}.json"))
}

/// What a shard process's watcher threads report.
enum Event {
    /// A line it wrote on stdout (`ready`, `done K`).
    Said(u32, String),
    /// It ended: how.
    Ended(u32, String),
}

/// Where a Ctrl-C comes from, and what hears the time since the step began.
type Steering<'a> = (
    &'a mut mpsc::UnboundedReceiver<Control>,
    &'a mut dyn FnMut(Duration),
);

/// The shard processes of a search.
pub struct Pool {
    n: u32,
    stdin: Vec<ChildStdin>,
    events: mpsc::UnboundedReceiver<Event>,
    /// `<out>/shards`: process `i` writes into `i/`.
    dir: PathBuf,
}

impl Pool {
    /// Starts `n` shard processes for `args` (the target and seed already resolved), and
    /// waits until each has loaded the scenario and is ready for its first step.
    pub async fn start(
        args: &CapacityArgs,
        n: u32,
        out: &Path,
        threads: usize,
    ) -> Result<Pool, CapacityError> {
        let dir = out.join("shards");
        let (tx, events) = mpsc::unbounded_channel();
        let mut stdin = Vec::with_capacity(n as usize);
        for i in 1..=n {
            let cmd = command(args, (i, n), &dir.join(i.to_string()), threads);
            let mut child = spawn(cmd).map_err(|e| {
                CapacityError::Procs(format!("cannot start shard process {i}/{n}: {e}"))
            })?;
            stdin.push(child.stdin.take().expect("piped"));
            watch(child, i, n, tx.clone());
        }
        let mut pool = Pool {
            n,
            stdin,
            events,
            dir,
        };
        pool.wait_for(|line| line == "ready", None).await?;
        Ok(pool)
    }

    /// Runs step `k` at `rate` (the total) on every process and returns what each
    /// measured, in shard order. A Ctrl-C on `control` is passed on as `stop`; `tick` is
    /// called now and then with the time since the step began.
    pub async fn step(
        &mut self,
        k: usize,
        rate: f64,
        control: &mut mpsc::UnboundedReceiver<Control>,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<Vec<Measured>, CapacityError> {
        self.tell(&format!("step {k} {rate}"))?;
        let done = format!("done {k}");
        self.wait_for(|line| line == done, Some((control, tick)))
            .await?;
        (1..=self.n)
            .map(|i| {
                let file = step_file(&self.dir.join(i.to_string()), k);
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CapacityError::Procs(format!("{}: {e}", file.display())))?;
                serde_json::from_str(&text).map_err(|e| {
                    CapacityError::Procs(format!("{}: not a step's figures: {e}", file.display()))
                })
            })
            .collect()
    }

    /// Writes `line` to every process.
    fn tell(&mut self, line: &str) -> Result<(), CapacityError> {
        let n = self.n;
        for (i, w) in (1..=n).zip(&mut self.stdin) {
            writeln!(w, "{line}")
                .and_then(|()| w.flush())
                .map_err(|e| {
                    CapacityError::Procs(format!("shard process {i}/{n} does not listen: {e}"))
                })?;
        }
        Ok(())
    }

    /// Waits until every process has said a line `want` accepts; an ended process is an
    /// error. With `control`, a Ctrl-C is passed on as `stop` and the tick is fed.
    async fn wait_for(
        &mut self,
        want: impl Fn(&str) -> bool,
        mut control: Option<Steering<'_>>,
    ) -> Result<(), CapacityError> {
        let mut said = vec![false; self.n as usize];
        let began = Instant::now();
        let mut every = tokio::time::interval(Duration::from_millis(250));
        while !said.iter().all(|&s| s) {
            let ctl = async {
                match control.as_mut() {
                    Some((c, _)) => c.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(Event::Said(i, line)) if want(&line) => said[i as usize - 1] = true,
                    Some(Event::Said(..)) => {}
                    Some(Event::Ended(i, how)) => {
                        return Err(CapacityError::Procs(format!(
                            "shard process {i}/{} {how}: its messages are above", self.n
                        )))
                    }
                    None => return Err(CapacityError::Procs("every shard process ended".into())),
                },
                Some(Control::Interrupt) = ctl => self.tell("stop")?,
                _ = every.tick() => if let Some((_, tick)) = control.as_mut() {
                    tick(began.elapsed());
                },
            }
        }
        Ok(())
    }
}

/// The command line of shard process `i` of `n`.
fn command(args: &CapacityArgs, (i, n): (u32, u32), out: &Path, threads: usize) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("squall"));
    let r = &args.run;
    let mut cmd = Command::new(exe);
    cmd.arg("capacity").arg(&r.scenario);
    cmd.args(["--procs-worker", &format!("{i}/{n}")]);
    cmd.arg("--out").arg(out);
    cmd.args(["--quiet", "--no-report", "--threads", &threads.to_string()]);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    cmd.args(["--step", &ms(args.step), "--warmup", &ms(args.warmup)]);
    for s in &args.slo {
        cmd.args(["--slo", s]);
    }
    if let Some(t) = &r.target {
        cmd.args(["--target", t]);
    }
    if let Some(s) = r.seed {
        cmd.args(["--seed", &s.to_string()]);
    }
    if let Some(p) = &r.schemas {
        cmd.arg("--schemas").arg(p);
    }
    if r.no_check {
        cmd.arg("--no-check");
    }
    cmd
}

/// Starts a shard process, its steps on stdin, in a process group of its own (a Ctrl-C at
/// the terminal reaches the search only, which passes it on), ended if the search dies.
fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::run::procs::spawn_grouped(cmd)
}

/// Threads that pass on the process's stdout lines, print its stderr lines naming it, and
/// report how it ended.
fn watch(mut child: Child, i: u32, n: u32, tx: mpsc::UnboundedSender<Event>) {
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[shard {i}/{n}] {line}");
            }
        });
    }
    std::thread::spawn(move || {
        if let Some(out) = child.stdout.take() {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(Event::Said(i, line));
            }
        }
        let how = match child.wait() {
            Ok(s) => format!("ended ({s})"),
            Err(e) => format!("ended, how is unknown ({e})"),
        };
        let _ = tx.send(Event::Ended(i, how));
    });
}

/// The shards' figures of one step added up: the whole step and each mark with
/// [`crate::merge::add_up`] (a mark only when every shard reached it), the series tick by
/// tick (the processes started their step together, on the same tick length), each tick's
/// percentiles from the shards' tick histograms added.
pub fn add(parts: Vec<Measured>) -> Measured {
    let n = parts.len();
    let name = |i: usize| format!("shard {}/{n}", i + 1);
    let named = |pick: fn(&Measured) -> Option<&report::Results>| -> Option<Vec<(String, report::Results)>> {
        parts
            .iter()
            .enumerate()
            .map(|(i, m)| pick(m).map(|r| (name(i), r.clone())))
            .collect()
    };
    let whole = named(|m| Some(&m.whole)).and_then(crate::merge::add_up);
    let at_warmup = named(|m| m.at_warmup.as_ref()).and_then(crate::merge::add_up);
    let at_middle = named(|m| m.at_middle.as_ref()).and_then(crate::merge::add_up);
    let mut whole = whole.expect("at least one shard");
    whole.series = series(&parts);
    Measured {
        whole,
        at_warmup,
        at_middle,
        ticks: Vec::new(),
    }
}

/// Tick `k` of every shard in one point: counts, rates and gauges added, CPU added, the
/// worst lateness, percentiles from the added tick histograms.
fn series(parts: &[Measured]) -> Vec<SeriesPoint> {
    let len = parts
        .iter()
        .map(|m| m.whole.series.len())
        .max()
        .unwrap_or(0);
    (0..len)
        .map(|k| {
            let mut p = SeriesPoint::default();
            let mut all = crate::metrics::new_histogram();
            for m in parts {
                if let Some(h) = m.ticks.get(k).and_then(|s| Summary::histogram(s).ok()) {
                    let _ = all.add(&h);
                }
                let Some(x) = m.whole.series.get(k) else {
                    continue;
                };
                p.t = p.t.max(x.t);
                p.span_s = p.span_s.max(x.span_s);
                // The same tick of each process: its rates add too.
                p.msgs_in += x.msgs_in;
                p.msgs_out += x.msgs_out;
                p.bytes_in += x.bytes_in;
                p.bytes_out += x.bytes_out;
                p.add_counts(x);
            }
            let q = |q| (!all.is_empty()).then(|| all.value_at_quantile(q));
            (p.p50_us, p.p99_us) = (q(0.5), q(0.99));
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::knob::Knob;
    use crate::capacity::step::{conclude, StepConfig};
    use crate::metrics::{new_histogram, Aggregate};
    use crate::report::capacity::Verdict;
    use crate::report::{Results, Status};
    use crate::run::RunArgs;
    use crate::scenario::plan::Plan;

    const TICK: f64 = 0.25;
    /// A 4 s step: 1 s of warm-up, then two halves of 1.5 s.
    const TICKS: usize = 16;

    fn plan() -> Plan {
        crate::capacity::test_plan(crate::capacity::PING)
    }

    /// One process's figures after `upto` ticks of `samples` (per tick, µs), with
    /// `timeouts` timeouts at tick 2 (in the warm-up).
    fn results(samples: &[Vec<u64>], upto: usize, timeouts: u64) -> Results {
        let mut h = new_histogram();
        let mut r = Aggregate::new(vec!["rtt".into()]).results(
            crate::results::test_meta(10.0, upto as f64 * TICK, 1),
            Status::Running,
        );
        for (k, tick) in samples.iter().take(upto).enumerate() {
            let mut th = new_histogram();
            for &v in tick {
                h.record(v).unwrap();
                th.record(v).unwrap();
            }
            let mut p = SeriesPoint {
                t: (k + 1) as f64 * TICK,
                span_s: TICK,
                samples: tick.len() as u64,
                frames_in: tick.len() as u64,
                frames_out: tick.len() as u64,
                ..SeriesPoint::default()
            };
            (p.p50_us, p.p99_us) = (
                Some(th.value_at_quantile(0.5)),
                Some(th.value_at_quantile(0.99)),
            );
            r.series.push(p);
        }
        let n = h.len();
        r.metrics.get_mut("rtt").unwrap().latency = Summary::from_histogram(&h);
        let c = &mut r.counters;
        (c.frames_in, c.frames_out, c.ops) = (n, n, n);
        c.requests.sent = n + if upto > 2 { timeouts } else { 0 };
        c.requests.replies = n;
        c.requests.timeouts = if upto > 2 { timeouts } else { 0 };
        c.connections.opened = n;
        r.load.iterations_ok = n;
        r
    }

    /// What a step measured: at the end, at 1 s and at 2.5 s, and each tick's histogram.
    fn measured(samples: &[Vec<u64>], timeouts: u64) -> Measured {
        let mut whole = results(samples, TICKS, timeouts);
        whole.status = Status::Complete;
        Measured {
            whole,
            at_warmup: Some(results(samples, 4, timeouts)),
            at_middle: Some(results(samples, 10, timeouts)),
            ticks: samples
                .iter()
                .map(|t| {
                    let mut h = new_histogram();
                    t.iter().for_each(|&v| h.record(v).unwrap());
                    Summary::from_histogram(&h)
                })
                .collect(),
        }
    }

    /// `per_tick(k, i)`: the latency of sample `i` of tick `k` (40 a tick, 160/s).
    fn ticks(per_tick: impl Fn(usize, u64) -> u64) -> Vec<Vec<u64>> {
        (0..TICKS)
            .map(|k| (0..40).map(|i| per_tick(k, i)).collect())
            .collect()
    }

    /// Every other sample to each of two shards.
    fn split(all: &[Vec<u64>]) -> [Vec<Vec<u64>>; 2] {
        let half = |odd: usize| {
            all.iter()
                .map(|t| t.iter().skip(odd).step_by(2).copied().collect())
                .collect()
        };
        [half(0), half(1)]
    }

    fn judge(plan: &Plan, m: Measured) -> crate::report::capacity::Step {
        let slo =
            crate::capacity::slo::parse_all(&["latency.rtt.p99 < 50ms".into()], plan).unwrap();
        let args = RunArgs::default();
        let cfg = StepConfig {
            rate: 160.0,
            warmup: Duration::from_secs(1),
            step: Duration::from_secs(4),
            opts: Default::default(),
            slo: &slo,
            slo_us: Some(50_000.0),
            args: &args,
            knob: Knob::Arrivals,
        };
        conclude(plan, &cfg, m, 0.0).step
    }

    #[test]
    fn two_shards_added_up_are_judged_as_one_process() {
        let plan = plan();
        // A slow warm-up (left out), then: steady; a queue growing through the window
        // while under the SLO; steady but with timeouts in the warm-up only.
        let cases = [
            (
                ticks(|k, i| if k < 4 { 90_000 } else { 2_000 + i * 50 }),
                0,
                Verdict::Good,
            ),
            (
                ticks(|k, i| {
                    if k < 4 {
                        90_000
                    } else {
                        1_000 + k as u64 * 2_500 + i
                    }
                }),
                0,
                Verdict::Bad,
            ),
            (ticks(|_, i| 3_000 + i * 10), 5, Verdict::Good),
        ];
        for (all, timeouts, want) in cases {
            let one = judge(&plan, measured(&all, timeouts));
            let [a, b] = split(&all);
            let shards = vec![
                measured(&a, timeouts / 2),
                measured(&b, timeouts - timeouts / 2),
            ];
            let two = judge(&plan, add(shards));
            assert_eq!(one.verdict, want, "{one:#?}");
            assert_eq!(two.verdict, one.verdict, "{two:#?}");
            assert_eq!(two.why, one.why);
            // The measured window's percentiles from added histograms: the same, not an
            // average of the shards'.
            assert_eq!(two.metrics, one.metrics);
            assert_eq!(two.metrics["rtt"].count, 12 * 40);
            assert_eq!(two.trend, one.trend);
            assert_eq!(two.achieved_rate, one.achieved_rate);
            assert_eq!(two.requests, one.requests);
            assert_eq!(two.slo, one.slo);
            // Each tick's percentiles too, from the shards' tick histograms added.
            let p99: Vec<_> = two.series.iter().map(|p| p.p99_us).collect();
            let want: Vec<_> = one.series.iter().map(|p| p.p99_us).collect();
            assert_eq!(p99, want);
        }
    }

    #[test]
    fn generator_saturation_in_one_shard_stops_the_search() {
        let plan = plan();
        let all = ticks(|_, i| 3_000 + i * 10);
        let [a, b] = split(&all);
        let mut second = measured(&b, 0);
        second.whole.health.generator_saturated = true;
        second.whole.health.reasons = vec!["CPU 98% of its cores".into()];
        let step = judge(&plan, add(vec![measured(&a, 0), second]));
        assert_eq!(step.verdict, Verdict::GeneratorLimited, "{step:#?}");
        assert!(step.why[0].contains("shard 2/2: CPU 98%"), "{:?}", step.why);
    }
}
