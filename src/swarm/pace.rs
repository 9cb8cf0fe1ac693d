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
use super::io::{Accept, Woke};
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

impl Sent {
    /// The latency sample of a reply received `at`. Closed loop: intended is the send
    /// itself. Paced: a send never goes out before its intended time, so the latency
    /// includes the generator's own lateness (reported apart, beside it).
    fn answered(&self, at: Instant) -> Sample {
        let from = self.intended.min(self.actual);
        Sample {
            intended: from,
            sent: self.actual,
            received: at,
            latency_us: at.duration_since(from).as_micros() as u64,
            service_us: at.duration_since(self.actual).as_micros() as u64,
        }
    }
}

/// The schedule of a `pace` step and its requests in flight: when each send is intended,
/// which requests await a reply, and until when.
struct Pacer<'p> {
    p: &'p Pace,
    start: Instant,
    /// Time between intended sends; `None` in closed-loop mode (no rate).
    interval: Option<Duration>,
    end: Option<Instant>,
    /// Requests the schedule asks for; `None` when only time bounds it (closed loop).
    planned: Option<u64>,
    /// Requests sent so far.
    issued: u64,
    /// Each outstanding request with the index of its kind in `p.requests`.
    outstanding: FxHashMap<IdKey, (Sent, usize)>,
    /// Reply deadlines in send order (a replied request's entry is skipped when reached).
    deadlines: VecDeque<(Instant, IdKey)>,
}

impl<'p> Pacer<'p> {
    fn new(p: &'p Pace, start: Instant) -> Self {
        let mut outstanding = FxHashMap::default();
        outstanding.reserve(p.in_flight as usize);
        Pacer {
            p,
            start,
            interval: p.rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            end: p.duration.map(|d| start + d),
            planned: match (p.count, p.duration, p.rate) {
                (Some(c), _, _) => Some(c),
                (None, Some(d), Some(r)) => Some((d.as_secs_f64() * r).floor() as u64),
                _ => None,
            },
            issued: 0,
            outstanding,
            deadlines: VecDeque::new(),
        }
    }

    /// When request `i` is intended to go out. In closed-loop mode (no rate) a request is
    /// intended when it goes out: `now`.
    fn intended(&self, i: u64, now: Instant) -> Instant {
        match self.interval {
            Some(iv) => self.start + iv.mul_f64(i as f64),
            None => now,
        }
    }

    /// Sends due by now: what a stop mid-schedule leaves owed.
    fn due(&self) -> Option<u64> {
        match (self.interval, self.planned) {
            (Some(iv), Some(p)) => {
                let late = self.start.elapsed().saturating_sub(STOP_GRACE);
                Some(p.min((late.as_secs_f64() / iv.as_secs_f64()) as u64 + 1))
            }
            _ => self.planned,
        }
    }

    /// Whether the schedule still sends: nothing skipped, count and end not reached.
    fn open(&self, now: Instant, skipped: bool) -> bool {
        !skipped
            && self.p.count.is_none_or(|c| self.issued < c)
            && self
                .end
                .is_none_or(|e| now < e && self.intended(self.issued, now) < e)
    }

    /// Whether the next request may go out now: the window has room and it is due.
    fn may_send(&self, now: Instant) -> bool {
        self.p.count.is_none_or(|c| self.issued < c)
            && self.outstanding.len() < self.p.in_flight as usize
            && (self.interval.is_none() || self.intended(self.issued, now) <= now)
            && self.end.is_none_or(|e| self.intended(self.issued, now) < e)
    }

    /// Counts the next request as sent (its write queued at `now`).
    fn issue(&mut self, now: Instant) -> Sent {
        let sent = Sent {
            intended: self.intended(self.issued, now),
            actual: now,
        };
        self.issued += 1;
        sent
    }

    /// Awaits the reply to request kind `r` sent as `sent`, under `key`, until its deadline.
    fn await_reply(&mut self, key: IdKey, sent: Sent, r: usize) {
        self.deadlines
            .push_back((sent.actual + self.p.within, key.clone()));
        self.outstanding.insert(key, (sent, r));
    }

    /// When to wake: the next send due (`true`: a scheduled send, timed on the precise
    /// timer), the earliest reply deadline, or the step's end.
    fn wake(&self, open: bool) -> (Instant, bool) {
        let mut wake = self.deadlines.front().map(|d| d.0);
        let mut scheduled = false;
        if open && self.outstanding.len() < self.p.in_flight as usize {
            if let Some(iv) = self.interval {
                let next = self.start + iv.mul_f64(self.issued as f64);
                scheduled = wake.is_none_or(|w| next <= w);
                wake = Some(wake.map_or(next, |w| w.min(next)));
            }
        }
        let wake = match (wake, self.end) {
            (Some(w), _) => w,
            (None, Some(e)) if open => e,
            _ => Instant::now() + self.p.within,
        };
        (wake, scheduled)
    }

