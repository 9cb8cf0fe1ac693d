//! `squall deploy`: a sharded run described for a cluster to carry out. Each target has its
//! own module; today Kubernetes ([`k8s`]): manifests printed, never applied.

pub mod files;
pub mod k8s;
pub mod names;
mod yaml;

/// Why manifests could not be made. Every variant is bad input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The scenario does not load.
    #[error("{0}")]
    Scenario(#[from] crate::scenario::LoadError),
    /// Its protocol profile is not found or does not load.
    #[error("{scenario}: protocol profile: {source}")]
    Profile {
        /// The scenario file, as given.
        scenario: String,
        /// What is wrong with the profile.
        source: crate::protocol::ProfileError,
    },
    /// A file the pods need could not be read, or cannot be carried to them.
    #[error("{path}: {problem}")]
    File {
        /// The file or folder.
        path: String,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// An option's value is not usable; the message says which and what to write.
    #[error("{0}")]
    Usage(String),
}

impl DeployError {
    /// Exit code: always 2 (bad scenario or usage); nothing is contacted.
    pub fn exit_code(&self) -> u8 {
        2
    }
}
