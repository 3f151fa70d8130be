//! The sockets connected to this node, by peer id: how a relay finds its target without a
//! Socket.IO room per peer, whose lookup and broadcast cost more than the relay itself.

use std::collections::HashMap;
use std::sync::RwLock;

use socketioxide::socket::Sid;

use crate::protocol::PeerId;

/// Locks the table is split over, so that relays on several worker threads seldom meet.
const SHARDS: usize = 16;

/// Peer id to socket id, for the peers whose socket is on this node. Cheap to share.
#[derive(Debug, Default)]
pub(crate) struct LocalPeers {
    shards: [RwLock<HashMap<PeerId, Sid>>; SHARDS],
}

impl LocalPeers {
    fn shard(&self, peer: &PeerId) -> &RwLock<HashMap<PeerId, Sid>> {
        // Peer ids are random: their last byte spreads them evenly.
        let last = peer.as_str().bytes().last().unwrap_or(0);
        &self.shards[usize::from(last) % SHARDS]
    }

    pub(crate) fn insert(&self, peer: &PeerId, sid: Sid) {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still whole.
        let mut shard = self.shard(peer).write().unwrap_or_else(|p| p.into_inner());
        shard.insert(peer.clone(), sid);
    }

    pub(crate) fn remove(&self, peer: &PeerId) {
        let mut shard = self.shard(peer).write().unwrap_or_else(|p| p.into_inner());
        shard.remove(peer);
    }

    /// The socket of `peer` when it is connected to this node.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<Sid> {
        let shard = self.shard(peer).read().unwrap_or_else(|p| p.into_inner());
        shard.get(peer).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_found_until_removed_and_others_are_not() {
        let peers = LocalPeers::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let sid = Sid::new();
        peers.insert(&a, sid);
        assert_eq!(peers.get(&a), Some(sid));
        assert_eq!(peers.get(&b), None);
        peers.remove(&a);
        assert_eq!(peers.get(&a), None);
    }
}
