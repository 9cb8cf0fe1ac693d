//! Rooms (`join_room`, `leave_room`) and data streams (`subscribe`, `unsubscribe`): what a
//! connection holds, each bounded by the subscriptions limit.

use serde::Serialize;

use super::streams::{Spec, Stream};
use super::wire::{frame, id_ok, Code, Data, Details, Failure, Sid};
use super::Session;
use crate::session::Cx;

#[derive(Serialize)]
struct JoinedData<'a> {
    room_id: &'a str,
    member_count: usize,
    permissions: [&'static str; 2],
}

impl Session {
    /// The id of the room a frame names, or the error reply.
    fn room<'d>(&mut self, id: &str, data: &'d Data<'_>, cx: &mut Cx<'_>) -> Option<&'d str> {
        let room = data.room_id.as_deref().filter(|r| id_ok(r));
        if room.is_none() {
            let text = "data.room_id must be a string of 1 to 256 characters";
            let f = Failure::new(Code::InvalidMessageFormat, text, Some(id));
            self.fail(f.with(Details::field("data.room_id")), cx);
        }
        room
    }

    pub(super) fn join(&mut self, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        let Some(room) = self.room(id, data, cx) else {
            return;
        };
        if !cx.is_member(room) && cx.rooms().count() >= self.max_subscriptions {
            let text = format!("at most {} rooms per connection", self.max_subscriptions);
            let details = Details {
                limit: Some(self.max_subscriptions as u64),
                ..Details::default()
            };
            return self.fail(
                Failure::new(Code::SubscriptionFailed, text, Some(id)).with(details),
                cx,
            );
        }
        let member_count = cx.join(room);
        let data = JoinedData {
            room_id: room,
            member_count,
            permissions: ["read", "write"],
        };
        cx.send(frame("room_joined", Sid("rj", self.next_id()), data));
    }

    pub(super) fn leave(&mut self, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        let Some(room) = self.room(id, data, cx) else {
            return;
        };
        if !cx.leave(room) {
            let text = format!("not in room '{room}'");
            self.fail(
                Failure::new(Code::RoomNotFound, text, Some(id))
                    .with(Details::field("data.room_id")),
                cx,
            );
        }
    }

    pub(super) fn subscribe(&mut self, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        let (Some(kind), Some(resource)) = (
            data.stream_type,
            data.resource_id.as_deref().filter(|r| id_ok(r)),
        ) else {
            let text =
                "subscribe needs data.stream_type and a data.resource_id of 1 to 256 characters";
            let f = Failure::new(Code::InvalidMessageFormat, text, Some(id));
            return self.fail(f.with(Details::field("data.resource_id")), cx);
        };
        let failed = |text: String| Failure::new(Code::SubscriptionFailed, text, Some(id));
        if self.streams.iter().any(|s| s.id == id) {
            return self.fail(failed(format!("subscription '{id}' already exists")), cx);
        }
        if self.streams.len() >= self.max_subscriptions {
            let text = format!(
                "at most {} stream subscriptions per connection",
                self.max_subscriptions
            );
            let details = Details {
                limit: Some(self.max_subscriptions as u64),
                ..Details::default()
            };
            return self.fail(failed(text).with(details), cx);
        }
        let options = data.options.unwrap_or_default();
        let spec = Spec {
            kind,
            resource: resource.to_owned(),
            min_severity: data.filters.and_then(|f| f.min_severity),
            buffer_size: options.buffer_size,
            batch_interval_ms: options.batch_interval,
        };
        // Streams sample at the server's event rate (`--events`).
        let rate = cx.config.events_per_sec;
        let stream = Stream::new(id.to_owned(), spec, rate, cx.now);
        self.streams.push(stream.with_seq(!cx.config.strict_doc));
        self.refresh();
    }

    pub(super) fn unsubscribe(&mut self, id: &str, data: &Data<'_>, cx: &mut Cx<'_>) {
        let Some(sub) = data.subscription_id.as_deref() else {
            let f = Failure::new(
                Code::InvalidMessageFormat,
                "unsubscribe needs data.subscription_id",
                Some(id),
            );
            return self.fail(f.with(Details::field("data.subscription_id")), cx);
        };
        match self.streams.iter().position(|s| s.id == sub) {
            Some(i) => {
                self.streams.swap_remove(i);
                self.refresh();
            }
            None => {
                let text = format!("no subscription '{sub}' on this connection");
                let f = Failure::new(Code::SubscriptionFailed, text, Some(id));
                self.fail(f.with(Details::field("data.subscription_id")), cx);
            }
        }
    }
}
