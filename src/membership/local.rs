//! Membership of a single node: who is in which room, in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Join, Limits, Resumed};
use crate::protocol::{PeerId, RoomId};

/// The room table. A cheap handle over shared state.
///
/// A plain std mutex is fine: it is held only for a few map operations, never across an
/// await.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalRooms {
    tables: Arc<Mutex<Tables>>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Each room's members; a room is forgotten when it empties.
    members: HashMap<RoomId, Vec<PeerId>>,
    /// Each peer's rooms, for peers in at least one.
    rooms_of: HashMap<PeerId, Vec<RoomId>>,
    /// Departed peers whose rooms are held for their resume, with the hold's number.
    held: HashMap<PeerId, u64>,
    /// The number of the last hold.
    holds: u64,
}

impl LocalRooms {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later request, so keep serving.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn create(&self, peer: &PeerId, limits: Limits) -> Join {
        let mut t = self.lock();
        if t.room_count(peer) >= limits.rooms_per_peer {
            return Join::TooManyRooms;
        }
        let room = loop {
            let id = RoomId::random();
            if !t.members.contains_key(&id) {
                break id;
            }
        };
        t.members.insert(room.clone(), vec![peer.clone()]);
        t.rooms_of
            .entry(peer.clone())
            .or_default()
            .push(room.clone());
        Join::Created(room)
    }

    pub(crate) fn join(&self, room: &RoomId, peer: &PeerId, limits: Limits) -> Join {
        let mut t = self.lock();
        if t.room_count(peer) >= limits.rooms_per_peer {
            return Join::TooManyRooms;
        }
        let Some(members) = t.members.get_mut(room) else {
            return Join::NoSuchRoom;
        };
        if members.contains(peer) {
            return Join::AlreadyMember;
        }
        if members.len() >= limits.room_size {
            return Join::Full;
        }
        let others = members.len();
        members.push(peer.clone());
        t.rooms_of
            .entry(peer.clone())
            .or_default()
            .push(room.clone());
        Join::Joined { others }
    }

    /// Removes `peer` from every room it is in; returns those rooms.
    pub(crate) fn leave_all(&self, peer: &PeerId) -> Vec<RoomId> {
        let mut t = self.lock();
        let rooms = t.rooms_of.remove(peer).unwrap_or_default();
        for room in &rooms {
            if let Some(members) = t.members.get_mut(room) {
                members.retain(|m| m != peer);
                if members.is_empty() {
                    t.members.remove(room);
                }
            }
        }
        rooms
    }

    /// Holds the rooms of `peer`, whose connection ended, for its resume; `None` when it is
    /// in no room. The number tells this hold from later ones.
    pub(crate) fn hold(&self, peer: &PeerId) -> Option<u64> {
        let mut t = self.lock();
        if !t.rooms_of.contains_key(peer) {
            return None;
        }
        t.holds += 1;
        let hold = t.holds;
        t.held.insert(peer.clone(), hold);
        Some(hold)
    }

    /// Leaves every room of `peer` if hold number `hold` still holds them (it did not
    /// resume); `None` when it did.
    pub(crate) fn end_hold(&self, peer: &PeerId, hold: u64) -> Option<Vec<RoomId>> {
        {
            let mut t = self.lock();
            if t.held.get(peer) != Some(&hold) {
                return None;
            }
            t.held.remove(peer);
        }
        Some(self.leave_all(peer))
    }

    /// Gives a held peer its rooms back.
    pub(crate) fn resume(&self, peer: &PeerId) -> Resumed {
        let mut t = self.lock();
        if t.held.remove(peer).is_some() {
            return Resumed::Rooms(t.rooms_of.get(peer).cloned().unwrap_or_default());
        }
        if t.rooms_of.contains_key(peer) {
            Resumed::InUse
        } else {
            Resumed::Gone
        }
    }

    /// Whether `a` and `b` are members of one room.
    pub(crate) fn share_a_room(&self, a: &PeerId, b: &PeerId) -> bool {
        let t = self.lock();
        match (t.rooms_of.get(a), t.rooms_of.get(b)) {
            (Some(a), Some(b)) => a.iter().any(|room| b.contains(room)),
            _ => false,
        }
    }

    /// The rooms of `peer`.
    pub(crate) fn rooms_of(&self, peer: &PeerId) -> Vec<RoomId> {
        self.lock().rooms_of.get(peer).cloned().unwrap_or_default()
    }

    /// How many rooms have each number of members.
    pub(crate) fn sizes(&self) -> BTreeMap<usize, usize> {
        let mut sizes = BTreeMap::new();
        for members in self.lock().members.values() {
            *sizes.entry(members.len()).or_default() += 1;
        }
        sizes
    }
}

