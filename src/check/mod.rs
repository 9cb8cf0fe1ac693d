//! Checks on a run: thresholds and the verdict (frame validation arrives with conformance).

pub mod offline;
pub mod thresholds;
pub mod verdict;
