//! Writing `results.json` atomically, and the errors of reading and writing results.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Results;

/// Errors reading or writing results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be created, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The results could not be encoded as JSON.
    #[error("encoding results: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored histogram is not valid base64 + HdrHistogram V2 deflate.
    #[error("bad histogram: {0}")]
    Histogram(String),
    /// A results file that cannot be read, is not JSON, or is not a results document.
    #[error("{location}: {problem}")]
    Input {
        /// The file, with `:line:column` when the problem has a place.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// Arguments that do not fit together (e.g. more labels than runs).
    #[error("{0}")]
    Usage(String),
    /// A chart could not be drawn.
    #[error("drawing {chart}: {message}")]
    Plot {
        /// The chart's file stem.
        chart: String,
        /// The drawing library's message.
        message: String,
    },
}

impl ReportError {
    /// Exit code: 2 for bad input or usage, 3 when the output could not be made.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReportError::Input { .. } | ReportError::Usage(_) | ReportError::Histogram(_) => 2,
            ReportError::Io { .. } | ReportError::Json(_) | ReportError::Plot { .. } => 3,
        }
    }
}

/// Writes `results.json` atomically into a run folder.
#[derive(Debug)]
pub struct ResultsWriter {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
}

impl ResultsWriter {
    /// Creates `dir` (and parents) if needed; fails early when it cannot be created.
    pub fn create(dir: &Path) -> Result<Self, ReportError> {
        fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ResultsWriter {
            dir: dir.to_path_buf(),
            path: dir.join("results.json"),
            tmp: dir.join(".results.json.tmp"),
        })
    }

    /// Replaces `results.json` with `r`: written to a temporary file in the same folder,
    /// synced, then renamed over the old one, so a reader or a crash only ever sees a
    /// whole document.
    pub fn write(&self, r: &Results) -> Result<(), ReportError> {
        let json = serde_json::to_vec_pretty(r)?;
        let written = self.replace(&json);
        if written.is_err() {
            // A half-written temporary file (disk full, quota) is of no use to anyone.
            let _ = fs::remove_file(&self.tmp);
        }
        written
    }

    fn replace(&self, json: &[u8]) -> Result<(), ReportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        let mut f = File::create(&self.tmp).map_err(io(&self.tmp))?;
        f.write_all(json).map_err(io(&self.tmp))?;
        f.write_all(b"\n").map_err(io(&self.tmp))?;
        f.sync_all().map_err(io(&self.tmp))?;
        drop(f);
        fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        // Persist the rename itself; not every filesystem supports syncing a folder,
        // and the file is already whole, so a failure here is not an error.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Path of `results.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
