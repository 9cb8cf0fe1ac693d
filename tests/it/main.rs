//! squall's integration tests, in one binary: one build and one link for all of them (the
//! crate's dependencies — plotters, jsonschema, rustls, html5ever — are linked once, not once
//! per file). A module a former test file; `support` is shared with every test binary.
//! `metrics_alloc` (a counting global allocator) and `capacity` (searches that must not
//! share the machine with each other) are binaries of their own.

#[path = "../report_support/mod.rs"]
mod report_support;
#[path = "../support/mod.rs"]
mod support;

mod asyncapi_export;
mod asyncapi_import;
mod asyncapi_scenario;
mod checker_properties;
mod checker_reference;
mod cli;
mod cli_newcomer;
mod conformance;
mod connect_causes;
mod deploy_k8s;
mod error_samples;
mod hostile_memory;
mod library;
mod metrics_listen;
mod metrics_merge;
mod procs;
mod profiles_builtin;
mod readme;
mod report;
mod report_browser;
mod results_schema;
mod results_verdict;
mod run_e2e;
mod run_exits;
mod run_output;
mod scenario_flows;
mod scenario_invalid;
mod scenario_parse;
mod scenarios_covetpy;
mod scenarios_hexabase;
mod scenarios_kecs;
mod scenarios_kite;
mod scenarios_newloom;
mod scenarios_upload;
mod semantic_rules;
mod series_health;
mod server_covetpy;
mod server_hexabase;
mod server_kecs;
mod server_newloom;
mod shard_merge;
mod step_failure;
mod swarm_behaviour;
mod swarm_connect;
mod swarm_delivery;
mod swarm_mix_burst;
mod swarm_upload;
mod timing;
mod tls;
