//! squall: load-test and conformance-check WebSocket APIs from YAML scenarios.

pub mod check;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod swarm;
