//! Which code serves each protocol: admission (auth, per-client limits) and event generation.

use rand::rngs::ThreadRng;

use crate::session::{Admitted, Proto, Refusal, Upgrade};
use crate::{echo, hexabase, kite, Config};

/// Builds one generated event for a room with a sequence number; `None` when the room
/// has no generated events.
pub(crate) type EventFn = fn(&str, u64, &mut ThreadRng) -> Option<String>;

/// Decides an upgrade for `proto`: a session, or the HTTP refusal.
pub(crate) fn admit(proto: Proto, up: &Upgrade<'_>, config: &Config) -> Result<Admitted, Refusal> {
    match proto {
        Proto::Kite => kite::admit(up, config),
        Proto::Hexabase => hexabase::admit(up, config),
        Proto::Conformance => Ok(echo::admit()),
        // Not served yet: answered like an unknown path.
        _ => Err(Refusal {
            status: 404,
            reason: "not_served",
            body: format!("{} is not served yet\n", proto.name()),
        }),
    }
}

/// The event generator of `proto`, if it generates events.
pub(crate) fn events(proto: Proto) -> Option<EventFn> {
    match proto {
        Proto::Kite => Some(kite::events::event),
        Proto::Hexabase => Some(hexabase::events::event),
        _ => None,
    }
}
