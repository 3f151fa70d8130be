//! Room membership kept in Redis, so every node sees every member: joins find rooms whose
//! members are all elsewhere, and the capacity and same-room checks hold across nodes.
//!
//! Keys (under the configured prefix): `room:<roomId>` is the set of its peer ids (Redis
//! drops an empty set, so a room is forgotten when its last member leaves);
//! `peer:<peerId>` is the set of that peer's rooms; `node:<nodeId>:peers` the peers held by
//! a node, so a survivor can remove a dead node's peers; `node:<nodeId>:alive` the node's
//! heartbeat, expiring when it stops; `nodes` the nodes seen; `room_sizes` a hash from a
//! member count to how many rooms have that many members, for `/metrics`. Every change
//! that must be atomic (create, join with its capacity check, leave, the dead-node sweep,
//! re-registration) is one Lua script, so two nodes can never both fill the last seat of
//! a room or both announce a dead node's peers; each script also moves every room it
//! resizes between the counts of `room_sizes`, so those always match the room sets
//! without anything scanning them. Nothing lists rooms: ids stay known only to those
//! given them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::RwLock;

use super::driver::{RedisFailure, bounded};
use crate::rooms::{Join, PeerId, RoomId};

/// Prepended to every script that changes a room's size: moves one room from the count
/// of rooms with `from` members to that with `to` members in the hash `h` (0: none, so an
/// empty room is counted nowhere). Counts that reach zero are removed, so the hash holds
/// at most one field per room size in use.
const RESIZE: &str = r"
local function resize(h, from, to)
  if from > 0 and redis.call('HINCRBY', h, from, -1) <= 0 then redis.call('HDEL', h, from) end
  if to > 0 then redis.call('HINCRBY', h, to, 1) end
end
";

const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
resize(KEYS[4], 0, 1)
return 1
";

