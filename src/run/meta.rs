//! What results say about the run itself: its metadata ([`meta`]), the shard and interval
//! log it is stamped with, and the document written before any load or instead of it.

use std::time::SystemTime;

use super::RunArgs;
use crate::metrics::interval_log;
use crate::metrics::Aggregate;
use crate::report::{self, Phase, Results, RunMeta, Status};
use crate::scenario::plan::{LoadModel, Plan, Stage};
use crate::swarm::RunOptions;

/// The results document before any load: status `running`, nothing measured.
pub(super) fn starting(plan: &Plan, args: &RunArgs) -> Results {
    let threads = args
        .threads
        .unwrap_or_else(|| RunOptions::default().threads);
    let mut r = Aggregate::new(plan.metrics.clone()).results(
        meta(plan, args, SystemTime::now(), threads),
        Status::Running,
    );
    stamp(&mut r, args, false);
    r
}

/// Marks results with the shard they are and the interval log beside them, if any.
pub(super) fn stamp(r: &mut Results, args: &RunArgs, log: bool) {
    r.shard = args.shard.map(|s| report::ShardInfo {
        index: s.index,
        count: s.count,
        start_at: args
            .start_at
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
    });
    r.interval_log = log.then(|| interval_log::FILE_NAME.to_string());
}

/// The results of a run that ended before any load, with its status and why.
pub(super) fn ended_early(plan: &Plan, args: &RunArgs, status: Status, why: String) -> Results {
    let mut results = starting(plan, args);
    results.status = status;
    results.status_reason = Some(why);
    results.meta.ended_at = Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    results
}

/// The run's metadata: the scenario, the target, the seed, the threads, when it started,
/// the phases of its load, the host.
pub(crate) fn meta(plan: &Plan, args: &RunArgs, started: SystemTime, threads: usize) -> RunMeta {
    RunMeta {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_name: plan.name.clone(),
        scenario_file: args.scenario.display().to_string(),
        scenario_sha256: plan.source_sha256.clone(),
        protocol: plan.protocol.clone(),
        conformance: (plan.protocol.is_some() && !args.no_check)
            .then(|| args.conformance.as_str().to_string()),
        target: plan.target.clone(),
        seed: plan.seed,
        threads,
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        ended_at: None,
        duration_s: 0.0,
        planned_duration_s: plan.load.duration().as_secs_f64(),
        load_model: match plan.load.model {
            LoadModel::Closed => "closed".into(),
            LoadModel::Open { .. } => "open".into(),
        },
        host: hostname(),
        phases: phases(&plan.load.stages),
    }
}

/// The stages as spans of time, for the report's shading.
fn phases(stages: &[Stage]) -> Vec<Phase> {
    let (mut start, mut from) = (0.0, 0.0);
    stages
        .iter()
        .map(|s| {
            let end = start + s.duration.as_secs_f64();
            let p = Phase {
                start_s: start,
                end_s: end,
                from,
                to: s.target,
            };
            (start, from) = (end, s.target);
            p
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
