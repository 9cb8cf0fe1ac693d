//! squall: load-test and conformance-check WebSocket APIs from YAML scenarios.
//!
//! Data flows one way: [`scenario`] parses and lowers a YAML file into a [`scenario::Plan`];
//! [`swarm`] plays it with VUs on worker threads; [`metrics`] records per worker and merges
//! every tick; [`report`] turns the merged figures into `results.json` and a summary;
//! [`check`] judges them against the thresholds. [`run`] strings these together for
//! `squall run`.

pub mod asyncapi;
pub mod capacity;
pub mod check;
pub mod merge;
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod smoke;
pub mod swarm;

#[cfg(test)]
mod layers_tests;
