//! Room events: what a room's members receive, from the generator (`--events RATE`) or the
//! `room.publish` RPC. The document names no frame for them, so they travel as a one-sample
//! `stream_data` batch of `stream_type` `events` whose sample carries the room, the event
//! type, the per-room `seq` and the send time (see `docs/covetpy.md`, "Room events").

use rand::rngs::ThreadRng;
use rand::RngExt;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::wire::{frame, Sid, StreamType};
use crate::clock::now_rfc3339;
use crate::proto::Seq;

/// Ids of shared event frames (`evt_<n>`), counted server-wide since they go to many
/// connections at once.
static EVENT_IDS: AtomicU64 = AtomicU64::new(0);

/// `stream_data.data` with a batch of one.
#[derive(Serialize)]
struct RoomData<'a, D> {
    subscription_id: &'a str,
    stream_type: StreamType,
    resource_id: &'a str,
    batch: [RoomSample<'a, D>; 1],
}

/// The one sample of a room event.
#[derive(Serialize)]
struct RoomSample<'a, D> {
    /// The server's send time, RFC 3339 with microseconds.
    timestamp: &'a str,
    /// Per-room sequence number, from 1.
    seq: u64,
    room_id: &'a str,
    event_type: &'a str,
    data: D,
}

/// A room event frame: `room` (a valid id, already checked at join), per-room `seq`.
pub fn room_event<D: Serialize>(room: &str, seq: u64, event_type: &str, data: D) -> String {
    let timestamp = now_rfc3339();
    let body = RoomData {
        // A shared frame cannot carry each member's join id: the room id stands in.
        subscription_id: room,
        stream_type: StreamType::Events,
        resource_id: room,
        batch: [RoomSample {
            timestamp: &timestamp,
            seq,
            room_id: room,
            event_type,
            data,
        }],
    };
    frame(
        "stream_data",
        Sid("evt", EVENT_IDS.fetch_add(1, Relaxed) + 1),
        body,
    )
}

#[derive(Serialize)]
struct DataUpdate {
    field: &'static str,
    value: u32,
}

#[derive(Serialize)]
struct UserActivity {
    user_id: String,
    action: &'static str,
}

const FIELDS: [&str; 3] = ["status", "progress", "owner"];
const ACTIONS: [&str; 3] = ["viewed", "edited", "commented"];

/// One generated event for `room` (the `EventFn` of CovetPy): `data_update` or
/// `user_activity`, the event types the document's join filter names.
pub(crate) fn event(room: &str, seq: Seq, rng: &mut ThreadRng) -> Option<String> {
    // Room events are an extension as a whole: --strict-doc generates none
    // (`protocols::events`), so the number is always shown here.
    let seq = seq.n;
    Some(if rng.random_bool(0.5) {
        let data = DataUpdate {
            field: FIELDS[rng.random_range(0..FIELDS.len())],
            value: rng.random_range(0..1000),
        };
        room_event(room, seq, "data_update", data)
    } else {
        let data = UserActivity {
            user_id: format!("user_{}", rng.random_range(1..1000u32)),
            action: ACTIONS[rng.random_range(0..ACTIONS.len())],
        };
        room_event(room, seq, "user_activity", data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_room_and_seq() {
        let text = event("project_1", Seq::shown(9), &mut rand::rng()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "stream_data");
        assert_eq!(v["data"]["stream_type"], "events");
        assert_eq!(v["data"]["resource_id"], "project_1");
        let sample = &v["data"]["batch"][0];
        assert_eq!(sample["seq"], 9);
        assert_eq!(sample["room_id"], "project_1");
        assert_eq!(sample["timestamp"].as_str().unwrap().len(), 27);
    }
}
