//! Where membership lives: the in-memory [`Rooms`] table on a single node, or Redis
//! ([`RedisRooms`]) when several nodes share the rooms.
//!
//! The single-node path stays a few map operations under a mutex, with no I/O: handlers
//! match on the backend and only the cluster one awaits.

use crate::cluster::{RedisFailure, RedisRooms};
use crate::rooms::{Join, PeerId, RoomId, Rooms};

/// The membership backend.
#[derive(Debug, Clone)]
pub enum Membership {
    Local(Rooms),
    Cluster(RedisRooms),
}

impl Membership {
    /// Makes a new room with a fresh random id and `peer` as its only member.
    pub async fn create(&self, peer: &PeerId) -> Result<RoomId, RedisFailure> {
        match self {
            Self::Local(rooms) => Ok(rooms.create(peer)),
            Self::Cluster(rooms) => rooms.create(peer).await,
        }
    }

    /// Adds `peer` to `room` if it exists and has fewer than `max` members.
    pub async fn join_existing(
        &self,
        room: &RoomId,
        peer: &PeerId,
        max: usize,
    ) -> Result<Join, RedisFailure> {
        match self {
            Self::Local(rooms) => Ok(rooms.join_existing(room, peer, max)),
            Self::Cluster(rooms) => rooms.join_existing(room, peer, max).await,
        }
    }

    /// Removes `peer` from every one of `rooms`.
    pub async fn leave_all(&self, rooms: &[RoomId], peer: &PeerId) -> Result<(), RedisFailure> {
        match self {
            Self::Local(table) => {
                for room in rooms {
                    table.leave(room, peer);
                }
                Ok(())
            }
            Self::Cluster(table) => table.leave_all(rooms, peer).await,
        }
    }
}