/// -1: no such room, -2: already a member, -3: full, otherwise the other members' count.
const JOIN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return -2 end
local n = redis.call('SCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then return -3 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
resize(KEYS[4], n, n + 1)
return n
";

/// KEYS: the peer's rooms, the node's peers, the room sizes; ARGV: key prefix, peer, then
/// its rooms.
const LEAVE: &str = r"
for i = 3, #ARGV do
  local room = ARGV[1] .. 'room:' .. ARGV[i]
  local n = redis.call('SCARD', room)
  if redis.call('SREM', room, ARGV[2]) == 1 then resize(KEYS[3], n, n - 1) end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
";

/// The heartbeat, run every interval by every node. Refreshes this node's key, then
/// removes the peers of every node whose key expired from their rooms, atomically, so
/// exactly one survivor gets them. Returns: whether this node's key had expired or
/// vanished (1/0), whether another node swept this node (1/0), then pairs of a removed
/// peer and one of its rooms.
const TICK: &str = r"
local p, me = ARGV[1], ARGV[2]
local had = redis.call('SET', p .. 'node:' .. me .. ':alive', '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', p .. 'nodes', me)
local swept = redis.call('DEL', p .. 'swept:' .. me)
local out = { had and '0' or '1', tostring(swept) }
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if n ~= me and redis.call('EXISTS', p .. 'node:' .. n .. ':alive') == 0 then
    for _, peer in ipairs(redis.call('SMEMBERS', p .. 'node:' .. n .. ':peers')) do
      for _, r in ipairs(redis.call('SMEMBERS', p .. 'peer:' .. peer)) do
        local room = p .. 'room:' .. r
        local size = redis.call('SCARD', room)
        if redis.call('SREM', room, peer) == 1 then resize(p .. 'room_sizes', size, size - 1) end
        table.insert(out, peer)
        table.insert(out, r)
      end
      redis.call('DEL', p .. 'peer:' .. peer)
    end
    redis.call('DEL', p .. 'node:' .. n .. ':peers')
    redis.call('SREM', p .. 'nodes', n)
    redis.call('SET', p .. 'swept:' .. n, '1', 'PX', ARGV[4])
  end
end
return out
";

/// ARGV: key prefix, node, then pairs of peer and room to put back.
const REGISTER: &str = r"
local p, me = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local room = p .. 'room:' .. ARGV[i + 1]
  local n = redis.call('SCARD', room)
  if redis.call('SADD', room, ARGV[i]) == 1 then resize(p .. 'room_sizes', n, n + 1) end
  redis.call('SADD', p .. 'peer:' .. ARGV[i], ARGV[i + 1])
  redis.call('SADD', p .. 'node:' .. me .. ':peers', ARGV[i])
end
return 1
";

/// A script that may call `resize` (see [`RESIZE`]).
fn resizing(body: &str) -> Script {
    Script::new(&format!("{RESIZE}{body}"))
}

/// Peers with the rooms they left.
pub type Leaves = Vec<(PeerId, Vec<RoomId>)>;

/// What one heartbeat found.
#[derive(Debug, Default)]
pub struct Tick {
    /// This node's heartbeat key was gone: Redis lost its data, or this is the first beat.
    pub was_unknown: bool,
    /// Another node declared this one dead and announced its peers as gone.
    pub was_swept: bool,
    /// Peers of dead nodes removed by this beat, with the rooms they were removed from.
    pub gone: BTreeMap<PeerId, Vec<RoomId>>,
}

/// The Redis-backed membership store. Cheap to clone.
#[derive(Clone)]
pub struct RedisRooms {
    conn: ConnectionManager,
    prefix: Arc<str>,
    node: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
    /// This node's own peers and their rooms, to register again after Redis lost them.
    mine: Arc<Mutex<HashMap<PeerId, HashSet<RoomId>>>>,
    /// Taken shared by every membership change and exclusively by re-registration, so a
    /// peer that leaves while its node registers again is never put back.
    changes: Arc<RwLock<()>>,
    /// Leaves that could not reach Redis, retried by the heartbeat.
    pending_leaves: Arc<Mutex<Leaves>>,
}

struct Scripts {
    create: Script,
    join: Script,
    leave: Script,
    tick: Script,
    register: Script,
}

impl std::fmt::Debug for RedisRooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRooms")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl RedisRooms {
    pub fn new(conn: ConnectionManager, prefix: &str, node: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            node: node.into(),
            timeout,
            scripts: Arc::new(Scripts {
                create: resizing(CREATE),
                join: resizing(JOIN),
                leave: resizing(LEAVE),
                tick: resizing(TICK),
                register: resizing(REGISTER),
            }),
            mine: Arc::default(),
            changes: Arc::default(),
            pending_leaves: Arc::default(),
        }
    }

    fn room_key(&self, room: &RoomId) -> String {
        format!("{}room:{}", self.prefix, room)
    }

    fn peer_key(&self, peer: &PeerId) -> String {
        format!("{}peer:{}", self.prefix, peer)
    }

    fn node_peers_key(&self) -> String {
        format!("{}node:{}:peers", self.prefix, self.node)
    }

    fn sizes_key(&self) -> String {
        format!("{}room_sizes", self.prefix)
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, HashSet<RoomId>>> {
        // Only map operations happen under this lock, never an await.
        self.mine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a new room with a fresh random id and `peer` as its only member.
    pub async fn create(&self, peer: &PeerId) -> Result<RoomId, RedisFailure> {
        let _change = self.changes.read().await;
        let mut conn = self.conn.clone();
        loop {
            let room = RoomId::random();
            let mut call = self.scripts.create.prepare_invoke();
            call.key(self.room_key(&room))
                .key(self.peer_key(peer))
                .key(self.node_peers_key())
                .key(self.sizes_key())
                .arg(peer.as_str())
                .arg(room.as_str());
            let created: i64 = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
            if created == 1 {
                self.mine()
                    .entry(peer.clone())
                    .or_default()
                    .insert(room.clone());
                return Ok(room);
            }
        }
    }

    /// Adds `peer` to `room` if the room exists and has fewer than `max` members.
    pub async fn join_existing(
        &self,
        room: &RoomId,
        peer: &PeerId,
        max: usize,
    ) -> Result<Join, RedisFailure> {
        let _change = self.changes.read().await;
        let mut conn = self.conn.clone();
        let mut call = self.scripts.join.prepare_invoke();
        call.key(self.room_key(room))
            .key(self.peer_key(peer))
            .key(self.node_peers_key())
            .key(self.sizes_key())
            .arg(peer.as_str())
            .arg(room.as_str())
            .arg(max);
        let n: i64 = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        Ok(match n {
            -1 => Join::NoSuchRoom,
            -2 => Join::AlreadyMember,
            -3 => Join::Full,
            others => {
                self.mine()
                    .entry(peer.clone())
                    .or_default()
                    .insert(room.clone());
                Join::Joined {
                    others: usize::try_from(others).unwrap_or(0),
                }
            }
        })
    }

    /// Removes `peer` from all of `rooms`. When Redis cannot be reached the leave is kept
    /// and retried by the heartbeat, so a departed peer never stays a member.
    pub async fn leave_all(&self, rooms: &[RoomId], peer: &PeerId) -> Result<(), RedisFailure> {
        let _change = self.changes.read().await;
        self.mine().remove(peer);
        let result = self.leave_in_redis(rooms, peer).await;
        if result.is_err() {
            self.pending_leaves().push((peer.clone(), rooms.to_vec()));
        }
        result
    }

    fn pending_leaves(&self) -> std::sync::MutexGuard<'_, Leaves> {
        self.pending_leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn leave_in_redis(&self, rooms: &[RoomId], peer: &PeerId) -> Result<(), RedisFailure> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.leave.prepare_invoke();
        call.key(self.peer_key(peer))
            .key(self.node_peers_key())
            .key(self.sizes_key())
            .arg(&*self.prefix)
            .arg(peer.as_str());
        for room in rooms {
            call.arg(room.as_str());
        }
        bounded(self.timeout, call.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// Retries the leaves that failed; returns those that went through now, so their
    /// rooms can be told.
    pub async fn retry_leaves(&self) -> Leaves {
        let pending = std::mem::take(&mut *self.pending_leaves());
        let mut done = Vec::new();
        for (peer, rooms) in pending {
            if self.leave_in_redis(&rooms, &peer).await.is_ok() {
                done.push((peer, rooms));
            } else {
                self.pending_leaves().push((peer, rooms));
            }
        }
        done
    }

    /// Whether `target` is a member of any of `rooms`: one round trip.
    pub async fn any_has_member(
        &self,
        rooms: &[RoomId],
        target: &PeerId,
    ) -> Result<bool, RedisFailure> {
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("SISMEMBER")
                .arg(self.room_key(room))
                .arg(target.as_str());
        }
        if rooms.is_empty() {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let found: Vec<bool> = bounded(self.timeout, pipe.query_async(&mut conn)).await?;
        Ok(found.into_iter().any(|f| f))
    }

    /// Members of `room` (for tests and diagnostics).
    pub async fn members(&self, room: &RoomId) -> Result<Vec<String>, RedisFailure> {
        let mut conn = self.conn.clone();
        bounded(
            self.timeout,
            redis::cmd("SMEMBERS")
                .arg(self.room_key(room))
                .query_async(&mut conn),
        )
        .await
    }

    /// Rooms in the whole cluster by member count: one read of a hash with at most one
    /// field per room size in use, kept by the scripts above.
    pub async fn room_sizes(&self) -> Result<BTreeMap<usize, usize>, RedisFailure> {
        let mut conn = self.conn.clone();
        let counts: HashMap<String, i64> = bounded(
            self.timeout,
            redis::cmd("HGETALL")
                .arg(self.sizes_key())
                .query_async(&mut conn),
        )
        .await?;
        Ok(counts
            .into_iter()
            .filter_map(|(size, count)| {
                let size = size.parse().ok().filter(|&s: &usize| s > 0)?;
                let count = usize::try_from(count).ok().filter(|&c| c > 0)?;
                Some((size, count))
            })
            .collect())
    }

    /// One heartbeat: refresh this node's key (expiring after `ttl`) and sweep dead nodes.
    pub async fn tick(&self, ttl: Duration) -> Result<Tick, RedisFailure> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let mut call = self.scripts.tick.prepare_invoke();
        // A swept node learns of it on its next beat; a minute is plenty for that.
        call.arg(&*self.prefix)
            .arg(&*self.node)
            .arg(ttl_ms)
            .arg(60_000);
        let out: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        let mut tick = Tick {
            was_unknown: out.first().is_some_and(|s| s == "1"),
            was_swept: out.get(1).is_some_and(|s| s == "1"),
            gone: BTreeMap::new(),
        };
        for pair in out.get(2..).unwrap_or_default().chunks_exact(2) {
            if let (Some(peer), Some(room)) = (PeerId::parse(&pair[0]), RoomId::parse(&pair[1])) {
                tick.gone.entry(peer).or_default().push(room);
            }
        }
        Ok(tick)
    }

    /// Writes every membership of this node's peers back to Redis, after Redis lost them.
    pub async fn register_again(&self) -> Result<usize, RedisFailure> {
        let _all = self.changes.write().await;
        let pairs: Vec<(PeerId, RoomId)> = self
            .mine()
            .iter()
            .flat_map(|(peer, rooms)| rooms.iter().map(|r| (peer.clone(), r.clone())))
            .collect();
        let mut conn = self.conn.clone();
        let mut call = self.scripts.register.prepare_invoke();
        call.arg(&*self.prefix).arg(&*self.node);
        for (peer, room) in &pairs {
            call.arg(peer.as_str()).arg(room.as_str());
        }
        bounded(self.timeout, call.invoke_async::<i64>(&mut conn)).await?;
        Ok(pairs.len())
    }

    /// This node's peers, for disconnecting them after the cluster declared it dead.
    pub fn local_peers(&self) -> Vec<PeerId> {
        self.mine().keys().cloned().collect()
    }
}
