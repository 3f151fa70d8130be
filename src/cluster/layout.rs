//! Where meshchat's keys and channels are in Redis: on one server, the names they always
//! had; in a Redis Cluster, hash-tagged, so that everything the membership scripts and the
//! bus touch together is on one shard and each node's inbox on the shard of its own id.

/// Every key and channel on one server starts with this.
const PREFIX: &str = "meshchat:";

/// In a Redis Cluster, every key and channel but the inboxes: the tag `{m}` puts them in
/// one slot, because join's size check, the dead-node sweep and resume must be atomic
/// across rooms, peers and nodes, and the notices they publish must travel on the bus.
const SHARDED_PREFIX: &str = "meshchat:{m}:";

/// The names of one deployment's keys and channels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    sharded: bool,
}

impl Layout {
    /// The layout on one server, or (`sharded`) in a Redis Cluster.
    pub(crate) fn new(sharded: bool) -> Self {
        Self { sharded }
    }

    /// The prefix of every key and channel but the inboxes.
    pub(crate) fn prefix(self) -> &'static str {
        if self.sharded { SHARDED_PREFIX } else { PREFIX }
    }

    /// Node `node`'s inbox: its channel, and the key of its stream. In a Redis Cluster
    /// tagged with the node's id, so that relays, almost all of the traffic between nodes,
    /// spread over the shards.
    pub(crate) fn inbox(self, node: &str) -> String {
        if self.sharded {
            format!("{PREFIX}inbox:{{{node}}}")
        } else {
            format!("{PREFIX}inbox:{node}")
        }
    }

    /// The prefix of socketioxide-redis's channels.
    pub(crate) fn adapter_prefix(self) -> String {
        format!("{}socket.io", self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_conn::slot;

    #[test]
    fn one_server_keeps_the_names_it_always_had() {
        let layout = Layout::new(false);
        assert_eq!(layout.prefix(), "meshchat:");
        assert_eq!(layout.inbox("n1"), "meshchat:inbox:n1");
        assert_eq!(layout.adapter_prefix(), "meshchat:socket.io");
    }

    #[test]
    fn in_a_cluster_what_is_atomic_shares_a_slot_and_inboxes_spread() {
        let layout = Layout::new(true);
        let p = layout.prefix();
        let m = slot(b"m");
        let together = [
            format!("{p}room:r1"),
            format!("{p}peer:p1"),
            format!("{p}node:n1:peers"),
            format!("{p}node:n1:alive"),
            format!("{p}nodes"),
            format!("{p}room_sizes"),
            format!("{p}kept:r1"),
            format!("{p}once:left:p1"),
            format!("{p}claim:p1"),
            format!("{p}resume_key"),
            format!("{p}bus"),
            format!("{p}notices"),
            format!("{}-request#/#", layout.adapter_prefix()),
            format!("{}-response#/#uid#", layout.adapter_prefix()),
        ];
        for key in together {
            assert_eq!(slot(key.as_bytes()), m, "{key}");
        }
        assert_eq!(layout.inbox("n1"), "meshchat:inbox:{n1}");
        assert_eq!(slot(layout.inbox("n1").as_bytes()), slot(b"n1"));
        let slots: std::collections::HashSet<u16> = (0..20)
            .map(|i| slot(layout.inbox(&format!("node{i}")).as_bytes()))
            .collect();
        assert!(slots.len() > 10, "inboxes spread over slots: {slots:?}");
    }
}
