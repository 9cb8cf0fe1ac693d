//! One shard process of `squall capacity --procs N` (`--procs-worker I/N`, started by the
//! search, not by people): loads the scenario once, says `ready`, then runs each step it is
//! told on stdin (`step K RATE`: its share of RATE, `stop`: Ctrl-C) and writes what it
//! measured to `<out>/step-K.json` before saying `done K`. It ends when stdin closes.

use std::io::{BufRead, Write};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::procs::step_file;
use super::step::{self, StepConfig};
use super::{step_options, CapacityArgs, CapacityError, Prepared};
use crate::report::ShardInfo;
use crate::run::procs::sources_per_process;
use crate::run::shard::Shard;
use crate::swarm::source::Sources;
use crate::swarm::Control;

/// Serves steps until stdin closes; the exit code (0, or the setup error's).
pub fn serve(args: CapacityArgs, shard: Shard) -> u8 {
    match serve_steps(&args, shard) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("squall: {e}");
            e.exit_code()
        }
    }
}

fn serve_steps(args: &CapacityArgs, shard: Shard) -> Result<(), CapacityError> {
    let p = Prepared::new(args)?;
    let dir = args.run.out.clone().ok_or_else(|| {
        CapacityError::Usage("--procs-worker writes into --out: give it one".into())
    })?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| CapacityError::Procs(format!("{}: {e}", dir.display())))?;
    crate::run::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CapacityError::Procs(format!("cannot start the runtime: {e}")))?;
    let sources =
        sources_per_process(&[], &p.plan.target, shard.count).swap_remove(shard.index as usize - 1);
    let mut opts = step_options(p.threads, p.profile.clone());
    opts.shard = shard;
    opts.sources = (!sources.is_empty()).then(|| Arc::new(Sources::new(sources)));
    let (steps, mut control) = listen();
    println!("ready");
    let _ = std::io::stdout().flush();
    for (k, rate) in steps {
        // A stop that came after the last step ended is not for this one.
        while control.try_recv().is_ok() {}
        let cfg = StepConfig {
            rate,
            warmup: args.warmup,
            step: args.step,
            opts: opts.clone(),
            slo: &p.slo,
            slo_us: None,
            args: &p.run_args,
            knob: p.knob,
        };
        let plan = Arc::new(p.knob.plan(&p.plan, rate, args.step));
        let mut m = rt.block_on(step::measure(
            plan,
            &cfg,
            &mut control,
            &mut |_, _| {},
            true,
        ));
        label(&mut m, shard);
        write(&step_file(&dir, k), &m)?;
        println!("done {k}");
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// Marks every results document of `m` as this shard's.
fn label(m: &mut step::Measured, shard: Shard) {
    let info = Some(ShardInfo {
        index: shard.index,
        count: shard.count,
        start_at: None,
    });
    for r in [
        Some(&mut m.whole),
        m.at_warmup.as_mut(),
        m.at_middle.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        r.shard = info.clone();
    }
}

/// Writes `m` whole or not at all (a temporary file renamed into place).
fn write(path: &std::path::Path, m: &step::Measured) -> Result<(), CapacityError> {
    let fail = |e: String| CapacityError::Procs(format!("{}: {e}", path.display()));
    let text = serde_json::to_string(m).map_err(|e| fail(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// Reads stdin on a thread of its own: the steps asked for, in order (ending when stdin
/// closes), and each `stop` as a Ctrl-C.
fn listen() -> (
    std::sync::mpsc::Receiver<(usize, f64)>,
    mpsc::UnboundedReceiver<Control>,
) {
    let (steps_tx, steps) = std::sync::mpsc::channel();
    let (control_tx, control) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            match parse(&line) {
                Some(Command::Step(k, rate)) => {
                    let _ = steps_tx.send((k, rate));
                }
                Some(Command::Stop) => {
                    let _ = control_tx.send(Control::Interrupt);
                }
                None => eprintln!("squall: --procs-worker: '{line}' is not a command"),
            }
        }
    });
    (steps, control)
}

#[derive(Debug, PartialEq)]
enum Command {
    Step(usize, f64),
    Stop,
}

fn parse(line: &str) -> Option<Command> {
    let mut w = line.split_whitespace();
    match (w.next()?, w.next(), w.next(), w.next()) {
        ("stop", None, None, None) => Some(Command::Stop),
        ("step", Some(k), Some(rate), None) => {
            let rate: f64 = rate
                .parse()
                .ok()
                .filter(|r: &f64| *r > 0.0 && r.is_finite())?;
            Some(Command::Step(k.parse().ok()?, rate))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_nothing_else_does() {
        assert_eq!(parse("step 3 250.5"), Some(Command::Step(3, 250.5)));
        assert_eq!(parse("stop"), Some(Command::Stop));
        for bad in [
            "",
            "step",
            "step 1",
            "step x 1",
            "step 1 -5",
            "step 1 NaN",
            "stop now",
            "go",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
