//! Checks on a run and on a scenario: the verdict on the thresholds, recordings checked offline,
//! and whether a scenario is portable (uses only what its document defines).

pub mod offline;
pub mod portable;
pub mod verdict;
