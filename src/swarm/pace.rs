//! Pipelined requests (`pace`): the sending side of a VU under a schedule.
//!
//! Latency is measured from the *intended* send time, computed arithmetically from the
//! schedule (start + i / rate), so a stalled server cannot hide behind requests that were
//! never sent (coordinated omission). The service time, from the actual send, is kept
//! alongside so the two can be told apart.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use super::frame::Frame;
use super::io::Woke;
use super::matcher::Want;
use super::samples::Sample;
use super::vu::{check_out, payload_len, pick_weighted, record_latency, text_message, Flow, Vu};
use crate::metrics::ErrorKind;
use crate::protocol::pointer::IdKey;
use crate::scenario::plan::Pace;

/// A send due less than this before the hard stop may still have been on its way (the
/// pacer wakes a little late by design): it is not counted as missed.
const STOP_GRACE: Duration = Duration::from_millis(50);

/// Outstanding request: when it should have gone out, and when it did.
#[derive(Clone, Copy)]
struct Sent {
    intended: Instant,
    actual: Instant,
}

impl Vu {
    /// Runs a `pace` step.
    pub(super) async fn pace(&mut self, p: &Pace) -> Flow {
        if self.io.ws.is_none() {
            return self.lost();
        }
        let start = Instant::now();
        let interval = p.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let end = p.duration.map(|d| start + d);
        // In closed-loop mode (no rate) a request is intended when it goes out: `now`.
        let intended = |i: u64, now: Instant| match interval {
            Some(iv) => start + iv.mul_f64(i as f64),
            None => now,
        };
        // Requests the schedule asks for; `None` when only time bounds it (closed loop).
        let planned = match (p.count, p.duration, p.rate) {
            (Some(c), _, _) => Some(c),
            (None, Some(d), Some(r)) => Some((d.as_secs_f64() * r).floor() as u64),
            _ => None,
        };
        // Sends due by now: what a stop mid-schedule leaves owed.
        let due = || match (interval, planned) {
            (Some(iv), Some(p)) => {
                let late = start.elapsed().saturating_sub(STOP_GRACE);
                Some(p.min((late.as_secs_f64() / iv.as_secs_f64()) as u64 + 1))
            }
            _ => planned,
        };
        let wants: Vec<Want> = p
            .requests
            .iter()
            .map(|r| Want::render(&r.reply, &mut self.ctx))
            .collect();
        let within_us = p.within.as_micros() as u64;
        // Each outstanding request with the index of its kind in `p.requests`.
        let mut outstanding: FxHashMap<IdKey, (Sent, usize)> = FxHashMap::default();
        outstanding.reserve(p.in_flight as usize);
        let mut deadlines: VecDeque<(Instant, IdKey)> = VecDeque::new();
        let mut issued = 0u64;
        let rec = self.shared.rec.clone();
        let (shared, vu) = (self.shared.clone(), self.ctx.vu);
        // A request that would carry `null` for a missing capture is not sent, nor any after it.
        let mut skipped = false;
        loop {
            let now = Instant::now();
            let open = !skipped
                && p.count.is_none_or(|c| issued < c)
                && end.is_none_or(|e| now < e && intended(issued, now) < e);
            if !open && outstanding.is_empty() {
                break;
            }
            // Send everything due that the in-flight window allows, then flush once.
            let mut fed = false;
            while open
                && p.count.is_none_or(|c| issued < c)
                && outstanding.len() < p.in_flight as usize
                && (interval.is_none() || intended(issued, now) <= now)
                && end.is_none_or(|e| intended(issued, now) < e)
            {
                let r = pick_weighted(p.requests.iter().map(|r| r.weight), &mut self.ctx.rng);
                let req = &p.requests[r];
                if !self.render(&req.payload) {
                    self.skipped_send();
                    skipped = true;
                    break;
                }
                let sent = check_out(&mut self.io, &req.payload, &self.out, p.unchecked);
                let (key, kind) = (sent.id, sent.kind);
                let len = payload_len(&req.payload, &self.out);
                if !self.io.feed(text_message(&req.payload, &self.out)).await {
                    return self.pace_lost(planned, due(), issued, outstanding.len());
                }
                // One clock read per batch: the writes are only queued here, and the batch
                // goes out in the flush below.
                let sent = Sent {
                    intended: intended(issued, now),
                    actual: now,
                };
                {
                    let mut r = rec.borrow_mut();
                    r.frame_out(kind.as_deref(), len);
                    r.op();
                    r.request();
                }
                issued += 1;
                fed = true;
                match key {
                    Some(k) => {
                        deadlines.push_back((sent.actual + p.within, k.clone()));
                        outstanding.insert(k, (sent, r));
                    }
                    // A request without an id can never be matched: count it as timed out
                    // rather than waiting on it.
                    None => rec.borrow_mut().request_timed_out(Some(req.metric), 0),
                }
            }
            if fed {
                if !self.io.flush().await {
                    return self.pace_lost(planned, due(), issued, outstanding.len());
                }
                // The batch's clock read, taken before its writes (see `Vu::send`).
                self.last_send_at = Some(now);
            }
            // Sleep until the next send is due, the earliest reply deadline, or a reply.
            let mut wake = deadlines.front().map(|d| d.0);
            let mut scheduled = false;
            if open && outstanding.len() < p.in_flight as usize {
                if let Some(iv) = interval {
                    let next = start + iv.mul_f64(issued as f64);
                    scheduled = wake.is_none_or(|w| next <= w);
                    wake = Some(wake.map_or(next, |w| w.min(next)));
                }
            }
            let wake = match (wake, end) {
                (Some(w), _) => w,
                (None, Some(e)) if open => e,
                _ => Instant::now() + p.within,
            };
            let mut accept = |f: &Frame| {
                let Some(key) = f.id() else {
                    return false;
                };
                match outstanding.get(key) {
                    Some((_, r)) if wants[*r].matches(f) => {}
                    _ => return false,
                }
                let Some((s, r)) = outstanding.remove(key) else {
                    return false;
                };
                let at = f.at;
                // Closed loop: intended is the send itself. Paced: a send never goes out
                // before its intended time, so the latency includes the generator's own
                // lateness (reported apart, beside it).
                let from = s.intended.min(s.actual);
                let sample = Sample {
                    intended: from,
                    sent: s.actual,
                    received: at,
                    latency_us: at.duration_since(from).as_micros() as u64,
                    service_us: at.duration_since(s.actual).as_micros() as u64,
                };
                record_latency(&shared, vu, p.requests[r].metric, sample, f.text());
                rec.borrow_mut().replied();
                true
            };
            // A send's time on the worker's precise timer (within tens of microseconds, not
            // up to a millisecond late on tokio's tick); a reply deadline on tokio's.
            let mut woke = if scheduled {
                self.io.pump_on_schedule(wake, &mut accept).await
            } else {
                self.io.pump(wake, &mut accept).await
            };
            if let Woke::Matched = woke {
                woke = self
                    .io
                    .drain_ready(&mut accept)
                    .await
                    .unwrap_or(Woke::Deadline);
            }
            match woke {
                Woke::Matched | Woke::Deadline => {}
                Woke::Closed(_) => {
                    return self.pace_lost(planned, due(), issued, outstanding.len())
                }
                // Unsent and unanswered requests are counted, not dropped.
                Woke::Stop => return self.pace_lost(planned, due(), issued, outstanding.len()),
            }
            // Expire requests whose reply deadline has passed.
            let now = Instant::now();
            while deadlines
                .front()
                .is_some_and(|d| d.0 <= now || !outstanding.contains_key(&d.1))
            {
                if let Some((_, k)) = deadlines.pop_front() {
                    if let Some((_, r)) = outstanding.remove(&k) {
                        rec.borrow_mut()
                            .request_timed_out(Some(p.requests[r].metric), within_us);
                        let note = self.metric_note(Some(p.requests[r].metric));
                        self.sample_error(ErrorKind::Timeout, || {
                            format!("pace: no reply within {:?}{note}", p.within)
                        });
                        self.errors += 1;
                    }
                }
            }
        }
        // Sends the schedule wanted but that never happened (the window stayed full); those
        // after a skipped one were not the generator's to make.
        if let Some(planned) = planned.filter(|_| !skipped) {
            if planned > issued {
                rec.borrow_mut().missed(planned - issued);
            }
        }
        Flow::Next
    }

    /// Counts what the lost connection left unsent (all of `planned`) and unanswered; at
    /// the hard stop only the sends already `due` count as missed (later ones never were).
    fn pace_lost(
        &mut self,
        planned: Option<u64>,
        due: Option<u64>,
        issued: u64,
        outstanding: usize,
    ) -> Flow {
        let owed = if self.io.stopping() { due } else { planned };
        let mut r = self.shared.rec.borrow_mut();
        if let Some(owed) = owed {
            r.missed(owed.saturating_sub(issued));
        }
        // Requests in flight when the connection died (or the run stopped) never get a reply.
        r.unanswered(outstanding as u64);
        drop(r);
        self.errors += outstanding as u32;
        self.lost()
    }
}
