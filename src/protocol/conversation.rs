//! One connection's conversation as a profile's semantic rules see it: the requests awaiting
//! a reply (`replies:`), the rooms held (`subscriptions:`), and the clock check's shortcut.
//! A live run keeps one per VU and `squall validate` one per recorded connection, so a
//! recording is judged by the same rules, in the same order, as the run would judge it.

use std::time::{Duration, SystemTime};

use super::fields::Fields;
use super::horizon::Horizon;
use super::pairing::Pending;
use super::rooms::Subscribed;
use super::{Profile, Violation};

/// An inbound frame's clock field, as the caller of [`Conversation::received`] has it.
#[derive(Debug, Clone, Copy)]
pub enum Stamp<'a> {
    /// Not read: it is read off the frame.
    Unread,
    /// Read already: the field's text, `None` when the frame has none.
    Read(Option<&'a str>),
}

/// What one connection has said so far.
#[derive(Debug, Default)]
pub struct Conversation {
    pending: Pending,
    rooms: Subscribed,
    horizon: Horizon,
}

impl Conversation {
    /// Forgets everything (a new connection).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.rooms.clear();
    }

    /// Notes an outbound frame of `kind`: a request to pair, a subscribe to hold.
    pub fn sent<F: Fields + ?Sized>(&mut self, p: &Profile, kind: Option<&str>, v: &F) {
        self.pending.sent(&p.replies, kind, v);
        if let Some(rules) = &p.subscriptions {
            self.rooms.sent(rules, kind, v);
        }
    }

    /// The findings beyond shape for an inbound frame of `kind`: stamped later than `now`
    /// (its arrival on the wall clock; `None`: not checked) plus `skew`, a reply to nothing
    /// pending, an event for no room held. `stamp`: the clock field as the caller has it.
    pub fn received<F: Fields + ?Sized>(
        &mut self,
        p: &Profile,
        kind: Option<&str>,
        v: &F,
        now: Option<SystemTime>,
        skew: Duration,
        stamp: Stamp<'_>,
    ) -> Vec<Violation> {
        let horizon = &mut self.horizon;
        let late = now.and_then(|now| match stamp {
            Stamp::Read(stamp) => p.check_stamp(kind, stamp, now, skew, horizon),
            Stamp::Unread => p.check_clock(kind, v, now, skew, horizon),
        });
        let unpaired = self.pending.received(&p.replies, kind, v);
        let rules = p.subscriptions.as_ref();
        let stray = rules.and_then(|r| self.rooms.received(r, kind, v));
        late.into_iter().chain(unpaired).chain(stray).collect()
    }
}
