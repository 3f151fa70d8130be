//! The only door to rooms: who is in which room, the room-size and rooms-per-peer caps, and
//! the same-room check that gates every relay. The backend is hidden: memory on a single
//! node, Redis when several nodes share the rooms (whose upkeep the cluster asks for).

mod local;
mod redis;
#[cfg(test)]
mod redis_tests;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::redis_conn::Commands;

use crate::config::LimitsConfig;
use crate::error::Result;
use crate::protocol::{PeerId, RoomId};
use local::LocalRooms;
pub(crate) use redis::{BUS, BUS_LENGTH, NOTICES, Notice, Route};
use redis::{Leaves, RedisRooms, Tick};

/// The membership caps, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most members one room may have.
    pub(crate) room_size: usize,
    /// Most rooms one peer may be in.
    pub(crate) rooms_per_peer: usize,
}

impl Limits {
    pub(crate) fn new(config: &LimitsConfig) -> Self {
        Self {
            room_size: config.max_room_size,
            rooms_per_peer: config.max_rooms_per_socket,
        }
    }
}

/// The default caps, and the room a `create` made, for the backends' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Join, Limits};
    use crate::protocol::RoomId;

    pub(crate) const LIMITS: Limits = Limits {
        room_size: 8,
        rooms_per_peer: 4,
    };

    pub(crate) fn created(join: Join) -> RoomId {
        match join {
            Join::Created(room) => room,
            other => panic!("expected a new room, got {other:?}"),
        }
    }
}

/// What `create` or `join` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Join {
    /// A new room with the peer as its only member.
    Created(RoomId),
    /// The peer is now a member; the room had this many other members.
    Joined { others: usize },
    /// The peer was already a member: nothing changed.
    AlreadyMember,
    /// The room has no members, so it does not exist.
    NoSuchRoom,
    /// The room already has the most members allowed; nothing changed.
    Full,
    /// The peer is in the most rooms allowed; nothing changed.
    TooManyRooms,
}

/// What a resume found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// The peer was held (or its node died): it is this node's now, in these rooms.
    Rooms(Vec<RoomId>),
    /// The peer is connected through another socket.
    InUse,
    /// The peer left its rooms already (its leave was told), or was never in one.
    Gone,
}

/// The rooms a departing peer left.
#[derive(Debug)]
pub(crate) struct Left {
    /// The rooms to tell now: none while the leave is deferred.
    pub(crate) rooms: Vec<RoomId>,
    /// Redis could not be told; the backend retries and announces the leave itself.
    pub(crate) deferred: Option<crate::error::Error>,
}

/// The membership handle. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    backend: Backend,
    limits: Limits,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(LocalRooms),
    Redis(RedisRooms),
}