    /// The request `f` answers, taken out of the outstanding ones: its send and kind.
    fn on_reply(&mut self, f: &Frame, wants: &[Want]) -> Option<(Sent, usize)> {
        let key = f.id()?;
        match self.outstanding.get(key) {
            Some((_, r)) if wants[*r].matches(f) => self.outstanding.remove(key),
            _ => None,
        }
    }

    /// The kind of the next request whose reply deadline has passed by `now`, taken out.
    fn next_expired(&mut self, now: Instant) -> Option<usize> {
        while self
            .deadlines
            .front()
            .is_some_and(|d| d.0 <= now || !self.outstanding.contains_key(&d.1))
        {
            if let Some((_, k)) = self.deadlines.pop_front() {
                if let Some((_, r)) = self.outstanding.remove(&k) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Sends the schedule wanted but that never happened (the window stayed full); those
    /// after a skipped one were not the generator's to make.
    fn missed(&self, skipped: bool) -> Option<u64> {
        let planned = self.planned.filter(|_| !skipped)?;
        (planned > self.issued).then(|| planned - self.issued)
    }
}

/// When VU `vu`'s schedule starts: `now`, or with a `spread` (see [`Pace::spread`]) the
/// first instant from `now` on that lies its share of an interval past a whole number of
/// intervals since `run_start`.
fn schedule_start(p: &Pace, now: Instant, run_start: Instant, vu: u64) -> Instant {
    let Some(rate) = p.rate.filter(|_| p.spread > 1) else {
        return now;
    };
    let iv = 1.0 / rate;
    let phase = (vu.saturating_sub(1) % p.spread) as f64 / p.spread as f64 * iv;
    let since = now.saturating_duration_since(run_start).as_secs_f64();
    let k = ((since - phase) / iv).ceil().max(0.0);
    run_start + Duration::from_secs_f64(phase + k * iv)
}

impl Vu {
    /// Runs a `pace` step.
    pub(super) async fn pace(&mut self, p: &Pace) -> Flow {
        if self.io.ws.is_none() {
            return self.lost();
        }
        let start = schedule_start(p, Instant::now(), self.shared.start, self.ctx.vu);
        let mut pacer = Pacer::new(p, start);
        let wants: Vec<Want> = p
            .requests
            .iter()
            .map(|r| Want::render(&r.reply, &mut self.ctx))
            .collect();
        let rec = self.shared.rec.clone();
        let (shared, vu) = (self.shared.clone(), self.ctx.vu);
        // A request that would carry `null` for a missing capture is not sent, nor any after it.
        let mut skipped = false;
        loop {
            let now = Instant::now();
            let open = pacer.open(now, skipped);
            if !open && pacer.outstanding.is_empty() {
                break;
            }
            // Send everything due that the in-flight window allows, then flush once.
            let fed = if open {
                match self.pace_feed(&mut pacer, &mut skipped, now).await {
                    Some(fed) => fed,
                    None => return self.pace_lost(&pacer),
                }
            } else {
                false
            };
            if fed {
                if !self.io.flush().await {
                    return self.pace_lost(&pacer);
                }
                // The batch's clock read, taken before its writes (see `Vu::send`).
                self.last_send_at = Some(now);
            }
            // Sleep until the next send is due, the earliest reply deadline, or a reply.
            let (wake, scheduled) = pacer.wake(open);
            let mut accept = |f: &Frame| {
                let Some((s, r)) = pacer.on_reply(f, &wants) else {
                    return false;
                };
                let sample = s.answered(f.at);
                record_latency(&shared, vu, p.requests[r].metric, sample, f.text());
                rec.borrow_mut().replied();
                true
            };
            match self.pace_pump(wake, scheduled, &mut accept).await {
                Woke::Matched | Woke::Deadline => {}
                // Unsent and unanswered requests are counted, not dropped.
                Woke::Closed(_) | Woke::Stop => return self.pace_lost(&pacer),
            }
            self.pace_expire(&mut pacer, Instant::now());
        }
        if let Some(missed) = pacer.missed(skipped) {
            rec.borrow_mut().missed(missed);
        }
        Flow::Next
    }

    /// Waits until `wake` (a send on the worker's precise timer when `scheduled`, within tens
    /// of microseconds rather than up to a millisecond late on tokio's tick; a reply deadline
    /// on tokio's) or a reply, then takes the replies already read.
    async fn pace_pump(&mut self, wake: Instant, scheduled: bool, accept: &mut Accept<'_>) -> Woke {
        let woke = if scheduled {
            self.io.pump_on_schedule(wake, accept).await
        } else {
            self.io.pump(wake, accept).await
        };
        match woke {
            Woke::Matched => self.io.drain_ready(accept).await.unwrap_or(Woke::Deadline),
            other => other,
        }
    }

    /// Counts the requests whose reply deadline passed by `now` as timed out.
    fn pace_expire(&mut self, pacer: &mut Pacer<'_>, now: Instant) {
        let p = pacer.p;
        let within_us = p.within.as_micros() as u64;
        while let Some(r) = pacer.next_expired(now) {
            let metric = p.requests[r].metric;
            self.shared
                .rec
                .borrow_mut()
                .request_timed_out(Some(metric), within_us);
            let note = self.metric_note(Some(metric));
            self.sample_error(ErrorKind::Timeout, || {
                format!("pace: no reply within {:?}{note}", p.within)
            });
            self.errors += 1;
        }
    }

    /// Queues every request due that the in-flight window allows (the caller flushes):
    /// whether any was queued, or `None` when the connection was lost.
    async fn pace_feed(
        &mut self,
        pacer: &mut Pacer<'_>,
        skipped: &mut bool,
        now: Instant,
    ) -> Option<bool> {
        let p = pacer.p;
        let mut fed = false;
        while pacer.may_send(now) {
            let r = pick_weighted(p.requests.iter().map(|r| r.weight), &mut self.ctx.rng);
            let req = &p.requests[r];
            if !self.render(&req.payload) {
                self.skipped_send();
                *skipped = true;
                break;
            }
            let sent = check_out(&mut self.io, &req.payload, &self.out, p.unchecked);
            let (key, kind) = (sent.id, sent.kind);
            let len = payload_len(&req.payload, &self.out);
            if !self.io.feed(text_message(&req.payload, &self.out)).await {
                return None;
            }
            // One clock read per batch: the writes are only queued here, and the batch
            // goes out in the flush below.
            let sent = pacer.issue(now);
            {
                let mut r = self.shared.rec.borrow_mut();
                r.frame_out(kind.as_deref(), len);
                r.op();
                r.request();
            }
            fed = true;
            match key {
                Some(k) => pacer.await_reply(k, sent, r),
                // A request without an id can never be matched: count it as timed out
                // rather than waiting on it.
                None => self
                    .shared
                    .rec
                    .borrow_mut()
                    .request_timed_out(Some(req.metric), 0),
            }
        }
        Some(fed)
    }

    /// Counts what the lost connection left unsent (all of `planned`) and unanswered; at
    /// the hard stop only the sends already `due` count as missed (later ones never were).
    fn pace_lost(&mut self, pacer: &Pacer) -> Flow {
        let (issued, outstanding, due) = (pacer.issued, pacer.outstanding.len(), pacer.due());
        let owed = if self.io.stopping() {
            due
        } else {
            pacer.planned
        };
        let mut r = self.shared.rec.borrow_mut();
        if let Some(owed) = owed {
            r.missed(owed.saturating_sub(issued));
        }
        // Requests in flight when the connection died never get a reply; those the run's
        // stop cut off are unanswered but no error (`Recorder::cut_at_stop`).
        if self.io.stopping() {
            r.cut_at_stop(outstanding as u64);
        } else {
            r.unanswered(outstanding as u64);
            self.errors += outstanding as u32;
        }
        drop(r);
        self.lost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_schedules_interleave_on_the_run_clock() {
        let mut p = Pace {
            requests: Vec::new(),
            rate: Some(10.0),
            count: None,
            duration: None,
            in_flight: 1,
            within: Duration::from_secs(1),
            unchecked: false,
            spread: 0,
        };
        let t0 = Instant::now();
        let now = t0 + Duration::from_millis(1234);
        assert_eq!(schedule_start(&p, now, t0, 3), now);
        p.spread = 4;
        // 100 ms intervals in four slots of 25 ms: VU 3 takes the third, VU 6 the second.
        let at = |vu| (schedule_start(&p, now, t0, vu) - t0).as_secs_f64();
        assert!((at(3) - 1.250).abs() < 1e-6, "{}", at(3));
        assert!((at(6) - 1.325).abs() < 1e-6, "{}", at(6));
        assert!((at(1) - 1.300).abs() < 1e-6, "{}", at(1));
    }
}
