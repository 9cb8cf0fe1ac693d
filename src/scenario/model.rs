//! The scenario file as written: strict serde structs, one per YAML construct.
//!
//! Values whose meaning lowering must check (durations, rates, sizes, templates) are kept as
//! spanned scalars; parts that may fail on their own are wrapped in [`Recover`] so one bad
//! step does not hide the next.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::de::{Body, OrMap, Recover, Scalar, Sp, STEP_ITEM};
use super::plan::Pos;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ScenarioM {
    pub name: Recover<Sp<String>>,
    pub protocol: Option<Sp<String>>,
    pub target: Recover<Sp<String>>,
    pub seed: Recover<u64>,
    pub graceful_stop: Option<Sp<Scalar>>,
    pub discriminator: Recover<Vec<Sp<String>>>,
    pub correlation: Option<Sp<String>>,
    pub vars: Recover<Entries<Sp<String>, Body>>,
    pub connect: Recover<ConnectM>,
    pub load: Recover<Sp<LoadM>>,
    pub auto_reply: Recover<Vec<Recover<Sp<AutoReplyM>>>>,
    pub behaviours: Recover<Sp<Vec<Recover<Sp<BehaviourM>>>>>,
    pub thresholds: Recover<Vec<Sp<String>>>,
    pub delivery: Recover<Sp<DeliveryM>>,
}

/// `delivery:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DeliveryM {
    pub seq: Option<Sp<String>>,
    pub sent_at: Option<Sp<String>>,
    /// A pointer or a list of pointers.
    pub key: Option<Body>,
    pub kinds: Option<Vec<Sp<String>>>,
    pub metric: Option<Sp<String>>,
}

/// `connect:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ConnectM {
    pub headers: Entries<Sp<String>, Sp<Scalar>>,
    pub query: Entries<Sp<String>, Sp<Scalar>>,
    pub subprotocols: Vec<String>,
    pub timeout: Option<Sp<Scalar>>,
    pub insecure: bool,
    pub max_message_size: Option<Sp<Scalar>>,
    pub backoff: Option<Sp<BackoffM>>,
}

/// `load:` in any of its forms (phases, or the `vus`/`rate` + `duration` shorthand).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LoadM {
    pub model: Option<Sp<String>>,
    pub max_vus: Option<Sp<u32>>,
    pub phases: Option<Sp<Vec<Recover<Sp<PhaseM>>>>>,
    pub vus: Option<Sp<u32>>,
    pub rate: Option<Sp<Scalar>>,
    pub duration: Option<Sp<Scalar>>,
}

/// One `phases:` item: `{ ramp: 10s, vus: 100 }`, `{ hold: 30s }`...
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PhaseM {
    pub ramp: Option<Sp<Scalar>>,
    pub hold: Option<Sp<Scalar>>,
    pub vus: Option<Sp<u32>>,
    pub rate: Option<Sp<Scalar>>,
}

/// An `auto_reply:` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AutoReplyM {
    pub on: Option<Sp<MatcherM>>,
    pub send: Option<Body>,
    pub send_text: Option<Sp<String>>,
}

/// Conditions on an inbound frame (`on:`, `reply:`, and inside `expect:`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MatcherM {
    pub kind: Option<Sp<String>>,
    pub id: Option<Sp<Scalar>>,
    #[serde(rename = "match")]
    pub fields: Option<Entries<Sp<String>, Sp<Scalar>>>,
}

/// A `behaviours:` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BehaviourM {
    pub name: Option<Sp<String>>,
    pub weight: Option<Sp<f64>>,
    pub connect: Option<Sp<BehaviourConnectM>>,
    pub steps: Recover<Steps>,
}

/// A behaviour's `connect:`: headers and query parameters over the scenario's.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BehaviourConnectM {
    pub headers: Entries<Sp<String>, Sp<Scalar>>,
    pub query: Entries<Sp<String>, Sp<Scalar>>,
}

/// A list of steps; each item stands or falls alone.
pub(crate) type Steps = Vec<Recover<Sp<StepItem>>>;

/// `expect:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ExpectM {
    pub kind: Option<Sp<String>>,
    pub id: Option<Sp<Scalar>>,
    #[serde(rename = "match")]
    pub fields: Option<Entries<Sp<String>, Sp<Scalar>>>,
    pub within: Option<Sp<Scalar>>,
    pub metric: Option<Sp<String>>,
    pub capture: Entries<Sp<String>, Sp<String>>,
}

