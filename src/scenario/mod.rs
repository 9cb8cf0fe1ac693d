//! Scenario files: strict YAML model, validation with file:line:col, lowering to a [`Plan`].

pub mod plan;
pub mod template;

pub use plan::Plan;
