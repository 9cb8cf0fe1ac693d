//! Manifests written as YAML the way people write them.

use serde_json::Value;

/// A manifest in the order people write them (`apiVersion`, `kind`, `metadata`, a
/// container's `name`, `image`, `command`, `args` first), the rest alphabetical.
pub(crate) struct Ordered<'a>(pub(crate) &'a Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        const FIRST: [&str; 8] = [
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "namespace",
            "image",
            "command",
            "args",
        ];
        match self.0 {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by_key(|k| {
                    (FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()), *k)
                });
                let mut out = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    out.serialize_entry(k, &Ordered(&m[k]))?;
                }
                out.end()
            }
            Value::Array(a) => {
                let mut out = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    out.serialize_element(&Ordered(v))?;
                }
                out.end()
            }
            v => v.serialize(s),
        }
    }
}