impl Tables {
    fn room_count(&self, peer: &PeerId) -> usize {
        self.rooms_of.get(peer).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::test_support::{LIMITS, created};

    #[test]
    fn join_only_enters_existing_rooms_and_reports_other_members() {
        let rooms = LocalRooms::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let unknown = RoomId::parse("nosuchroom").unwrap();
        assert_eq!(rooms.join(&unknown, &b, LIMITS), Join::NoSuchRoom);
        assert!(rooms.sizes().is_empty());

        let id = created(rooms.create(&a, LIMITS));
        assert_eq!(rooms.join(&id, &b, LIMITS), Join::Joined { others: 1 });
        assert_eq!(rooms.join(&id, &b, LIMITS), Join::AlreadyMember);
        assert_eq!(rooms.sizes(), BTreeMap::from([(2, 1)]));
    }

    #[test]
    fn a_full_room_refuses_newcomers_but_not_its_members() {
        let rooms = LocalRooms::default();
        let limits = Limits {
            room_size: 2,
            ..LIMITS
        };
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let id = created(rooms.create(&a, limits));
        assert_eq!(rooms.join(&id, &b, limits), Join::Joined { others: 1 });
        assert_eq!(rooms.join(&id, &c, limits), Join::Full);
        assert_eq!(rooms.join(&id, &b, limits), Join::AlreadyMember);
        assert_eq!(rooms.sizes(), BTreeMap::from([(2, 1)]));
    }

    #[test]
    fn a_peer_enters_at_most_rooms_per_peer_rooms() {
        let rooms = LocalRooms::default();
        let limits = Limits {
            rooms_per_peer: 2,
            ..LIMITS
        };
        let (a, b) = (PeerId::random(), PeerId::random());
        let other = created(rooms.create(&b, limits));
        created(rooms.create(&a, limits));
        created(rooms.create(&a, limits));
        assert_eq!(rooms.create(&a, limits), Join::TooManyRooms);
        assert_eq!(rooms.join(&other, &a, limits), Join::TooManyRooms);
        rooms.leave_all(&a);
        assert_eq!(rooms.join(&other, &a, limits), Join::Joined { others: 1 });
    }

    #[test]
    fn a_room_is_forgotten_when_its_last_member_leaves() {
        let rooms = LocalRooms::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let id = created(rooms.create(&a, LIMITS));
        rooms.join(&id, &b, LIMITS);
        assert_eq!(rooms.leave_all(&a), std::slice::from_ref(&id));
        assert_eq!(rooms.sizes(), BTreeMap::from([(1, 1)]));
        assert_eq!(rooms.leave_all(&b), std::slice::from_ref(&id));
        assert!(rooms.sizes().is_empty());
        assert_eq!(rooms.join(&id, &a, LIMITS), Join::NoSuchRoom);
        assert!(rooms.leave_all(&a).is_empty());
    }

    #[test]
    fn a_held_peer_resumes_once_and_an_ended_hold_leaves() {
        let rooms = LocalRooms::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let id = created(rooms.create(&a, LIMITS));
        rooms.join(&id, &b, LIMITS);
        assert_eq!(rooms.resume(&a), Resumed::InUse);
        let first = rooms.hold(&a).unwrap();
        assert_eq!(rooms.resume(&a), Resumed::Rooms(vec![id.clone()]));
        assert_eq!(rooms.resume(&a), Resumed::InUse);
        // The first hold's end finds a resumed peer, held again since: nothing changes.
        let second = rooms.hold(&a).unwrap();
        assert_eq!(rooms.end_hold(&a, first), None);
        assert!(rooms.share_a_room(&a, &b));
        assert_eq!(rooms.end_hold(&a, second), Some(vec![id]));
        assert_eq!(rooms.resume(&a), Resumed::Gone);
        assert_eq!(rooms.hold(&a), None);
    }

    #[test]
    fn only_peers_in_one_room_share_a_room() {
        let rooms = LocalRooms::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let ab = created(rooms.create(&a, LIMITS));
        rooms.join(&ab, &b, LIMITS);
        created(rooms.create(&c, LIMITS));
        assert!(rooms.share_a_room(&a, &b) && rooms.share_a_room(&b, &a));
        assert!(!rooms.share_a_room(&a, &c));
        assert!(!rooms.share_a_room(&a, &PeerId::random()));
        rooms.leave_all(&b);
        assert!(!rooms.share_a_room(&a, &b));
    }
}
