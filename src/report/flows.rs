//! The report model's views of fan-out delivery and uploads, formatted once for every renderer.

use super::fmt::{fmt_bytes, rate};
use crate::results::Results;

/// Fan-out delivery over the run.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    /// Distinct sequence numbers received.
    pub received: u64,
    /// `1250.0/s` over the run.
    pub received_rate: String,
    /// Streams tracked (one per stream and connection).
    pub streams: u64,
    /// Numbers never received.
    pub gaps: u64,
    /// Frames after a higher number of their stream.
    pub reordered: u64,
    /// Repeats.
    pub duplicates: u64,
    /// Frames that could not be tracked.
    pub untracked: u64,
    /// Streams that started over after a jump past 2^20.
    pub resets: u64,
    /// `99.950%`, or `-` when nothing was received.
    pub completeness: String,
}

/// The uploads of one metric.
#[derive(Debug, Clone)]
pub struct UploadView {
    /// Metric name.
    pub metric: String,
    /// Started, completed, rejected (the expected error), failed.
    pub started: u64,
    /// Completed.
    pub completed: u64,
    /// Ended in their expected error.
    pub rejected: u64,
    /// Timed out, lost, or ended the wrong way.
    pub failed: u64,
    /// Cut by the hard stop.
    pub cut: u64,
    /// `12.6MB` of completed uploads.
    pub bytes: String,
    /// `8.40 MB/s` per uploader, or `-`.
    pub mbps: String,
}

/// The delivery view, when the run tracked delivery.
pub fn delivery(r: &Results) -> Option<DeliveryView> {
    let d = r.delivery.as_ref()?;
    Some(DeliveryView {
        received: d.received,
        received_rate: format!("{:.1}/s", rate(d.received, r.meta.duration_s)),
        streams: d.streams,
        gaps: d.gaps,
        reordered: d.reordered,
        duplicates: d.duplicates,
        untracked: d.untracked,
        resets: d.resets,
        completeness: d
            .completeness
            .map_or("-".into(), |c| format!("{:.3}%", c * 100.0)),
    })
}

/// One view per upload metric, by name.
pub fn uploads(r: &Results) -> Vec<UploadView> {
    r.uploads
        .iter()
        .map(|(metric, u)| UploadView {
            metric: metric.clone(),
            started: u.started,
            completed: u.completed,
            rejected: u.rejected,
            failed: u.failed,
            cut: u.cut,
            bytes: fmt_bytes(u.bytes as f64),
            mbps: u.mbps.map_or("-".into(), |m| format!("{m:.2} MB/s")),
        })
        .collect()
}
