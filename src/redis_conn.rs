//! The command connection to Redis, one server or a Redis Cluster behind one type, and the
//! few things that differ between the two: how a script publishes, and where a command about
//! one key (or shard channel) goes.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

/// Commands to Redis: a self-healing connection to one server, or redis-rs's connection to a
/// Redis Cluster, which sends each command to the shard owning its key (a script: its first
/// KEYS entry) and follows the cluster through failovers. Cheap to clone.
#[derive(Clone)]
pub(crate) enum Commands {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Commands {
    /// Whether this is a Redis Cluster, where pub/sub is sharded.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmd` on the master owning `key`'s slot: in a cluster, for commands whose answer
    /// depends on the shard (`PUBSUB SHARDNUMSUB`), which redis-rs would otherwise send to
    /// every node.
    pub(crate) async fn on_owner_of(&mut self, key: &str, cmd: Cmd) -> redis::RedisResult<Value> {
        match self {
            Self::Single(conn) => cmd.query_async(conn).await,
            Self::Cluster(conn) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                conn.route_command(cmd, routing).await
            }
        }
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// A Lua script that publishes: as written (`PUBLISH`) on one server; in a cluster with
/// `SPUBLISH`, so the message goes only to the shard that owns the channel, which the
/// callers make the shard of the script's keys.
pub(crate) fn script(text: &str, sharded: bool) -> Script {
    Script::new(&publishing(text, sharded))
}

fn publishing(text: &str, sharded: bool) -> String {
    if sharded {
        text.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")
    } else {
        text.to_owned()
    }
}

/// The cluster slot of `key`: CRC16 of its hash tag (what is inside the first `{…}` that
/// holds something), or of the whole key.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % 16_384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // Values from `CLUSTER KEYSLOT` (redis-server 7.0).
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn scripts_publish_on_shards_only_in_a_cluster() {
        let text = "redis.call('PUBLISH', KEYS[1], ARGV[1])";
        assert_eq!(publishing(text, false), text);
        assert_eq!(
            publishing(text, true),
            "redis.call('SPUBLISH', KEYS[1], ARGV[1])"
        );
    }
}
