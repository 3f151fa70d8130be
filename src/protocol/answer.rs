//! What a request that succeeded answers through its ack callback, when it gave one.

use serde::Serialize;

use super::RoomId;

/// The answer to `create-room` or `join-room`: `{"roomId": "...", "created": true|false}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entered<'a> {
    room_id: &'a str,
    created: bool,
}

impl<'a> Entered<'a> {
    pub(crate) fn new(room: &'a RoomId, created: bool) -> Self {
        Self {
            room_id: room.as_str(),
            created,
        }
    }
}

/// The answer to a relay: `{"ok": true}`; a struct, so no JSON value is built for the
/// many relays that ask for none.
#[derive(Serialize)]
pub(crate) struct Relayed {
    ok: bool,
}

impl Relayed {
    pub(crate) const OK: Self = Self { ok: true };
}
