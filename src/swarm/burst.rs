//! Bursts: `count` messages as fast as the socket takes them, or at a rate; optionally
//! expecting the server to refuse them (`rejected:`), timed from the burst's first send to
//! the first refusal (a matching frame, or the server closing the connection).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::frame::Frame;
use super::io::Woke;
use super::matcher::Want;
use super::samples::Sample;
use super::vu::{check_out, payload_len, text_message, Flow, Vu};
use crate::metrics::ErrorKind;
use crate::scenario::plan::{Payload, RejectBy, Rejected};

/// A `burst` step's settings.
pub(super) struct Burst<'a> {
    pub payload: &'a Payload,
    pub count: u64,
    pub rate: Option<f64>,
    pub unchecked: bool,
    pub rejected: Option<&'a Rejected>,
}

/// Why the sending loop stopped early.
enum Cut {
    /// The connection closed (with this code, if the peer sent one).
    Closed(Option<u16>),
    /// The run is stopping.
    Stop,
    /// A message would carry `null` where a capture belongs: the rest is not sent.
    Skipped,
}

impl Vu {
    /// Runs a `burst` step.
    pub(super) async fn burst(&mut self, b: Burst<'_>) -> Flow {
        if self.io.ws.is_none() {
            return self.lost();
        }
        let start = Instant::now();
        let want = match b.rejected.map(|r| &r.by) {
            Some(RejectBy::Frame(m)) => Some(Want::render(m, &mut self.ctx)),
            _ => None,
        };
        let refused: Cell<Option<Instant>> = Cell::new(None);
        // The first refusal's text, for the samples file only.
        let keep_text = self.shared.samples.is_some();
        let mut refusal = String::new();
        // Every refusal is taken (kept out of the mailbox); the first one is timed.
        let mut accept = |f: &Frame| {
            let hit = want.as_ref().is_some_and(|w| w.matches(f));
            if hit && refused.get().is_none() {
                refused.set(Some(f.at));
                if keep_text {
                    refusal.push_str(f.text());
                }
            }
            hit
        };
        let close_ends = matches!(b.rejected.map(|r| &r.by), Some(RejectBy::Close(_)));
        if let Err(cut) = self.burst_send(&b, start, close_ends, &mut accept).await {
            return self.burst_cut(&b, start, close_ends, cut);
        }
        let Some(rej) = b.rejected else {
            return Flow::Next;
        };
        // Sent everything; now the refusal must come within `within`.
        let deadline = Instant::now() + rej.within;
        while refused.get().is_none() {
            match self.io.pump(deadline, &mut accept).await {
                Woke::Matched => {}
                Woke::Deadline => {
                    let waited = deadline.saturating_duration_since(start).as_micros() as u64;
                    self.shared.rec.borrow_mut().timeout(rej.metric, waited);
                    self.errors += 1;
                    return Flow::Next;
                }
                Woke::Closed(code) if close_ends => return self.refused_by_close(&b, start, code),
                Woke::Closed(_) => return self.lost(),
                Woke::Stop => return Flow::Stop,
            }
        }
        if let (Some(at), Some(m)) = (refused.get(), rej.metric) {
            self.latency(m, from_start(start, at), &refusal);
        }
        Flow::Next
    }

    /// A burst cut short after `sent` messages: by the run stopping, a skipped send, or the
    /// connection closing (the refusal, when `close_ends`).
    fn burst_cut(
        &mut self,
        b: &Burst<'_>,
        start: Instant,
        close_ends: bool,
        (cut, sent): (Cut, u64),
    ) -> Flow {
        match cut {
            Cut::Stop => Flow::Stop,
            // Counted as one skipped send; the rest of the burst is not the generator's miss.
            Cut::Skipped => Flow::Next,
            Cut::Closed(code) if close_ends => self.refused_by_close(b, start, code),
            Cut::Closed(_) => {
                self.shared.rec.borrow_mut().missed(b.count - sent);
                self.lost()
            }
        }
    }

    /// Sends the burst's messages; on a cut, also how many went out.
    async fn burst_send(
        &mut self,
        b: &Burst<'_>,
        start: Instant,
        close_ends: bool,
        accept: &mut dyn FnMut(&Frame) -> bool,
    ) -> Result<(), (Cut, u64)> {
        let rec = self.shared.rec.clone();
        let cut = |w: Woke, i: u64| match w {
            Woke::Stop => Err((Cut::Stop, i)),
            Woke::Closed(code) => Err((Cut::Closed(code), i)),
            _ => Ok(()),
        };
        for i in 0..b.count {
            if let Some(r) = b.rate {
                let due = start + Duration::from_secs_f64(i as f64 / r);
                loop {
                    match self.io.pump_on_schedule(due, &mut *accept).await {
                        Woke::Matched => continue,
                        w => cut(w, i)?,
                    }
                    break;
                }
            }
            if !self.render(b.payload) {
                self.skipped_send();
                return Err((Cut::Skipped, i));
            }
            let kind = check_out(&mut self.io, b.payload, &self.out, b.unchecked).kind;
            let len = payload_len(b.payload, &self.out);
            // Before the write, as in `Vu::send`.
            self.last_send_at = Some(Instant::now());
            if !self.io.feed(text_message(b.payload, &self.out)).await {
                return Err((Cut::Closed(None), i));
            }
            rec.borrow_mut().frame_out(kind.as_deref(), len);
            // Flush in batches (on every send when paced, or when a close is expected, so
            // the close is read before the next write) and read what came back meanwhile.
            if b.rate.is_some() || close_ends || i % 64 == 63 || i + 1 == b.count {
                if !self.io.flush().await {
                    return Err((Cut::Closed(None), i + 1));
                }
                if b.rate.is_none() {
                    if let Some(w) = self.io.drain_ready(&mut *accept).await {
                        cut(w, i + 1)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The server closed the connection, as `rejected: { close }` expects: right code or not.
    fn refused_by_close(&mut self, b: &Burst<'_>, start: Instant, code: Option<u16>) -> Flow {
        let Some(rej) = b.rejected else {
            return self.lost();
        };
        let wanted = match rej.by {
            RejectBy::Close(c) => c,
            RejectBy::Frame(_) => None,
        };
        if wanted.is_some() && code != wanted {
            self.shared
                .rec
                .borrow_mut()
                .error(ErrorKind::UnexpectedClose);
            self.sample_error(ErrorKind::UnexpectedClose, || {
                format!("burst: wanted close {wanted:?}, got {code:?}")
            });
            self.errors += 1;
        } else if let Some(m) = rej.metric {
            self.latency(m, from_start(start, Instant::now()), "");
        }
        Flow::Next
    }
}

/// A burst's refusal, timed from the burst's start (before its first send).
fn from_start(start: Instant, at: Instant) -> Sample {
    let us = at.duration_since(start).as_micros() as u64;
    Sample {
        intended: start,
        sent: start,
        received: at,
        latency_us: us,
        service_us: us,
    }
}
