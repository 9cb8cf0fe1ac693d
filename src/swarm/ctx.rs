//! A VU's template state: its number, iteration and sequence, its random generator, its
//! captured variables, the last frame it sent and the running upload's values.

use std::cell::Cell;
use std::collections::HashMap;

use rand::rngs::SmallRng;
use serde_json::Value;

use super::upload_vars::UploadVars;
use crate::scenario::template::{Context, StepValue, StepVar};

/// Template state of one VU.
pub struct Ctx {
    pub(super) vu: u64,
    pub(super) iter: u64,
    seq: u64,
    pub(super) rng: SmallRng,
    pub(super) vars: HashMap<String, Value>,
    /// The last frame sent (text), parsed lazily when a `sent.` template asks.
    last_sent: Option<String>,
    last_sent_parsed: Option<Value>,
    /// The running (or last) upload's values; allocated by the first upload step.
    pub(super) upload: Option<Box<UploadVars>>,
    /// Set when a template asked for a variable that is not set (a capture whose `expect`
    /// failed, or whose frame lacked the field): a frame rendered so is not sent.
    pub(super) missing: Cell<bool>,
}

impl Context for Ctx {
    fn vu(&self) -> u64 {
        self.vu
    }
    fn iter(&self) -> u64 {
        self.iter
    }
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
    fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
    fn var(&self, name: &str) -> Option<&Value> {
        let v = self.vars.get(name);
        if v.is_none() {
            self.missing.set(true);
        }
        v
    }
    fn sent(&mut self, pointer: &str) -> Option<Value> {
        if self.last_sent_parsed.is_none() {
            let text = self.last_sent.as_deref()?;
            self.last_sent_parsed = serde_json::from_str(text).ok();
        }
        self.last_sent_parsed.as_ref()?.pointer(pointer).cloned()
    }
    fn step_value(&self, var: StepVar) -> Option<StepValue<'_>> {
        self.upload.as_ref()?.value(var)
    }
}

impl Ctx {
    /// VU `vu`'s state before its first iteration: `vars` as the scenario sets them.
    pub(super) fn new(vu: u64, rng: SmallRng, vars: HashMap<String, Value>) -> Ctx {
        Ctx {
            vu,
            iter: 0,
            seq: 0,
            rng,
            vars,
            last_sent: None,
            last_sent_parsed: None,
            upload: None,
            missing: Cell::new(false),
        }
    }

    pub(super) fn remember_sent(&mut self, text: &str, parsed: Option<Value>) {
        let slot = self.last_sent.get_or_insert_with(String::new);
        slot.clear();
        slot.push_str(text);
        self.last_sent_parsed = parsed;
    }
}
