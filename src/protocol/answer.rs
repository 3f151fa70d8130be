//! What a request that succeeded answers through its ack callback, when it gave one.

use serde::Serialize;

use super::{PeerId, RoomId};

/// The answer to `create-room` or `join-room`:
/// `{"roomId": "...", "created": true|false, "peerId": "...", "resume": "..."}`; `peerId` is
/// the id the other members know the sender by, which a page binds its sealed signaling
/// to; `resume` (absent when resume is off) gets that id and its rooms back on reconnect.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entered<'a> {
    room_id: &'a str,
    created: bool,
    peer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<String>,
}

impl<'a> Entered<'a> {
    pub(crate) fn new(
        room: &'a RoomId,
        created: bool,
        peer: &'a PeerId,
        resume: Option<String>,
    ) -> Self {
        Self {
            room_id: room.as_str(),
            created,
            peer_id: peer.as_str(),
            resume,
        }
    }
}

/// The body of `resumed`: `{"peerId": "...", "rooms": [...], "resume": "..."}`, the peer id
/// and rooms the client got back and a fresh token for its next reconnect.
#[derive(Serialize)]
pub(crate) struct Resumed<'a> {
    #[serde(rename = "peerId")]
    pub(crate) peer_id: &'a str,
    pub(crate) rooms: Vec<&'a str>,
    pub(crate) resume: Option<String>,
}

/// The body of `resume-refused`: `{"error": "...", "reason": "..."}`.
#[derive(Serialize)]
pub(crate) struct ResumeRefused {
    pub(crate) error: &'static str,
    pub(crate) reason: &'static str,
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
