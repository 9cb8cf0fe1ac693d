//! Checks on a run and on a scenario: thresholds, the verdict, recordings checked offline,
//! and whether a scenario is portable (uses only what its document defines).

pub mod offline;
pub mod portable;
pub mod thresholds;
pub mod verdict;
