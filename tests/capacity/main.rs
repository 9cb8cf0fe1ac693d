//! Capacity searches against squall-server: a binary of its own, and one search at a time
//! (`support::serial`), so a search's latencies are measured on a machine no other test is
//! loading from inside this process.

mod support;

mod pace;
mod procs;
mod search;
mod slo;
mod starved;