impl Membership {
    /// Rooms in this process's memory.
    pub(crate) fn local(limits: Limits) -> Self {
        Self {
            backend: Backend::Local(LocalRooms::default()),
            limits,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Makes a new room with a fresh random id and `peer` as its only member.
    pub(crate) async fn create(&self, peer: &PeerId) -> Result<Join> {
        match &self.backend {
            Backend::Local(rooms) => Ok(rooms.create(peer, self.limits)),
            Backend::Redis(rooms) => rooms.create(peer, self.limits).await,
        }
    }

    /// Adds `peer` to `room` if the room exists and both caps allow it.
    pub(crate) async fn join(&self, room: &RoomId, peer: &PeerId) -> Result<Join> {
        match &self.backend {
            Backend::Local(rooms) => Ok(rooms.join(room, peer, self.limits)),
            Backend::Redis(rooms) => rooms.join(room, peer, self.limits).await,
        }
    }

    /// Removes `peer` from every room it is in.
    pub(crate) async fn leave_all(&self, peer: &PeerId) -> Left {
        match &self.backend {
            Backend::Local(rooms) => Left {
                rooms: rooms.leave_all(peer),
                deferred: None,
            },
            Backend::Redis(rooms) => rooms.leave_all(peer).await,
        }
    }

    /// Holds the rooms of `peer`, whose connection ended, for its resume, instead of leaving
    /// them; `None` when it is in no room. The hold ends with [`Membership::end_hold`].
    pub(crate) fn hold(&self, peer: &PeerId) -> Option<u64> {
        match &self.backend {
            Backend::Local(rooms) => rooms.hold(peer),
            Backend::Redis(rooms) => rooms.hold(peer),
        }
    }

    /// At the end of the grace window: leaves every room of `peer` unless it resumed
    /// (here or on another node) since hold number `hold`; `None` when it did.
    pub(crate) async fn end_hold(&self, peer: &PeerId, hold: u64) -> Option<Left> {
        match &self.backend {
            Backend::Local(rooms) => rooms.end_hold(peer, hold).map(|rooms| Left {
                rooms,
                deferred: None,
            }),
            Backend::Redis(rooms) => rooms.end_hold(peer, hold).await,
        }
    }

    /// Makes `peer` this node's again, with its rooms, if it is held or its node died; with
    /// Redis the caller first made sure that no node has a socket of it.
    pub(crate) async fn resume(&self, peer: &PeerId) -> Result<Resumed> {
        match &self.backend {
            Backend::Local(rooms) => Ok(rooms.resume(peer)),
            Backend::Redis(rooms) => rooms.resume(peer).await,
        }
    }

    /// A leave whose announcement could not be sent: with Redis, the heartbeat tells its
    /// rooms again (see [`crate::once`]). In memory an emit fails only towards sockets that
    /// are closing, which nothing would reach.
    pub(crate) fn tell_later(&self, peer: &PeerId, rooms: Vec<RoomId>) {
        if let Backend::Redis(store) = &self.backend {
            store.tell_later(peer.clone(), rooms);
        }
    }

    /// Where a relay from `sender` to `target` goes, as far as this node knows: the
    /// same-room check before a relay, answered without waiting when it can be (rooms in
    /// memory, both peers on this node, or a target in the view of other nodes' peers).
    pub(crate) fn route(&self, sender: &PeerId, target: &PeerId) -> Route {
        match &self.backend {
            Backend::Local(rooms) if rooms.share_a_room(sender, target) => Route::Here,
            Backend::Local(_) => Route::NotShared,
            Backend::Redis(rooms) => rooms.route(sender, target),
        }
    }

    /// [`Membership::route`] when it answered [`Route::Ask`]: asks Redis.
    pub(crate) async fn locate(&self, sender: &PeerId, target: &PeerId) -> Result<Route> {
        match &self.backend {
            Backend::Local(_) => Ok(self.route(sender, target)),
            Backend::Redis(rooms) => rooms.locate(sender, target).await,
        }
    }

    /// The rooms of `peer`, a peer of this node.
    pub(crate) fn rooms_of(&self, peer: &PeerId) -> Vec<RoomId> {
        match &self.backend {
            Backend::Local(rooms) => rooms.rooms_of(peer),
            Backend::Redis(rooms) => rooms.rooms_of(peer),
        }
    }

    /// Whether `peer`, a peer of this node, is in one of `rooms`.
    pub(crate) fn is_in_one_of(&self, peer: &PeerId, rooms: &[RoomId]) -> bool {
        match &self.backend {
            Backend::Local(local) => local.rooms_of(peer).iter().any(|r| rooms.contains(r)),
            Backend::Redis(redis) => redis.is_in_one_of(peer, rooms),
        }
    }

    /// Whether other nodes share these rooms, so a peer may be connected elsewhere.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// The node is draining for a restart: with Redis, rooms its peers empty on the way out
    /// stay joinable for a while, so that their members find them again elsewhere. Memory
    /// rooms end with the process anyway.
    pub(crate) fn begin_drain(&self) {
        if let Backend::Redis(rooms) = &self.backend {
            rooms.begin_drain();
        }
    }

    /// How many rooms have each number of members (with Redis: in the whole cluster).
    pub(crate) async fn room_sizes(&self) -> Result<BTreeMap<usize, usize>> {
        match &self.backend {
            Backend::Local(rooms) => Ok(rooms.sizes()),
            Backend::Redis(rooms) => rooms.room_sizes().await,
        }
    }
}

/// This node's share of the rooms in Redis, as the cluster's heartbeat tends it, and the
/// [`Membership`] over those rooms. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct NodeRooms {
    rooms: RedisRooms,
}

impl NodeRooms {
    /// The rooms of node `id` in the Redis behind `conn`, under keys starting `prefix`; each
    /// command gives up after `timeout`.
    pub(crate) fn new(conn: Commands, prefix: &str, id: &str, timeout: Duration) -> Self {
        Self {
            rooms: RedisRooms::new(conn, prefix, id, timeout),
        }
    }

    /// Rooms in Redis, shared with every node of the cluster.
    pub(crate) fn membership(&self, limits: Limits) -> Membership {
        Membership {
            backend: Backend::Redis(self.rooms.clone()),
            limits,
        }
    }

    /// One heartbeat: refreshes this node's key (expiring after `ttl`) and sweeps dead
    /// nodes.
    pub(crate) async fn tick(&self, ttl: Duration) -> Result<Tick> {
        self.rooms.tick(ttl).await
    }

    /// Writes every membership of this node's peers back, after Redis lost them; returns
    /// how many.
    pub(crate) async fn register_again(&self) -> Result<usize> {
        self.rooms.register_again().await
    }

    /// Retries the leaves that failed; returns the leaves whose rooms are to be told now.
    pub(crate) async fn retry_leaves(&self) -> Leaves {
        self.rooms.retry_leaves().await
    }

    /// Forgets this node's peers and returns them, after the cluster declared it dead.
    pub(crate) fn forget_local_peers(&self) -> Vec<PeerId> {
        self.rooms.forget_local_peers()
    }

    /// The key of resume tokens that every node shares: the one in Redis, or `candidate`
    /// when there is none yet.
    pub(crate) async fn shared_key(&self, candidate: &str) -> Result<String> {
        self.rooms.shared_key(candidate).await
    }

    /// Notes that the leave of a swept peer that [`Self::tick`] handed out was told.
    pub(crate) fn told_swept(&self, peer: PeerId) {
        self.rooms.told_swept(peer);
    }

    /// Keeps a leave whose announcement could not be sent, for the next
    /// [`Self::retry_leaves`].
    pub(crate) fn tell_later(&self, peer: PeerId, rooms: Vec<RoomId>) {
        self.rooms.tell_later(peer, rooms);
    }

    /// Applies a notice published by the scripts (see [`Notice`]) to the view of other
    /// nodes' peers.
    pub(crate) fn hear(&self, notice: Notice) {
        self.rooms.hear(notice);
    }

    /// Forgets the view of other nodes' peers, after notices may have been lost.
    pub(crate) fn forget_view(&self) {
        self.rooms.forget_view();
    }
}
