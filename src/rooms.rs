//! Room and peer ids, and the membership table that decides who may signal whom.
//!
//! Unit-tested without sockets. Socket.IO room names are derived here too, with a prefix
//! per kind, so a chat room can never be named like a peer's private room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

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
pub struct RoomId(String);

impl RoomId {
    pub fn parse(s: &str) -> Option<Self> {
        ((4..=64).contains(&s.len()) && s.chars().all(is_id_char)).then(|| Self(s.to_owned()))
    }

    pub fn random() -> Self {
        Self(nanoid::nanoid!(ROOM_ID_LEN, &ID_ALPHABET))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room that holds this chat room's members.
    pub fn socket_room(&self) -> String {
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
pub struct PeerId(String);

impl PeerId {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == PEER_ID_LEN && s.chars().all(is_id_char)).then(|| Self(s.to_owned()))
    }

    pub fn random() -> Self {
        Self(nanoid::nanoid!(PEER_ID_LEN, &ID_ALPHABET))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room that holds only this peer's socket, so relays can address it
    /// (on this node or, through an adapter, on another).
    pub fn socket_room(&self) -> String {
        prefixed("peer:", &self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is in which room. A cheap handle over shared state.
///
/// A plain std mutex is fine: it is held only for a few map operations, never across an
/// await.
#[derive(Debug, Clone, Default)]
pub struct Rooms {
    members: Arc<Mutex<HashMap<RoomId, HashSet<PeerId>>>>,
}

/// What `join_existing` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// The peer is now a member; the room had this many other members.
    Joined { others: usize },
    /// The peer was already a member: nothing changed.
    AlreadyMember,
    /// The room has no members, so it does not exist.
    NoSuchRoom,
    /// The room already has the most members allowed; nothing changed.
    Full,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, HashSet<PeerId>>> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later request, so keep serving.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a new room with a fresh random id and `peer` as its only member.
    pub fn create(&self, peer: &PeerId) -> RoomId {
        let mut map = self.lock();
        loop {
            let id = RoomId::random();
            if !map.contains_key(&id) {
                map.insert(id.clone(), HashSet::from([peer.clone()]));
                return id;
            }
        }
    }

    /// Adds `peer` to `room` if the room exists and has fewer than `max` members.
    pub fn join_existing(&self, room: &RoomId, peer: &PeerId, max: usize) -> Join {
        let mut map = self.lock();
        match map.get_mut(room) {
            None => Join::NoSuchRoom,
            Some(members) if members.contains(peer) => Join::AlreadyMember,
            Some(members) if members.len() >= max => Join::Full,
            Some(members) => {
                let others = members.len();
                members.insert(peer.clone());
                Join::Joined { others }
            }
        }
    }

    /// Removes `peer` from `room`; the room is forgotten when it empties.
    pub fn leave(&self, room: &RoomId, peer: &PeerId) {
        let mut map = self.lock();
        if let Some(members) = map.get_mut(room) {
            members.remove(peer);
            if members.is_empty() {
                map.remove(room);
            }
        }
    }

    /// Whether `target` is a member of any of `rooms`.
    pub fn any_has_member(&self, rooms: &[RoomId], target: &PeerId) -> bool {
        let map = self.lock();
        rooms
            .iter()
            .any(|r| map.get(r).is_some_and(|m| m.contains(target)))
    }

    /// Number of rooms with at least one member.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many rooms have each number of members.
    pub fn sizes(&self) -> BTreeMap<usize, usize> {
        let mut sizes = BTreeMap::new();
        for members in self.lock().values() {
            *sizes.entry(members.len()).or_default() += 1;
        }
        sizes
    }

    /// Members of `room`, empty when it does not exist.
    pub fn members(&self, room: &RoomId) -> Vec<PeerId> {
        self.lock()
            .get(room)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
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

    #[test]
    fn join_only_enters_existing_rooms_and_reports_other_members() {
        let rooms = Rooms::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let unknown = RoomId::parse("nosuchroom").unwrap();
        assert_eq!(rooms.join_existing(&unknown, &b, 8), Join::NoSuchRoom);
        assert!(rooms.is_empty());

        let id = rooms.create(&a);
        assert_eq!(rooms.join_existing(&id, &b, 8), Join::Joined { others: 1 });
        assert_eq!(rooms.join_existing(&id, &b, 8), Join::AlreadyMember);
        assert_eq!(rooms.members(&id).len(), 2);
    }

    #[test]
    fn a_full_room_refuses_newcomers_but_not_its_members() {
        let rooms = Rooms::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let id = rooms.create(&a);
        assert_eq!(rooms.join_existing(&id, &b, 2), Join::Joined { others: 1 });
        assert_eq!(rooms.join_existing(&id, &c, 2), Join::Full);
        assert_eq!(rooms.join_existing(&id, &b, 2), Join::AlreadyMember);
        assert_eq!(rooms.members(&id).len(), 2);
    }

    #[test]
    fn a_room_is_forgotten_when_its_last_member_leaves() {
        let rooms = Rooms::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let id = rooms.create(&a);
        rooms.join_existing(&id, &b, 8);
        rooms.leave(&id, &a);
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms.sizes(), BTreeMap::from([(1, 1)]));
        rooms.leave(&id, &b);
        assert!(rooms.is_empty());
        assert!(rooms.sizes().is_empty());
        assert_eq!(rooms.join_existing(&id, &a, 8), Join::NoSuchRoom);
    }

    #[test]
    fn membership_check_needs_a_shared_room() {
        let rooms = Rooms::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let ab = rooms.create(&a);
        rooms.join_existing(&ab, &b, 8);
        let c_room = rooms.create(&c);
        assert!(rooms.any_has_member(std::slice::from_ref(&ab), &b));
        assert!(!rooms.any_has_member(std::slice::from_ref(&ab), &c));
        assert!(!rooms.any_has_member(&[c_room], &a));
        assert!(!rooms.any_has_member(&[], &a));
    }
}
