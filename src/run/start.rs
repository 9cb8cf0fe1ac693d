//! What comes before the load: the runtime with its signal handlers, the bundled server for
//! `--serve`, the start-up check that the target is reachable (and `--start-at`), the results
//! of a run that ended before its load, the open-file limit.

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::meta::ended_early;
use super::outcome::conclude;
use super::{shard, RunArgs, RunError};
use crate::report::{Results, ResultsWriter, Status};
use crate::scenario::plan::Plan;
use crate::swarm::{self, connect, Control};

/// With `--serve`: the bundled server started on 127.0.0.1 (ephemeral port), and the plan
/// aimed at it.
pub(super) fn serve(
    args: &RunArgs,
    plan: &mut Plan,
) -> Result<Option<squall_server::ServerHandle>, RunError> {
    if !args.serve {
        return Ok(None);
    }
    let cfg = squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        ..squall_server::Config::default()
    };
    let s = squall_server::spawn(cfg).map_err(RunError::Serve)?;
    plan.target = retarget(&plan.target, s.addr());
    Ok(Some(s))
}

/// A current-thread runtime with the SIGINT/SIGTERM handlers installed on it, the
/// receiver of what they forward, and the forwarding task. Called before anything that
/// takes time (the start-up check included): a Ctrl-C from then on ends in a results file,
/// never in a killed process.
pub(crate) fn runtime_with_signals() -> Result<
    (
        tokio::runtime::Runtime,
        mpsc::UnboundedReceiver<Control>,
        tokio::task::JoinHandle<()>,
    ),
    RunError,
> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Unreachable(format!("cannot start the runtime: {e}")))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let signals = {
        let _in_rt = rt.enter();
        tokio::spawn(forward_signals(tx))
    };
    Ok((rt, rx, signals))
}

/// Fail before load: one TCP connection to the target, so an unreachable target is one
/// clear line (exit 3), not a run full of errors.
pub(crate) async fn preflight(plan: &Plan) -> Result<(), RunError> {
    preflight_from(plan, &[]).await
}

/// [`preflight`] from the first of `sources` (`--source-ip`), so an address that cannot be
/// bound fails before load too.
pub(super) async fn preflight_from(
    plan: &Plan,
    sources: &[std::net::IpAddr],
) -> Result<(), RunError> {
    let req = plan
        .target
        .as_str()
        .into_client_request()
        .map_err(|e| RunError::Usage(format!("bad target {}: {e}", plan.target)))?;
    let host = req
        .uri()
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let tls = req.uri().scheme_str() == Some("wss");
    let port = req.uri().port_u16().unwrap_or(if tls { 443 } else { 80 });
    let from = swarm::source::Sources::new(sources.to_vec());
    let opened = connect::tcp_connect_from(&host, port, Some(&from));
    match tokio::time::timeout(plan.connect.timeout, opened).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(RunError::Unreachable(format!("{}: {e}", plan.target))),
        Err(_) => Err(RunError::Unreachable(format!(
            "{}: no TCP connection within {:?}",
            plan.target, plan.connect.timeout
        ))),
    }
}

/// Registers the SIGINT and SIGTERM handlers now, before any traffic, and returns the task
/// that forwards each signal: a handler installed on the task's first poll could miss a signal
/// sent the moment the run starts, which would then kill the process without a results file.
fn forward_signals(
    tx: mpsc::UnboundedSender<Control>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut streams = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok()
    };
    async move {
        loop {
            #[cfg(unix)]
            let got = match streams.as_mut() {
                Some((int, term)) => tokio::select! {
                    r = int.recv() => r.is_some(),
                    r = term.recv() => r.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got || tx.send(Control::Interrupt).is_err() {
                return;
            }
        }
    }
}

/// `ws://anything:port/path` → `ws://<addr>/path` (path `/ws` when the target has none).
pub(super) fn retarget(target: &str, addr: std::net::SocketAddr) -> String {
    let rest = target.split_once("://").map_or("", |(_, r)| r);
    let path = rest.find('/').map_or("/ws", |i| &rest[i..]);
    let path = if path == "/" { "/ws" } else { path };
    format!("ws://{addr}{path}")
}

/// Every VU holds a socket: raise the soft open-file limit to the hard one, and return it.
pub(crate) fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    r.rlim_cur
}

/// Why a run ended before its load.
pub(super) enum Early {
    /// The start-up check failed.
    Failed(RunError),
    /// Ctrl-C or SIGTERM came first; why, for the results.
    Interrupted(&'static str),
}

/// Checks the target and waits for `--start-at`, unless a signal comes first.
pub(super) async fn before_load(
    plan: &Plan,
    args: &RunArgs,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Result<(), Early> {
    tokio::select! {
        checked = preflight_from(plan, &args.source_ips) => checked.map_err(Early::Failed)?,
        Some(Control::Interrupt) = control.recv() => {
            return Err(Early::Interrupted(
                "Ctrl-C or SIGTERM during the start-up check, before any load",
            ));
        }
    }
    if let Some(at) = args.start_at {
        tokio::select! {
            late = shard::wait_until(at) => if let Some(w) = late {
                eprintln!("squall: warning: {w}");
            },
            Some(Control::Interrupt) = control.recv() => {
                return Err(Early::Interrupted(
                    "interrupted (Ctrl-C or SIGTERM) while waiting for --start-at, before any load",
                ));
            }
        }
    }
    Ok(())
}

/// The results of a run that ended before its load, written: the file written before the
/// check must not stay `running`, it says why.
pub(super) fn ended_before_load(
    plan: &Plan,
    args: &RunArgs,
    writer: &ResultsWriter,
    early: Early,
) -> Result<(Results, Option<PathBuf>), RunError> {
    match early {
        Early::Failed(e) => {
            let results = ended_early(plan, args, Status::Aborted, e.to_string());
            if let Err(w) = writer.write(&results) {
                eprintln!("squall: cannot write the results: {w}");
            }
            Err(e)
        }
        Early::Interrupted(why) => {
            let results = ended_early(plan, args, Status::Interrupted, why.into());
            let written = conclude(&results, &plan.name, args, writer);
            Ok((results, written))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retarget_keeps_the_path() {
        let a: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            retarget("ws://127.0.0.1:8080/kite/ws", a),
            "ws://127.0.0.1:4000/kite/ws"
        );
        assert_eq!(retarget("ws://example.com", a), "ws://127.0.0.1:4000/ws");
        assert_eq!(retarget("wss://h:1/", a), "ws://127.0.0.1:4000/ws");
    }
}
