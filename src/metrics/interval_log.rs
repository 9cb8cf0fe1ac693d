//! The HdrHistogram interval log written beside results.json: every latency metric's
//! latency and service histograms per second, in the standard format (`#[StartTime]`,
//! `#[BaseTime]`, one `Tag=<tag>,<start>,<length>,<max>,<V2 DEFLATE base64>` row per metric
//! and second), so shards merge exactly and HdrHistogram's own tools
//! (`HistogramLogProcessor`) read it.
//!
//! Tags are `latency.<metric>` and `service.<metric>`; values are µs. A second in which a
//! metric recorded nothing has no row for it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::{add_hist, new_histogram};

/// The log's file name in a run folder.
pub const FILE_NAME: &str = "histograms.hlog";

/// One sealed second's histograms, per metric (indexed like the run's metric names);
/// `None` where the metric recorded nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalHistograms {
    /// Start of the interval, since the run's start.
    pub start: Duration,
    /// Length of the interval (the tick, except for the last, partial one).
    pub span: Duration,
    /// Latency from the intended send time, per metric.
    pub latency: Vec<Option<Histogram<u64>>>,
    /// Latency from the actual send, per metric.
    pub service: Vec<Option<Histogram<u64>>>,
}

impl IntervalHistograms {
    /// An interval with no samples for `metrics` metrics.
    pub fn empty(start: Duration, span: Duration, metrics: usize) -> Self {
        IntervalHistograms {
            start,
            span,
            latency: vec![None; metrics],
            service: vec![None; metrics],
        }
    }

    /// Adds `h` into the latency (`service == false`) or service histogram of metric `i`.
    pub fn add(&mut self, i: usize, service: bool, h: &Histogram<u64>) {
        let slots = if service {
            &mut self.service
        } else {
            &mut self.latency
        };
        if let Some(slot) = slots.get_mut(i) {
            add_hist(slot.get_or_insert_with(new_histogram), h);
        }
    }
}

