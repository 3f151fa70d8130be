//! Room and peer ids, checked when parsed, and the Socket.IO room names derived from them
//! (with a prefix per kind, so a chat room can never be named like a peer's own room).

use std::fmt;

/// URL-safe alphabet of nanoid, the shape of every id this server makes.
const ID_ALPHABET: [char; 64] = nanoid::alphabet::SAFE;
/// 10 characters of a 64-letter alphabet: 60 random bits, unguessable in practice.
const ROOM_ID_LEN: usize = 10;
/// Peer ids are never secrets, but they must not collide across a whole cluster.
const PEER_ID_LEN: usize = 16;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// `prefix` then `id`, in one allocation: built on every relay, where `format!` cost more
/// than the rest of the name handling.
fn prefixed(prefix: &str, id: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + id.len());
    name.push_str(prefix);
    name.push_str(id);
    name
}

/// A chat room id: 4 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RoomId(String);

impl RoomId {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        ((4..=64).contains(&s.len()) && s.chars().all(is_id_char)).then(|| Self(s.to_owned()))
    }

    pub(crate) fn random() -> Self {
        Self(nanoid::nanoid!(ROOM_ID_LEN, &ID_ALPHABET))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room that holds this chat room's members.
    pub(crate) fn socket_room(&self) -> String {
        prefixed("room:", &self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id a socket is known by to other members. Never the Engine.IO session id: whoever
/// knows that one can post packets as the socket over long-polling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PeerId(String);

impl PeerId {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        (s.len() == PEER_ID_LEN && s.chars().all(is_id_char)).then(|| Self(s.to_owned()))
    }

    pub(crate) fn random() -> Self {
        Self(nanoid::nanoid!(PEER_ID_LEN, &ID_ALPHABET))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room that holds only this peer's socket, so relays can address it
    /// (on this node or, through an adapter, on another).
    pub(crate) fn socket_room(&self) -> String {
        prefixed("peer:", &self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_accept_only_4_to_64_url_safe_characters() {
        for ok in ["abcd", "A-_9", &"x".repeat(64), "V1StGXR8_Z"] {
            assert!(RoomId::parse(ok).is_some(), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            "abc",
            &"x".repeat(65),
            "abc d",
            "abc/def",
            "room:abc",
            "ab\u{e9}cd",
            "a.bcd",
            "../../etc",
            "abcd\n",
        ] {
            assert!(RoomId::parse(bad).is_none(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn random_ids_have_the_documented_shape() {
        let room = RoomId::random();
        assert_eq!(room.as_str().len(), 10);
        assert_eq!(RoomId::parse(room.as_str()), Some(room));
        let peer = PeerId::random();
        assert_eq!(PeerId::parse(peer.as_str()), Some(peer));
    }

    #[test]
    fn chat_rooms_and_peer_rooms_never_share_a_socket_room_name() {
        let id = "abcdefghijklmnop";
        let room = RoomId::parse(id).unwrap();
        let peer = PeerId::parse(id).unwrap();
        assert_ne!(room.socket_room(), peer.socket_room());
    }
}
