//! What a request that succeeded answers through its ack callback, when it gave one.

use serde::Serialize;

use super::{PeerId, RoomId};

/// The answer to `create-room` or `join-room`:
/// `{"roomId": "...", "created": true|false, "peerId": "..."}`; `peerId` is the id the
/// other members know the sender by, which a page binds its sealed signaling to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entered<'a> {
    room_id: &'a str,
    created: bool,
    peer_id: &'a str,
}

impl<'a> Entered<'a> {
    pub(crate) fn new(room: &'a RoomId, created: bool, peer: &'a PeerId) -> Self {
        Self {
            room_id: room.as_str(),
            created,
            peer_id: peer.as_str(),
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
