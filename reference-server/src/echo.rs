//! The `conformance` route: echoes every text and binary message unchanged, for the
//! Autobahn test cases (RFC 6455). No auth, no rate limits; only the message size limit.

use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::session::{Admitted, Cx, Session};

struct Echo;

/// Every upgrade is admitted.
pub(crate) fn admit() -> Admitted {
    Admitted {
        session: Box::new(Echo),
        per_client: None,
    }
}

impl Session for Echo {
    fn open(&mut self, _cx: &mut Cx<'_>) {}

    fn text(&mut self, text: &Utf8Bytes, cx: &mut Cx<'_>) {
        cx.send_shared(text.clone());
    }

    fn binary(&mut self, data: &Bytes, cx: &mut Cx<'_>) {
        cx.send_binary(data.clone());
    }
}