/// `listen: { for: 10s }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenM {
    #[serde(rename = "for")]
    pub duration: Sp<Scalar>,
}

/// `think: { min: 1s, max: 3s }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThinkM {
    pub min: Sp<Scalar>,
    pub max: Sp<Scalar>,
}

/// `repeat: { count: 5, duration: 10s }`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RepeatM {
    pub count: Option<Sp<u64>>,
    pub duration: Option<Sp<Scalar>>,
}

/// A `choose:` branch.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BranchM {
    pub weight: Option<Sp<f64>>,
    pub steps: Recover<Steps>,
}

/// `pace:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PaceM {
    pub send: Option<Body>,
    pub send_text: Option<Sp<String>>,
    pub rate: Option<Sp<Scalar>>,
    pub count: Option<Sp<u64>>,
    pub duration: Option<Sp<Scalar>>,
    pub in_flight: Option<Sp<u32>>,
    pub within: Option<Sp<Scalar>>,
    pub reply: Option<Sp<MatcherM>>,
    pub metric: Option<Sp<String>>,
    pub mix: Option<Sp<Vec<Recover<Sp<MixM>>>>>,
}

/// A `pace: { mix: [...] }` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MixM {
    pub weight: Option<Sp<f64>>,
    pub send: Option<Body>,
    pub send_text: Option<Sp<String>>,
    pub reply: Option<Sp<MatcherM>>,
    pub metric: Option<Sp<String>>,
}

/// `burst:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BurstM {
    pub send: Option<Body>,
    pub send_text: Option<Sp<String>>,
    pub count: Option<Sp<u64>>,
    pub rate: Option<Sp<Scalar>>,
    pub rejected: Option<Sp<RejectedM>>,
}

/// `burst: { rejected: ... }`: a frame matcher, or `close:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RejectedM {
    pub kind: Option<Sp<String>>,
    pub id: Option<Sp<Scalar>>,
    #[serde(rename = "match")]
    pub fields: Option<Entries<Sp<String>, Sp<Scalar>>>,
    pub close: Option<Sp<Scalar>>,
    pub within: Option<Sp<Scalar>>,
    pub metric: Option<Sp<String>>,
}

/// `upload:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UploadM {
    pub size: Option<Sp<Scalar>>,
    pub chunk_size: Option<Sp<Scalar>>,
    pub id: Option<Sp<String>>,
    pub name: Option<Sp<String>>,
    pub start: Option<Body>,
    pub started: Option<Sp<WaitM>>,
    pub chunk: Option<Body>,
    pub chunk_ack: Option<Sp<WaitM>>,
    pub in_flight: Option<Sp<u32>>,
    pub finish: Option<Body>,
    pub complete: Option<Sp<WaitM>>,
    pub corrupt: Option<Sp<u64>>,
    pub expect_error: Option<Sp<WaitM>>,
    pub metric: Option<Sp<String>>,
}

/// A reply an upload step waits for: a matcher with a deadline.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct WaitM {
    pub kind: Option<Sp<String>>,
    pub id: Option<Sp<Scalar>>,
    #[serde(rename = "match")]
    pub fields: Option<Entries<Sp<String>, Sp<Scalar>>>,
    pub within: Option<Sp<Scalar>>,
}

/// `send_binary: { base64: ... }` or `{ size: 64KiB }`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BinaryM {
    pub base64: Option<Sp<String>>,
    pub size: Option<Sp<Scalar>>,
}

/// `expect_close:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ExpectCloseM {
    pub code: Option<Sp<u16>>,
    pub within: Option<Sp<Scalar>>,
}

/// `reconnect:`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BackoffM {
    pub initial: Option<Sp<Scalar>>,
    pub max: Option<Sp<Scalar>>,
    pub factor: Option<Sp<f64>>,
    pub jitter: Option<Sp<f64>>,
    pub max_tries: Option<Sp<u32>>,
}

/// `close: { code: 1000 }`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CloseM {
    pub code: Option<Sp<u16>>,
}

