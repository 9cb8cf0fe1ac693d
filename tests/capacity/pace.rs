//! A closed model's `pace` rate searched (scenarios/kite/capacity-pace-reference.yaml: 50
//! connections, the search sets each one's rate): against squall-server's `--capacity N/s`
//! it finds N in all, within ±5 %.

use std::path::Path;

use crate::support::{self, assert_found_near, search_server};

#[test]
fn a_paced_search_finds_the_servers_capacity_within_5_percent() {
    let _one_search_at_a_time = support::serial();
    let n = 240.0;
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/kite/capacity-pace-reference.yaml");
    let (done, _dir) = search_server(scenario, n);
    let c = done.capacity();
    assert_found_near(c, n);
    // The rate is the total over the 50 connections, and the answer says how it is made.
    assert!(c.answer.contains("50 connections ×"), "{}", c.answer);
    let first = &c.steps[0];
    assert!((first.achieved_rate - 80.0).abs() / 80.0 < 0.1, "{first:?}");
}
