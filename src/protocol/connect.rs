//! A profile's `connect:` section: how to reach the API, as its document says (written by
//! the AsyncAPI import; `squall scenario new` turns it into a scenario's target and
//! `connect:`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `connect:` in `protocol.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// WebSocket server URLs the document names (`wss://host[/path]`).
    #[serde(default)]
    pub servers: Vec<String>,
    /// The channel's address; `{name}` stands for the parameter `name`.
    #[serde(default)]
    pub address: Option<String>,
    /// Address parameters, each with a value to start from (if the document gives one).
    #[serde(default)]
    pub parameters: BTreeMap<String, Option<Value>>,
    /// Query parameters of the upgrade request.
    #[serde(default)]
    pub query: BTreeMap<String, Field>,
    /// Headers of the upgrade request.
    #[serde(default)]
    pub headers: BTreeMap<String, Field>,
}

/// One query parameter or header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The document requires it.
    #[serde(default)]
    pub required: bool,
    /// A value to start from (the schema's default, first enum value or example).
    #[serde(default)]
    pub example: Option<Value>,
}
