//! Measurement: per-worker [`Recorder`]s (no locks on the hot path), their [`Snapshot`]s,
//! and the [`Aggregate`] that merges them exactly on every tick into totals and a series.
//!
//! All times are microseconds. Histograms cover 1 µs – 1 h at 3 significant digits;
//! larger values saturate at the top instead of being dropped, so an outlier is never lost.
//!
//! The wiring, per worker thread and in the aggregator:
//! ```
//! use std::{cell::RefCell, rc::Rc, time::Duration};
//! use squall::metrics::{Aggregate, Recorder};
//! use squall::scenario::plan::MetricId;
//!
//! let names = vec!["ack".to_string()];
//! // Worker 0: its VU tasks share one recorder; a borrow never spans an await.
//! let rec = Rc::new(RefCell::new(Recorder::with_worker(0, &names)));
//! rec.borrow_mut().latency(MetricId(0), 1_200, 900);
//! // Every tick the worker sends `take()` over a channel; the aggregator merges.
//! let snapshot = rec.borrow_mut().take();
//! let mut agg = Aggregate::new(names);
//! agg.add(snapshot);
//! let point = agg.tick(Duration::from_secs(1), None);
//! assert_eq!(point.p50_us, Some(1_200));
//! ```

pub mod aggregate;
pub mod flows;
pub mod health;
pub mod interval_log;
mod kinds;
pub mod recorder;
mod snapshot;
pub mod violations;

use hdrhistogram::Histogram;

pub use aggregate::Aggregate;
pub use flows::{DeliveryTally, Seen, UploadEvent, UploadTally};
pub use health::{CpuSampler, SaturationWatch};
pub use kinds::{KindDelta, MAX_KINDS, MAX_NAME_BYTES, NONE_KIND, OTHER_KIND};
pub use recorder::Recorder;
pub use snapshot::Snapshot;

pub use crate::results::{new_histogram, HISTOGRAM_MAX_US};

/// Adds `src` into `dst`. Both come from [`new_histogram`], so the bounds match and
/// the addition cannot fail; a decoded foreign histogram goes through `Summary::merge`.
pub(crate) fn add_hist(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    let _ = dst.add(src);
}

/// Why an operation failed after the connection was up (connect failures are [`FailCause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// An `expect` or paced reply did not arrive before its deadline.
    Timeout,
    /// The connection dropped while a step needed it.
    Disconnected,
    /// The peer broke the WebSocket protocol.
    Protocol,
    /// An inbound message exceeded the configured maximum size.
    MessageTooLarge,
    /// Writing a frame failed.
    SendFailed,
    /// The peer read nothing for too long while squall had frames (or pongs) to write: the
    /// connection was closed rather than buffered without bound.
    PeerNotReading,
    /// The server closed the connection when the scenario did not expect it.
    UnexpectedClose,
    /// `reconnect` gave up after its last try.
    ReconnectExhausted,
    /// A text frame was not valid UTF-8.
    InvalidUtf8,
    /// A step ended in the reply it did not expect (an upload completed where its
    /// `expect_error` was expected, or the reverse).
    UnexpectedReply,
    /// A request (paced, or awaited by an `expect`) had neither its reply nor its deadline
    /// when its wait ended: the run stopped, or its connection died, first.
    Unanswered,
    /// A `send` was not made: its frame would have carried a capture that is not set (its
    /// `expect` failed, or the frame it matched lacked the field).
    SkippedSend,
}

impl ErrorKind {
    /// Every kind, in the order of their counter slots.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Timeout,
        ErrorKind::Disconnected,
        ErrorKind::Protocol,
        ErrorKind::MessageTooLarge,
        ErrorKind::SendFailed,
        ErrorKind::PeerNotReading,
        ErrorKind::UnexpectedClose,
        ErrorKind::ReconnectExhausted,
        ErrorKind::InvalidUtf8,
        ErrorKind::UnexpectedReply,
        ErrorKind::Unanswered,
        ErrorKind::SkippedSend,
    ];

    /// The name used in results and thresholds (`errors.timeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Protocol => "protocol",
            ErrorKind::MessageTooLarge => "message_too_large",
            ErrorKind::SendFailed => "send_failed",
            ErrorKind::PeerNotReading => "peer_not_reading",
            ErrorKind::UnexpectedClose => "unexpected_close",
            ErrorKind::ReconnectExhausted => "reconnect_exhausted",
            ErrorKind::InvalidUtf8 => "invalid_utf8",
            ErrorKind::UnexpectedReply => "unexpected_reply",
            ErrorKind::Unanswered => "unanswered",
            ErrorKind::SkippedSend => "skipped_send",
        }
    }

    /// Slot in a fixed counter array: counting an error never hashes or allocates.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailCause {
    /// TCP connection refused.
    Refused,
    /// TCP + TLS + upgrade did not finish within the connect timeout.
    Timeout,
    /// TLS handshake failed.
    Tls,
    /// The host name did not resolve.
    Dns,
    /// The upgrade was answered with this HTTP status instead of 101.
    Http(u16),
    /// The 101 answer's `Sec-WebSocket-Accept` did not match the key sent.
    BadAccept,
    /// The answer was not a WebSocket upgrade (malformed, wrong HTTP version, missing
    /// headers, or the connection closed before it was complete).
    Handshake,
    /// The process ran out of file descriptors (EMFILE/ENFILE).
    Files,
    /// Anything else.
    Other,
}

impl FailCause {
    /// The cause as a `connections.failed_by_cause` key: `refused`, `timeout`, `tls`,
    /// `dns`, `http_<status>`, `bad_accept`, `handshake`, `emfile`, `other`.
    pub fn as_cause(self) -> String {
        match self {
            FailCause::Refused => "refused".into(),
            FailCause::Timeout => "timeout".into(),
            FailCause::Tls => "tls".into(),
            FailCause::Dns => "dns".into(),
            FailCause::Http(s) => format!("http_{s}"),
            FailCause::BadAccept => "bad_accept".into(),
            FailCause::Handshake => "handshake".into(),
            FailCause::Files => "emfile".into(),
            FailCause::Other => "other".into(),
        }
    }

    /// The cause as an error kind: `connect_refused`, `connect_timeout`, `tls`, `dns`,
    /// `http_<status>`, `connect_bad_accept`, `connect_handshake`, `connect_emfile`,
    /// `connect_other`. Distinct from [`ErrorKind::Timeout`] on purpose:
    /// a slow handshake and a missing reply are different problems.
    pub fn as_error_kind(self) -> String {
        match self {
            FailCause::Refused => "connect_refused".into(),
            FailCause::Timeout => "connect_timeout".into(),
            FailCause::Other => "connect_other".into(),
            FailCause::BadAccept => "connect_bad_accept".into(),
            FailCause::Handshake => "connect_handshake".into(),
            FailCause::Files => "connect_emfile".into(),
            other => other.as_cause(),
        }
    }
}
