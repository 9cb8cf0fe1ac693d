//! Templates: `{{...}}` expressions inside strings and JSON bodies, compiled once at load.
//!
//! CONTRACT (implementation pending): the scenario helper fills the bodies.

use rand::rngs::SmallRng;
use serde_json::Value;

/// What a template may read while rendering; the swarm implements it per VU.
pub trait Context {
    /// 1-based VU number.
    fn vu(&self) -> u64;
    /// 0-based iteration of this VU.
    fn iter(&self) -> u64;
    /// Next value of this VU's `{{seq}}` counter (starts at 1, increments per use).
    fn next_seq(&mut self) -> u64;
    /// The VU's seeded random generator.
    fn rng(&mut self) -> &mut SmallRng;
    /// A captured (or `vars:`) value.
    fn var(&self, name: &str) -> Option<&Value>;
    /// The value at `pointer` in the last frame this VU sent.
    fn sent(&mut self, pointer: &str) -> Option<Value>;
}

/// A compiled string template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {}

/// A compiled JSON body whose strings may hold templates.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {}