/// The step of a step item, by its key.
#[derive(Debug)]
pub(crate) enum StepM {
    Send(Body),
    SendText(Sp<String>),
    SendBinary(Sp<BinaryM>),
    Expect(Box<Sp<ExpectM>>),
    Listen(Sp<OrMap<ListenM>>),
    Think(Sp<OrMap<ThinkM>>),
    Repeat(Sp<OrMap<RepeatM>>),
    Choose(Sp<Vec<Recover<Sp<BranchM>>>>),
    Pace(Box<Sp<PaceM>>),
    Burst(Box<Sp<BurstM>>),
    Upload(Box<Sp<UploadM>>),
    ExpectClose(Sp<ExpectCloseM>),
    Reconnect(Option<Sp<BackoffM>>),
    Close(Sp<OrMap<CloseM>>),
}

/// The step keys, in the order the hint lists them.
pub(crate) const STEP_KEYS: [&str; 14] = [
    "send",
    "send_text",
    "send_binary",
    "expect",
    "listen",
    "think",
    "repeat",
    "choose",
    "pace",
    "burst",
    "upload",
    "expect_close",
    "reconnect",
    "close",
];

const ITEM_KEYS: [&str; 17] = [
    "send",
    "send_text",
    "send_binary",
    "expect",
    "listen",
    "think",
    "repeat",
    "choose",
    "pace",
    "burst",
    "upload",
    "expect_close",
    "reconnect",
    "close",
    "unchecked",
    "on_fail",
    "steps",
];

/// One item of a `steps:` list: exactly one step key, plus the modifiers `unchecked:`,
/// `on_fail:` and (for `repeat`) `steps:`.
#[derive(Debug)]
pub(crate) struct StepItem {
    pub step: StepM,
    pub unchecked: Option<Sp<bool>>,
    pub on_fail: Option<Sp<String>>,
    pub steps: Option<Sp<Recover<Steps>>>,
}

impl<'de> Deserialize<'de> for StepItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(STEP_ITEM, &ITEM_KEYS, ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = StepItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepItem, A::Error> {
        let (mut step, mut unchecked, mut on_fail, mut steps) = (None, None, None, None);
        let mut seen: Option<&'static str> = None;
        while let Some(key) = map.next_key_seed(ItemKey { seen })? {
            match key {
                "unchecked" => unchecked = Some(map.next_value()?),
                "on_fail" => on_fail = Some(map.next_value()?),
                "steps" => steps = Some(map.next_value()?),
                k => {
                    seen = Some(k);
                    step = Some(read_step(k, &mut map)?);
                }
            }
        }
        let Some(step) = step else {
            return Err(de::Error::custom(format!(
                "this item has no step; steps are {}",
                STEP_KEYS.join(", ")
            )));
        };
        Ok(StepItem {
            step,
            unchecked,
            on_fail,
            steps,
        })
    }
}

fn read_step<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<StepM, A::Error> {
    Ok(match key {
        "send" => StepM::Send(map.next_value()?),
        "send_text" => StepM::SendText(map.next_value()?),
        "send_binary" => StepM::SendBinary(map.next_value()?),
        "expect" => StepM::Expect(map.next_value()?),
        "listen" => StepM::Listen(map.next_value()?),
        "think" => StepM::Think(map.next_value()?),
        "repeat" => StepM::Repeat(map.next_value()?),
        "choose" => StepM::Choose(map.next_value()?),
        "pace" => StepM::Pace(map.next_value()?),
        "burst" => StepM::Burst(map.next_value()?),
        "upload" => StepM::Upload(map.next_value()?),
        "expect_close" => StepM::ExpectClose(map.next_value()?),
        "reconnect" => StepM::Reconnect(map.next_value()?),
        _ => StepM::Close(map.next_value()?),
    })
}

/// Reads a step item's key; a second step key is an error at that key.
struct ItemKey {
    seen: Option<&'static str>,
}

impl<'de> de::DeserializeSeed<'de> for ItemKey {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for ItemKey {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        let Some(key) = ITEM_KEYS.iter().find(|k| **k == v) else {
            return Err(E::unknown_field(v, &STEP_KEYS));
        };
        match self.seen {
            Some(first) if STEP_KEYS.contains(key) => Err(E::custom(format!(
                "two steps in one item: '{first}' and '{key}' (write each step as its own list item)"
            ))),
            _ => Ok(key),
        }
    }
}

/// An ordered YAML map read as (key, value) pairs, so lowering keeps the written order.
#[derive(Debug)]
pub(crate) struct Entries<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EV<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EV<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    out.push(kv);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(EV(PhantomData))
    }
}

impl<T: Default> Default for Sp<T> {
    fn default() -> Self {
        Sp {
            value: T::default(),
            pos: Pos::default(),
        }
    }
}
