//! `--storage`: where a run's shards write their results.

use crate::deploy::names;

/// Where the shards write their results.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// A new ReadWriteMany claim, of this storage class (`None`: the cluster's default).
    Claim {
        /// The storage class; it must offer ReadWriteMany (NFS, CephFS, EFS, Filestore...).
        class: Option<String>,
    },
    /// A claim that already exists (ReadWriteMany), by name; nothing is created.
    Existing(String),
}

impl std::str::FromStr for Storage {
    type Err = String;

    /// `pvc`, `pvc:CLASS` or `claim:NAME`.
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "write pvc (a new ReadWriteMany claim), pvc:CLASS (of that storage class) \
                    or claim:NAME (an existing ReadWriteMany claim)";
        match s.split_once(':') {
            None if s == "pvc" => Ok(Storage::Claim { class: None }),
            Some(("pvc", c)) if names::subdomain(c) => Ok(Storage::Claim {
                class: Some(c.to_string()),
            }),
            Some(("claim", n)) if names::subdomain(n) => Ok(Storage::Existing(n.to_string())),
            _ => Err(format!("--storage '{s}': {hint}")),
        }
    }
}
