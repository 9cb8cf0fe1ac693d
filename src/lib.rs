//! squall: load-test and conformance-check WebSocket APIs from YAML scenarios.
//!
//! Data flows one way: [`scenario`] parses and lowers a YAML file into a [`scenario::Plan`];
//! [`swarm`] plays it with VUs on worker threads; [`metrics`] records per worker, merges
//! every tick and writes the [`results`] model; [`report`] renders the results (summary,
//! HTML, charts, JUnit); [`check`] judges them against the scenario's thresholds. [`run`]
//! strings these together for `squall run`. Arrows between modules point one way (a test,
//! `layers_tests`, keeps it so). Each frame passes through one door per direction,
//! [`protocol::checker::Checker`]. The map of the modules is `docs/architecture.md`.
#![deny(missing_docs)]

pub mod asyncapi;
pub mod capacity;
pub mod check;
pub mod deploy;
pub mod locate;
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