/// The tag of a metric's latency (`latency.<metric>`) or service (`service.<metric>`)
/// histograms. A character a tag cannot hold (space, comma, line break) becomes `_`.
pub fn tag(service: bool, metric: &str) -> String {
    let kind = if service { "service" } else { "latency" };
    let safe: String = metric
        .chars()
        .map(|c| {
            if matches!(c, ' ' | ',' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{kind}.{safe}")
}

/// An interval log being written, one sealed second at a time.
pub struct Writer {
    out: BufWriter<File>,
    path: PathBuf,
    serializer: V2DeflateSerializer,
    /// Tags per metric: (latency, service).
    tags: Vec<(String, String)>,
    /// Whether the header (with the run's start) is written.
    begun: bool,
}

impl Writer {
    /// Creates the log at `path` for a run that started at `started`, with its header.
    pub fn create(path: &Path, started: SystemTime, metrics: &[String]) -> io::Result<Writer> {
        let mut w = Writer::open(path, metrics)?;
        w.begin(started)?;
        Ok(w)
    }

    /// Creates the (empty) file now, so a folder that takes no files fails before any
    /// load; [`begin`](Self::begin) writes the header once the run's start is known.
    pub fn open(path: &Path, metrics: &[String]) -> io::Result<Writer> {
        let out = BufWriter::new(File::create(path)?);
        let tags = metrics
            .iter()
            .map(|m| (tag(false, m), tag(true, m)))
            .collect();
        Ok(Writer {
            out,
            path: path.to_path_buf(),
            serializer: V2DeflateSerializer::new(),
            tags,
            begun: false,
        })
    }

    /// Writes the header: `#[StartTime]` and `#[BaseTime]` are `started`, so row timestamps
    /// are seconds since the run's start.
    pub fn begin(&mut self, started: SystemTime) -> io::Result<()> {
        IntervalLogWriterBuilder::new()
            .add_comment("squall: latency and service time per metric and second, in µs")
            .add_comment("Tags: latency.<metric> (from the intended send), service.<metric> (from the actual send)")
            .with_start_time(started)
            .with_base_time(started)
            .begin_log_with(&mut self.out, &mut self.serializer)?;
        writeln!(
            self.out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        // The header is on disk before the first second: the file reads as a log at once.
        self.out.flush()?;
        self.begun = true;
        Ok(())
    }

    /// Removes the file (after a failed write: a log with a hole would read as complete).
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one interval's rows (a metric without samples has none) and flushes them.
    pub fn append(&mut self, iv: &IntervalHistograms) -> io::Result<()> {
        if !self.begun {
            return Err(io::Error::other("the interval log has no header yet"));
        }
        let mut log =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        for (i, (lt, st)) in self.tags.iter().enumerate() {
            for (h, t) in [(&iv.latency, lt), (&iv.service, st)] {
                let Some(h) = h.get(i).and_then(Option::as_ref).filter(|h| !h.is_empty()) else {
                    continue;
                };
                log.write_histogram(h, iv.start, iv.span, Tag::new(t))
                    .map_err(io::Error::other)?;
            }
        }
        self.out.flush()
    }
}

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line is not an interval log line.
    #[error("{path}: byte {offset}: not an HdrHistogram interval log line")]
    Parse {
        /// The log.
        path: PathBuf,
        /// Where the bad line starts.
        offset: usize,
    },
    /// A row's histogram does not decode.
    #[error("{path}: the row at {start_s:.3} s tagged {tag}: bad histogram: {problem}")]
    Histogram {
        /// The log.
        path: PathBuf,
        /// The row's start, s.
        start_s: f64,
        /// The row's tag.
        tag: String,
        /// What is wrong.
        problem: String,
    },
}

/// One row of a log that was read.
#[derive(Debug, Clone)]
pub struct Row {
    /// The row's tag (`None`: untagged).
    pub tag: Option<String>,
    /// Start of the interval, since the log's `#[BaseTime]` (or the epoch without one).
    pub start: Duration,
    /// Length of the interval.
    pub span: Duration,
    /// The decoded histogram.
    pub histogram: Histogram<u64>,
}

/// A whole log: its times and rows, in file order.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// `#[StartTime]`, since the epoch.
    pub start_time: Option<Duration>,
    /// `#[BaseTime]`, since the epoch.
    pub base_time: Option<Duration>,
    /// Every interval row.
    pub rows: Vec<Row>,
}

impl Log {
    /// The base rows are relative to, as a wall-clock time (the epoch without one).
    pub fn base(&self) -> SystemTime {
        UNIX_EPOCH + self.base_time.unwrap_or_default()
    }
}

/// Reads and decodes the interval log at `path`.
pub fn read(path: &Path) -> Result<Log, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut log = Log::default();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| match e {
            hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } => {
                ReadError::Parse {
                    path: path.to_path_buf(),
                    offset,
                }
            }
        })?;
        match entry {
            LogEntry::StartTime(t) => log.start_time = Some(t),
            LogEntry::BaseTime(t) => log.base_time = Some(t),
            LogEntry::Interval(iv) => {
                let tag = iv.tag().map(|t| t.as_str().to_string());
                let bad = |problem: String| ReadError::Histogram {
                    path: path.to_path_buf(),
                    start_s: iv.start_timestamp().as_secs_f64(),
                    tag: tag.clone().unwrap_or_default(),
                    problem,
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(iv.encoded_histogram())
                    .map_err(|e| bad(e.to_string()))?;
                let decoded: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| bad(format!("{e:?}")))?;
                // Into squall's own bounds, so any two rows add.
                let mut histogram = new_histogram();
                histogram.add(&decoded).map_err(|e| bad(format!("{e:?}")))?;
                log.rows.push(Row {
                    tag,
                    start: iv.start_timestamp(),
                    span: iv.duration(),
                    histogram,
                });
            }
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_hold_no_forbidden_character() {
        assert_eq!(tag(false, "ack"), "latency.ack");
        assert_eq!(tag(true, "a b,c"), "service.a_b_c");
    }

    #[test]
    fn a_log_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let start = UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
        let names = vec!["ack".to_string(), "quiet".to_string()];
        let mut w = Writer::create(&path, start, &names).unwrap();
        let mut h = new_histogram();
        for v in [100, 200, 300_000] {
            h.record(v).unwrap();
        }
        let mut iv = IntervalHistograms::empty(Duration::from_secs(1), Duration::from_secs(1), 2);
        iv.add(0, false, &h);
        iv.add(0, true, &h);
        w.append(&iv).unwrap();
        drop(w);
        let log = read(&path).unwrap();
        assert_eq!(log.base(), start);
        assert_eq!(
            log.start_time,
            Some(Duration::from_millis(1_800_000_000_250))
        );
        let tags: Vec<_> = log.rows.iter().map(|r| r.tag.clone().unwrap()).collect();
        assert_eq!(tags, ["latency.ack", "service.ack"]);
        assert_eq!(log.rows[0].histogram, h);
        assert_eq!(log.rows[0].start, Duration::from_secs(1));
    }

    #[test]
    fn a_broken_log_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.hlog");
        std::fs::write(
            &path,
            "#[BaseTime: 1.000 (seconds since epoch)]\nTag=a,1.0,1.0,2.0,!!!\n",
        )
        .unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("tagged a") && e.contains("bad histogram"), "{e}");
    }
}
