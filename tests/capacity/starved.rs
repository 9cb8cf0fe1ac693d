//! A generator starved of CPU (one worker thread asked for 50,000 arrivals a second against
//! a fast target) is reported as the limit: no capacity figure that is really squall's.

use std::time::Duration;

use crate::support::{self, args, shipped};
use squall::capacity::execute;
use squall::report::capacity::Outcome;

#[test]
fn a_starved_generator_is_reported_as_the_limit_not_the_target() {
    let _one_search_at_a_time = support::serial();
    // Far more arrivals than one worker thread can start: squall, not the target, falls
    // behind, and the search must say so instead of giving a number.
    let srv = squall_server::spawn(squall_server::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        events_per_sec: 0.0,
        ..squall_server::Config::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://{}/kite/ws", srv.addr());
    let mut a = args(
        shipped(),
        target,
        dir.path(),
        "latency.rtt.p99 < 200ms",
        50_000.0,
    );
    a.run.threads = Some(1);
    a.run.no_check = true;
    a.step = Duration::from_millis(1500);
    let done = execute(a).unwrap();
    srv.shutdown();
    let c = done.capacity();
    assert_eq!(c.outcome, Outcome::GeneratorLimited, "{c:#?}");
    assert_eq!(done.exit_code(), 3);
    assert!(
        c.answer
            .starts_with("capacity is above what this generator can offer: use --procs or shards"),
        "{}",
        c.answer
    );
    assert_eq!(c.sustained_rate, None);
    assert_eq!(c.breaking_rate, None);
}
