//! Membership kept in Redis, shared by every node: joins find rooms whose members are all
//! on other nodes, and the capacity and same-room checks hold across nodes. Every change
//! that must be atomic is one Lua script (key layout: docs/cluster.md, "Inside").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use tokio::sync::RwLock;

use super::{Join, Left, Limits, Resumed};
use crate::error::{Result, bounded};
use crate::protocol::{PeerId, RoomId};
use crate::redis_conn::{self, Commands};

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

/// The stream every message between nodes that all of them hear also goes to (see
/// docs/cluster.md, "Inside"), under the key prefix, and about how many messages it keeps.
pub(crate) const BUS: &str = "bus";
pub(crate) const BUS_LENGTH: u64 = 20_000;

/// The channel of [`Notice`]s, under the key prefix: carried by [`BUS`] like the adapter's
/// messages, so that a node hears a peer's leave before the `user-disconnected` published
/// after it, and replays both after a reconnect.
pub(crate) const NOTICES: &str = "notices";

/// Prepended to every script (with `resize`): `notify(p, msg)` publishes the notice `msg`
/// to every node, as the driver publishes (`src/cluster/pubsub.rs`): added to the bus
/// stream, then published prefixed with its stream id, in the same step as the change it
/// tells of.
fn notify_lua() -> String {
    format!(
        r"
local function notify(p, msg)
  local id = redis.call('XADD', p .. '{BUS}', 'MAXLEN', '~', {BUS_LENGTH}, '*', 'c', p .. '{NOTICES}', 'p', msg)
  redis.call('PUBLISH', p .. '{NOTICES}', id .. ' ' .. msg)
end
"
    )
}

/// KEYS: the new room, the peer's rooms, the node's peers, the room sizes, the room's
/// kept mark; ARGV: peer, room. 0: the id is taken, 1: created.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1], KEYS[5]) > 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
resize(KEYS[4], 0, 1)
return 1
";

/// KEYS: the room, the peer's rooms, the node's peers, the room sizes, the room's kept
/// mark; ARGV: peer, room, most members, and 1 when this join is asked again after an
/// attempt whose answer never came (else 0). -1: no such room, -2: already a member (not
/// said when asked again: the first attempt made it one), -3: full, otherwise the number
/// of other members. A kept room that emptied is taken up again by its first joiner.
const JOIN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('DEL', KEYS[5]) == 0 then return -1 end
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  if ARGV[4] == '1' then return redis.call('SCARD', KEYS[1]) - 1 end
  return -2
end
local n = redis.call('SCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then return -3 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
resize(KEYS[4], n, n + 1)
return n
";

/// KEYS: the peer's rooms, the node's peers, the room sizes, the node's swept mark; ARGV:
/// key prefix, peer, how long to keep a room this empties (ms, 0: not at all), then its
/// rooms. Returns the rooms to tell: those the peer was still in, or all of them unless a
/// sweep of this node removed it (and told them) first; Redis may have lost them instead.
/// None when the peer resumed on another node, which holds its memberships now. Every
/// node hears `left <peer>` (see [`Notice`]).
const LEAVE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  return {}
end
local keep = tonumber(ARGV[3])
local swept = redis.call('EXISTS', KEYS[4]) == 1
local left = {}
for i = 4, #ARGV do
  local room = ARGV[1] .. 'room:' .. ARGV[i]
  local n = redis.call('SCARD', room)
  if redis.call('SREM', room, ARGV[2]) == 1 then
    resize(KEYS[3], n, n - 1)
    if n == 1 and keep > 0 then redis.call('SET', ARGV[1] .. 'kept:' .. ARGV[i], '1', 'PX', keep) end
    table.insert(left, ARGV[i])
  elseif not swept then
    table.insert(left, ARGV[i])
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
notify(ARGV[1], 'left ' .. ARGV[2])
return left
";

/// The heartbeat, run every interval by every node. Refreshes this node's key, then
/// removes the peers of every node whose key expired from their rooms, atomically, so
/// exactly one survivor gets them, and every node hears `left <peer>` for each. The
/// survivor also records them in its `sweeping:<node>` hash (peer → rooms) until it says
/// it told them, on a later beat: so a sweep whose answer never reached it (Redis ran it,
/// the answer timed out) is handed to it again, and to nobody else, and the leaves are not
/// lost. A dead sweeper's record goes to the node that sweeps it, less the leaves whose
/// announcement was published (their once-key is set): those were told.
/// When no node beat for a while (Redis was paused, or a Redis Cluster was failing over:
/// every key's TTL ran on meanwhile), the expired nodes get one more TTL instead of being
/// swept, since no node could beat; a node that is really dead is swept a TTL later.
/// KEYS: the `nodes` set, only to route the call in a Redis Cluster (every key the script
/// builds from the prefix has the same hash tag); ARGV: key prefix, this node, heartbeat
/// TTL (ms), how long a swept mark lasts (ms), how long no node may have beaten before
/// Redis counts as having been away (ms), then the peers this node told since its last
/// beat. Returns: whether this node's key had expired or vanished (1/0), whether another
/// node swept this node (1/0), then each removed peer with its rooms (`peer room…`):
/// those not yet told of earlier sweeps, then those of this one.
const TICK: &str = r"
local p, me = ARGV[1], ARGV[2]
local sweeping = p .. 'sweeping:' .. me
for i = 6, #ARGV do redis.call('HDEL', sweeping, ARGV[i]) end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local last = tonumber(redis.call('GET', p .. 'ticked'))
local away = last == nil or now - last > tonumber(ARGV[5])
redis.call('SET', p .. 'ticked', now, 'PX', 10 * tonumber(ARGV[3]))
local had = redis.call('SET', p .. 'node:' .. me .. ':alive', '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', p .. 'nodes', me)
local swept = redis.call('DEL', p .. 'swept:' .. me)
local out = { had and '0' or '1', tostring(swept) }
local function hand(peer, rooms)
  redis.call('HSET', sweeping, peer, rooms)
  table.insert(out, peer .. ' ' .. rooms)
end
local untold = redis.call('HGETALL', sweeping)
for i = 1, #untold, 2 do hand(untold[i], untold[i + 1]) end
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if n ~= me and away and redis.call('EXISTS', p .. 'node:' .. n .. ':alive') == 0 then
    redis.call('SET', p .. 'node:' .. n .. ':alive', '1', 'PX', ARGV[3])
  elseif n ~= me and redis.call('EXISTS', p .. 'node:' .. n .. ':alive') == 0 then
    for _, peer in ipairs(redis.call('SMEMBERS', p .. 'node:' .. n .. ':peers')) do
      local rooms = redis.call('SMEMBERS', p .. 'peer:' .. peer)
      for _, r in ipairs(rooms) do
        local room = p .. 'room:' .. r
        local size = redis.call('SCARD', room)
        if redis.call('SREM', room, peer) == 1 then resize(p .. 'room_sizes', size, size - 1) end
      end
      if #rooms > 0 then hand(peer, table.concat(rooms, ' ')) end
      redis.call('DEL', p .. 'peer:' .. peer)
      notify(p, 'left ' .. peer)
    end
    local theirs = redis.call('HGETALL', p .. 'sweeping:' .. n)
    for i = 1, #theirs, 2 do
      if redis.call('EXISTS', p .. 'once:left:' .. theirs[i]) == 0 then hand(theirs[i], theirs[i + 1]) end
    end
    redis.call('DEL', p .. 'sweeping:' .. n)
    redis.call('DEL', p .. 'node:' .. n .. ':peers')
    redis.call('SREM', p .. 'nodes', n)
    redis.call('SET', p .. 'swept:' .. n, '1', 'PX', ARGV[4])
  end
end
return out
";

/// Puts this node's memberships back after Redis lost them, and takes out of their rooms,
/// without telling anyone, the peers Redis lists as this node's that the node no longer
/// has: their leave was told, but Redis lost it (a Redis Cluster failover loses the writes
/// its replica had not yet copied). KEYS: the `nodes` set, for routing (as [`TICK`]);
/// ARGV: key prefix, node, how many held peers follow, the held peers (kept as they are),
/// then pairs of peer and room.
const REGISTER: &str = r"
local p, me = ARGV[1], ARGV[2]
local pairs_at = 4 + tonumber(ARGV[3])
local mine = {}
for i = 4, pairs_at - 1 do mine[ARGV[i]] = true end
for i = pairs_at, #ARGV, 2 do
  mine[ARGV[i]] = true
  local room = p .. 'room:' .. ARGV[i + 1]
  local n = redis.call('SCARD', room)
  if redis.call('SADD', room, ARGV[i]) == 1 then resize(p .. 'room_sizes', n, n + 1) end
  redis.call('SADD', p .. 'peer:' .. ARGV[i], ARGV[i + 1])
  redis.call('SADD', p .. 'node:' .. me .. ':peers', ARGV[i])
end
for _, peer in ipairs(redis.call('SMEMBERS', p .. 'node:' .. me .. ':peers')) do
  if not mine[peer] then
    for _, r in ipairs(redis.call('SMEMBERS', p .. 'peer:' .. peer)) do
      local room = p .. 'room:' .. r
      local n = redis.call('SCARD', room)
      if redis.call('SREM', room, peer) == 1 then resize(p .. 'room_sizes', n, n - 1) end
    end
    redis.call('DEL', p .. 'peer:' .. peer)
    redis.call('SREM', p .. 'node:' .. me .. ':peers', peer)
  end
end
return 1
";

/// A resume: makes a peer that is still a member of its rooms this node's, whichever node
/// held it (the caller made sure no node has a socket of it). KEYS: the `nodes` set, where
/// the holder is found (for routing, as [`TICK`]); ARGV: key prefix, peer, this node, how long the claim lasts (ms).
/// The claim refuses a second resume of the same peer until the first one's socket is
/// connected, and so findable. Every node hears `at <peer> <node>` when it moved. Returns `ok` then the peer's rooms, `in_use`, or `gone`.
const TAKE: &str = r"
local p, peer, me = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', p .. 'peer:' .. peer) == 0 then return {'gone'} end
if not redis.call('SET', p .. 'claim:' .. peer, me, 'PX', ARGV[4], 'NX') then return {'in_use'} end
local from = nil
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if redis.call('SISMEMBER', p .. 'node:' .. n .. ':peers', peer) == 1 then from = n end
end
if from == nil then return {'gone'} end
if from ~= me then
  redis.call('SREM', p .. 'node:' .. from .. ':peers', peer)
  redis.call('SADD', p .. 'node:' .. me .. ':peers', peer)
  notify(p, 'at ' .. peer .. ' ' .. me)
end
local out = {'ok'}
for _, r in ipairs(redis.call('SMEMBERS', p .. 'peer:' .. peer)) do table.insert(out, r) end
return out
";

/// The resume key the nodes share: sets KEYS[1] to ARGV[1] unless it is set, and returns
/// what it holds.
const SHARED_KEY: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

/// Where a relay goes, when this node's view does not know: whether the target shares one
/// of the sender's rooms and, if it does, which node holds it, found in the `nodes` set.
/// KEYS: the `nodes` set, for routing (as [`TICK`]); ARGV: key prefix, target, then the
/// sender's rooms. Returns nothing when they
/// share no room, else the node (empty when none holds it: it is being swept) and the
/// target's rooms.
const LOCATE: &str = r"
local p, t = ARGV[1], ARGV[2]
local shared = false
for i = 3, #ARGV do
  if redis.call('SISMEMBER', p .. 'room:' .. ARGV[i], t) == 1 then shared = true break end
end
if not shared then return {} end
local out = {''}
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  if redis.call('SISMEMBER', p .. 'node:' .. n .. ':peers', t) == 1 then out[1] = n end
end
for _, r in ipairs(redis.call('SMEMBERS', p .. 'peer:' .. t)) do table.insert(out, r) end
return out
";

/// A script that may call `resize` (see [`RESIZE`]) and `notify` (see [`notify_lua`]),
/// publishing on a shard channel when `sharded`.
fn resizing(body: &str, sharded: bool) -> Script {
    redis_conn::script(&format!("{RESIZE}{}{body}", notify_lua()), sharded)
}

/// Peers with the rooms they left.
pub(crate) type Leaves = Vec<(PeerId, Vec<RoomId>)>;

/// What one heartbeat found.
#[derive(Debug, Default)]
pub(crate) struct Tick {
    /// This node's heartbeat key was gone: Redis lost its data, or this is the first beat.
    pub(crate) was_unknown: bool,
    /// Another node declared this one dead and announced its peers as gone.
    pub(crate) was_swept: bool,
    /// Peers of dead nodes removed by this beat or earlier ones and not yet told, with the
    /// rooms they were removed from.
    pub(crate) gone: BTreeMap<PeerId, Vec<RoomId>>,
}

/// The Redis-backed membership store. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RedisRooms {
    conn: Commands,
    prefix: Arc<str>,
    node: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
    /// This node's own peers and their rooms: what a relay's sender is in, and what to
    /// register again after Redis lost it.
    own: Arc<Mutex<HashMap<PeerId, HashSet<RoomId>>>>,
    /// Taken shared by every membership change and exclusively by re-registration, so a
    /// peer that leaves while its node registers again is never put back.
    registration: Arc<RwLock<()>>,
    /// Leaves that could not reach Redis, retried by the heartbeat.
    pending_leaves: Arc<Mutex<Leaves>>,
    /// Leaves made in Redis whose announcement could not be published, told again by the
    /// heartbeat.
    untold: Arc<Mutex<Leaves>>,
    /// Memberships noted by [`Self::maybe_in`]: a join of one of them asked again is
    /// told to its room even if the first attempt made it.
    unsure: Arc<Mutex<HashSet<(PeerId, RoomId)>>>,
    /// Swept peers whose leave this node told, to say so on the next beat that reaches
    /// Redis (see [`TICK`]).
    told_swept: Arc<Mutex<Vec<PeerId>>>,
    /// Set while the node drains for a restart: a room its leaving peers empty is kept
    /// for [`KEEP_ROOM`], so that its members find it again through another node.
    draining: Arc<AtomicBool>,
    /// This node's departed peers whose memberships are held for their resume, with the
    /// number of their hold. Still in `own`, but not written back after Redis lost them:
    /// a hold ends when Redis restarts.
    held: Arc<Mutex<HashMap<PeerId, u64>>>,
    /// The number of the last hold.
    holds: Arc<AtomicU64>,
    /// Where the peers of other nodes that this node's peers relayed to live.
    view: Arc<Mutex<View>>,
}

/// This node's view of peers on other nodes, filled by [`RedisRooms::locate`] and kept
/// current by [`Notice`]s. A peer's rooms only grow while it is connected (there is no
/// leaving one room), so a room it shares with a sender stays shared until its leave,
/// which every node hears of (and a move, the only other change, too). A view that does
/// not know is asked about in Redis.
#[derive(Debug, Default)]
struct View {
    peers: HashMap<PeerId, Located>,
    /// Counts the notices heard, by the last byte of the peer's id: a lookup whose answer
    /// comes back after a notice of its peer was heard may be older than that notice, so
    /// it is used but not kept.
    heard: [u64; 32],
}

impl View {
    fn heard(&self, peer: &PeerId) -> u64 {
        let last = peer.as_str().bytes().last().unwrap_or(0);
        self.heard[usize::from(last) % self.heard.len()]
    }

    fn hear(&mut self, peer: &PeerId) {
        let last = peer.as_str().bytes().last().unwrap_or(0);
        let len = self.heard.len();
        self.heard[usize::from(last) % len] += 1;
    }
}

/// Where a peer of another node lives, and its rooms.
#[derive(Debug)]
struct Located {
    node: Arc<str>,
    rooms: Vec<RoomId>,
}

/// The most peers of other nodes the view keeps; past it, it starts again empty (a view
/// that does not know asks Redis, so forgetting costs only lookups).
const MOST_VIEWED: usize = 100_000;

/// What the scripts tell every node, on the [`NOTICES`] channel: `left <peer>` (it left
/// its rooms, or was swept with its node) and `at <peer> <node>` (it resumed on `node`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    Left(PeerId),
    At(PeerId, Arc<str>),
}

impl Notice {
    pub(crate) fn parse(message: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(message).ok()?;
        let mut words = text.split(' ');
        let notice = match (words.next()?, PeerId::parse(words.next()?)?) {
            ("left", peer) => Self::Left(peer),
            ("at", peer) => Self::At(peer, words.next()?.into()),
            _ => return None,
        };
        words.next().is_none().then_some(notice)
    }
}

/// Where a relay goes, as far as this node knows without asking Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Sender and target share a room and the target is this node's peer (connected or
    /// held), or the target is nowhere (being swept).
    Here,
    /// They share a room and the target is on that node.
    Node(Arc<str>),
    /// They share no room.
    NotShared,
    /// Not known here: ask Redis ([`RedisRooms::locate`]).
    Ask,
}

/// How long a room emptied by a draining node stays joinable under its id: its members
/// reconnect within seconds (the page retries for longer, at most every 5 s).
const KEEP_ROOM: Duration = Duration::from_secs(60);

struct Scripts {
    create: Script,
    join: Script,
    leave: Script,
    tick: Script,
    register: Script,
    take: Script,
    locate: Script,
    shared_key: Script,
}

impl std::fmt::Debug for RedisRooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRooms")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Only map and list operations happen under these locks, never an await: what a panic
/// left behind is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisRooms {
    /// `prefix` starts every key; in a Redis Cluster it holds the hash tag that puts every
    /// key on one shard.
    pub(crate) fn new(conn: Commands, prefix: &str, node: &str, timeout: Duration) -> Self {
        let sharded = conn.is_cluster();
        Self {
            conn,
            prefix: prefix.into(),
            node: node.into(),
            timeout,
            scripts: Arc::new(Scripts {
                create: resizing(CREATE, sharded),
                join: resizing(JOIN, sharded),
                leave: resizing(LEAVE, sharded),
                tick: resizing(TICK, sharded),
                register: resizing(REGISTER, sharded),
                take: resizing(TAKE, sharded),
                locate: Script::new(LOCATE),
                shared_key: Script::new(SHARED_KEY),
            }),
            own: Arc::default(),
            registration: Arc::default(),
            pending_leaves: Arc::default(),
            untold: Arc::default(),
            told_swept: Arc::default(),
            unsure: Arc::default(),
            draining: Arc::default(),
            held: Arc::default(),
            holds: Arc::default(),
            view: Arc::default(),
        }
    }

    /// From now on, rooms this node's leaving peers empty are kept (see [`KEEP_ROOM`]).
    pub(crate) fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
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

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    fn sizes_key(&self) -> String {
        format!("{}room_sizes", self.prefix)
    }

    fn kept_key(&self, room: &RoomId) -> String {
        format!("{}kept:{}", self.prefix, room)
    }

    fn own(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, HashSet<RoomId>>> {
        lock(&self.own)
    }

    /// Whether `peer` may enter one more room. Its rooms are all on this node, and its
    /// requests are handled one at a time, so the local count is exact.
    fn has_room_for(&self, peer: &PeerId, limits: Limits) -> bool {
        self.own().get(peer).map_or(0, HashSet::len) < limits.rooms_per_peer
    }

    /// Makes a new room with a fresh random id and `peer` as its only member.
    pub(crate) async fn create(&self, peer: &PeerId, limits: Limits) -> Result<Join> {
        if !self.has_room_for(peer, limits) {
            return Ok(Join::TooManyRooms);
        }
        let _change = self.registration.read().await;
        let mut conn = self.conn.clone();
        loop {
            let room = RoomId::random();
            let mut call = self.scripts.create.prepare_invoke();
            call.key(self.room_key(&room))
                .key(self.peer_key(peer))
                .key(self.node_peers_key())
                .key(self.sizes_key())
                .key(self.kept_key(&room))
                .arg(peer.as_str())
                .arg(room.as_str());
            let created: i64 = match bounded(self.timeout, call.invoke_async(&mut conn)).await {
                Ok(created) => created,
                Err(error) => {
                    self.maybe_in(peer, &room);
                    return Err(error);
                }
            };
            if created == 1 {
                self.own()
                    .entry(peer.clone())
                    .or_default()
                    .insert(room.clone());
                return Ok(Join::Created(room));
            }
        }
    }

    /// Adds `peer` to `room` if the room exists and both caps allow it.
    pub(crate) async fn join(&self, room: &RoomId, peer: &PeerId, limits: Limits) -> Result<Join> {
        if !self.has_room_for(peer, limits) {
            return Ok(Join::TooManyRooms);
        }
        let _change = self.registration.read().await;
        // An earlier join of this room that got no answer may have made it a member, which
        // nobody was told of: then "already a member" means joined now.
        let unsure = lock(&self.unsure).remove(&(peer.clone(), room.clone()));
        let known = !unsure
            && self
                .own()
                .get(peer)
                .is_some_and(|rooms| rooms.contains(room));
        // A join whose answer never came may have run all the same (Redis was slow, or the
        // connection broke after it was sent): asked again, the script says which. In a
        // storm of rejoins this turns most refusals into joins, and clients like the
        // reference page never retry a refused join.
        let mut again = false;
        let n: i64 = loop {
            let mut conn = self.conn.clone();
            let mut call = self.scripts.join.prepare_invoke();
            call.key(self.room_key(room))
                .key(self.peer_key(peer))
                .key(self.node_peers_key())
                .key(self.sizes_key())
                .key(self.kept_key(room))
                .arg(peer.as_str())
                .arg(room.as_str())
                .arg(limits.room_size)
                .arg(u8::from((again || unsure) && !known));
            match bounded(self.timeout, call.invoke_async(&mut conn)).await {
                Ok(n) => break n,
                Err(error) if again => {
                    self.maybe_in(peer, room);
                    return Err(error);
                }
                Err(_) => again = true,
            }
        };
        Ok(match n {
            -1 => Join::NoSuchRoom,
            -2 => Join::AlreadyMember,
            -3 => Join::Full,
            others => {
                self.own()
                    .entry(peer.clone())
                    .or_default()
                    .insert(room.clone());
                Join::Joined {
                    others: usize::try_from(others).unwrap_or(0),
                }
            }
        })
    }

    /// Notes a membership that a script which timed out may have made all the same (Redis
    /// runs it once it answers again): the peer's leave then removes it too, instead of
    /// leaving a member nobody will ever remove.
    pub(super) fn maybe_in(&self, peer: &PeerId, room: &RoomId) {
        self.own()
            .entry(peer.clone())
            .or_default()
            .insert(room.clone());
        lock(&self.unsure).insert((peer.clone(), room.clone()));
    }

    /// Removes `peer` from every room it is in, and returns those it was still in. When
    /// Redis cannot be reached the leave is kept, retried and told by the heartbeat, so a
    /// departed peer never stays a member and its rooms hear of it once.
    pub(crate) async fn leave_all(&self, peer: &PeerId) -> Left {
        let _change = self.registration.read().await;
        lock(&self.unsure).retain(|(p, _)| p != peer);
        let rooms: Vec<RoomId> = self
            .own()
            .remove(peer)
            .map(|rooms| rooms.into_iter().collect())
            .unwrap_or_default();
        if rooms.is_empty() {
            return Left {
                rooms,
                deferred: None,
            };
        }
        match self.leave_in_redis(&rooms, peer).await {
            Ok(left) => Left {
                rooms: left,
                deferred: None,
            },
            Err(error) => {
                self.pending_leaves().push((peer.clone(), rooms));
                Left {
                    rooms: Vec::new(),
                    deferred: Some(error),
                }
            }
        }
    }

    fn pending_leaves(&self) -> std::sync::MutexGuard<'_, Leaves> {
        lock(&self.pending_leaves)
    }

    /// Runs [`LEAVE`]; returns the rooms the peer was still in.
    async fn leave_in_redis(&self, rooms: &[RoomId], peer: &PeerId) -> Result<Vec<RoomId>> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.leave.prepare_invoke();
        call.key(self.peer_key(peer))
            .key(self.node_peers_key())
            .key(self.sizes_key())
            .key(format!("{}swept:{}", self.prefix, self.node))
            .arg(&*self.prefix)
            .arg(peer.as_str())
            .arg(if self.draining.load(Ordering::Acquire) {
                u64::try_from(KEEP_ROOM.as_millis()).unwrap_or(u64::MAX)
            } else {
                0
            });
        for room in rooms {
            call.arg(room.as_str());
        }
        let left: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        Ok(left.iter().filter_map(|r| RoomId::parse(r)).collect())
    }

    /// Holds the memberships of `peer`, whose connection ended, for its resume: nothing
    /// changes in Redis, where a node that finds no socket of it may take it over.
    pub(crate) fn hold(&self, peer: &PeerId) -> Option<u64> {
        if !self.own().contains_key(peer) {
            return None;
        }
        let hold = self.holds.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.held).insert(peer.clone(), hold);
        Some(hold)
    }

    /// Leaves the rooms of `peer` unless it resumed since hold number `hold`: here (the
    /// hold is gone) or on another node (the leave script finds it moved, and tells
    /// nobody).
    pub(crate) async fn end_hold(&self, peer: &PeerId, hold: u64) -> Option<Left> {
        {
            let mut held = lock(&self.held);
            if held.get(peer) != Some(&hold) {
                return None;
            }
            held.remove(peer);
        }
        Some(self.leave_all(peer).await)
    }

    /// Runs [`TAKE`]: `peer` becomes this node's, with its rooms, unless it left already or
    /// another resume of it is under way.
    pub(crate) async fn resume(&self, peer: &PeerId) -> Result<Resumed> {
        let _change = self.registration.read().await;
        let mut conn = self.conn.clone();
        let mut call = self.scripts.take.prepare_invoke();
        let claim = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(2)
            .max(1_000);
        call.key(self.nodes_key())
            .arg(&*self.prefix)
            .arg(peer.as_str())
            .arg(&*self.node)
            .arg(claim);
        let out: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => {
                let rooms: Vec<RoomId> = out[1..].iter().filter_map(|r| RoomId::parse(r)).collect();
                lock(&self.held).remove(peer);
                self.own()
                    .insert(peer.clone(), rooms.iter().cloned().collect());
                Resumed::Rooms(rooms)
            }
            Some("in_use") => Resumed::InUse,
            _ => Resumed::Gone,
        })
    }

    /// The resume key every node uses: the one in Redis, or `candidate` if none was set.
    pub(crate) async fn shared_key(&self, candidate: &str) -> Result<String> {
        let mut conn = self.conn.clone();
        let mut call = self.scripts.shared_key.prepare_invoke();
        call.key(format!("{}resume_key", self.prefix))
            .arg(candidate);
        bounded(self.timeout, call.invoke_async(&mut conn)).await
    }

    /// Retries the leaves that failed; returns those that went through now, so their
    /// rooms can be told, and the leaves whose announcement failed, to be told again. All
    /// their rooms: the first attempt may have run after all, or Redis may have lost the
    /// memberships meanwhile, and nobody told them yet.
    pub(crate) async fn retry_leaves(&self) -> Leaves {
        let pending = std::mem::take(&mut *self.pending_leaves());
        let mut done = std::mem::take(&mut *lock(&self.untold));
        for (peer, rooms) in pending {
            if self.leave_in_redis(&rooms, &peer).await.is_ok() {
                done.push((peer, rooms));
            } else {
                self.pending_leaves().push((peer, rooms));
            }
        }
        done
    }

    /// Keeps a leave whose announcement could not be sent, for [`Self::retry_leaves`].
    pub(crate) fn tell_later(&self, peer: PeerId, rooms: Vec<RoomId>) {
        lock(&self.untold).push((peer, rooms));
    }

    /// Whether `target` is in one of the rooms of `sender`, a peer of this node: one round
    /// trip, since the sender's side is known here.
    #[cfg(test)]
    pub(crate) async fn share_a_room(&self, sender: &PeerId, target: &PeerId) -> Result<bool> {
        let mut pipe = redis::pipe();
        let mut rooms = 0;
        for room in self.own().get(sender).into_iter().flatten() {
            pipe.cmd("SISMEMBER")
                .arg(self.room_key(room))
                .arg(target.as_str());
            rooms += 1;
        }
        if rooms == 0 {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let found: Vec<bool> = bounded(self.timeout, pipe.query_async(&mut conn)).await?;
        Ok(found.into_iter().any(|f| f))
    }

    /// Where a relay from `sender`, a peer of this node, to `target` goes, without asking
    /// Redis: this node's own peers and their rooms are known here, and so are the peers of
    /// other nodes in the view.
    pub(crate) fn route(&self, sender: &PeerId, target: &PeerId) -> Route {
        let own = self.own();
        let Some(mine) = own.get(sender) else {
            return Route::NotShared;
        };
        if let Some(theirs) = own.get(target) {
            return if mine.iter().any(|room| theirs.contains(room)) {
                Route::Here
            } else {
                Route::NotShared
            };
        }
        // Lock order: `own`, then `view`.
        let view = lock(&self.view);
        match view.peers.get(target) {
            Some(at) if at.rooms.iter().any(|room| mine.contains(room)) => {
                Route::Node(at.node.clone())
            }
            _ => Route::Ask,
        }
    }

    /// [`Self::route`] asked of Redis (one script call), when the view did not know; a
    /// target on another node is kept in the view.
    pub(crate) async fn locate(&self, sender: &PeerId, target: &PeerId) -> Result<Route> {
        let rooms = self.rooms_of(sender);
        if rooms.is_empty() {
            return Ok(Route::NotShared);
        }
        let heard = lock(&self.view).heard(target);
        let mut conn = self.conn.clone();
        let mut call = self.scripts.locate.prepare_invoke();
        call.key(self.nodes_key())
            .arg(&*self.prefix)
            .arg(target.as_str());
        for room in &rooms {
            call.arg(room.as_str());
        }
        let out: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        let Some((node, theirs)) = out.split_first() else {
            return Ok(Route::NotShared);
        };
        if node.is_empty() || **node == *self.node {
            return Ok(Route::Here);
        }
        let node: Arc<str> = node.as_str().into();
        let mut view = lock(&self.view);
        if view.heard(target) == heard {
            if view.peers.len() >= MOST_VIEWED {
                view.peers.clear();
            }
            let rooms = theirs.iter().filter_map(|r| RoomId::parse(r)).collect();
            view.peers.insert(
                target.clone(),
                Located {
                    node: node.clone(),
                    rooms,
                },
            );
        }
        Ok(Route::Node(node))
    }

    /// The rooms of `peer`, a peer of this node.
    pub(crate) fn rooms_of(&self, peer: &PeerId) -> Vec<RoomId> {
        self.own()
            .get(peer)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `peer`, a peer of this node, is in one of `rooms`: the last check of a
    /// relay from another node, against this node's own record of its peers.
    pub(crate) fn is_in_one_of(&self, peer: &PeerId, rooms: &[RoomId]) -> bool {
        self.own()
            .get(peer)
            .is_some_and(|mine| rooms.iter().any(|room| mine.contains(room)))
    }

    /// Applies what the scripts told every node. A peer held here that resumed on another
    /// node is that node's now: forgotten here, so that relays to it from this node's
    /// peers go there, and its hold ends without a leave.
    pub(crate) fn hear(&self, notice: Notice) {
        if let Notice::At(peer, node) = &notice
            && **node != *self.node
        {
            let was_held = lock(&self.held).remove(peer).is_some();
            if was_held {
                self.own().remove(peer);
            }
        }
        let mut view = lock(&self.view);
        match notice {
            Notice::Left(peer) => {
                view.hear(&peer);
                view.peers.remove(&peer);
            }
            Notice::At(peer, node) => {
                view.hear(&peer);
                if let Some(at) = view.peers.get_mut(&peer) {
                    at.node = node;
                }
            }
        }
    }

    /// Forgets the view: notices may have been missed (Redis restarted, losing them).
    pub(crate) fn forget_view(&self) {
        let mut view = lock(&self.view);
        view.peers.clear();
        for heard in &mut view.heard {
            *heard += 1;
        }
    }

    /// Members of `room`.
    #[cfg(test)]
    pub(crate) async fn members(&self, room: &RoomId) -> Result<Vec<String>> {
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
    pub(crate) async fn room_sizes(&self) -> Result<BTreeMap<usize, usize>> {
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
    /// `gone` holds the peers of this sweep and of earlier ones not yet told: each is to be
    /// told and then passed to [`Self::told_swept`], or it comes back on the next beat.
    pub(crate) async fn tick(&self, ttl: Duration) -> Result<Tick> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let told = lock(&self.told_swept).clone();
        let mut conn = self.conn.clone();
        let mut call = self.scripts.tick.prepare_invoke();
        // A swept node learns of it on its next beat; a minute is plenty for that. Redis
        // counts as away after half the TTL without a beat: longer than a beat's interval,
        // and shorter than a live node's key outlives its last beat (the TTL is at least
        // two intervals, see docs/configuration.md).
        call.key(self.nodes_key())
            .arg(&*self.prefix)
            .arg(&*self.node)
            .arg(ttl_ms)
            .arg(60_000)
            .arg(ttl_ms / 2);
        for peer in &told {
            call.arg(peer.as_str());
        }
        let out: Vec<String> = bounded(self.timeout, call.invoke_async(&mut conn)).await?;
        // Said; kept until now because a beat that failed may not have run.
        if !told.is_empty() {
            let said: HashSet<&PeerId> = told.iter().collect();
            lock(&self.told_swept).retain(|peer| !said.contains(peer));
        }
        let mut tick = Tick {
            was_unknown: out.first().is_some_and(|s| s == "1"),
            was_swept: out.get(1).is_some_and(|s| s == "1"),
            gone: BTreeMap::new(),
        };
        for leave in out.iter().skip(2) {
            let mut words = leave.split(' ');
            if let Some(peer) = words.next().and_then(PeerId::parse) {
                tick.gone
                    .insert(peer, words.filter_map(RoomId::parse).collect());
            }
        }
        Ok(tick)
    }

    /// Notes that the leave of `peer`, handed out by [`Self::tick`], was told.
    pub(crate) fn told_swept(&self, peer: PeerId) {
        lock(&self.told_swept).push(peer);
    }

    /// Writes every membership of this node's peers back to Redis, after Redis lost them,
    /// and removes the peers Redis still lists as this node's that it no longer has.
    pub(crate) async fn register_again(&self) -> Result<usize> {
        let _all = self.registration.write().await;
        let held = lock(&self.held).clone();
        let pairs: Vec<(PeerId, RoomId)> = self
            .own()
            .iter()
            .filter(|(peer, _)| !held.contains_key(*peer))
            .flat_map(|(peer, rooms)| rooms.iter().map(|r| (peer.clone(), r.clone())))
            .collect();
        let mut conn = self.conn.clone();
        let mut call = self.scripts.register.prepare_invoke();
        call.key(self.nodes_key())
            .arg(&*self.prefix)
            .arg(&*self.node)
            .arg(held.len());
        for peer in held.keys() {
            call.arg(peer.as_str());
        }
        for (peer, room) in &pairs {
            call.arg(peer.as_str()).arg(room.as_str());
        }
        bounded(self.timeout, call.invoke_async::<i64>(&mut conn)).await?;
        Ok(pairs.len())
    }

    /// Forgets this node's peers and returns them, for disconnecting them after the cluster
    /// declared this node dead: their rooms were already told they left, so their own
    /// disconnects must not tell them again.
    pub(crate) fn forget_local_peers(&self) -> Vec<PeerId> {
        lock(&self.held).clear();
        self.own().drain().map(|(peer, _)| peer).collect()
    }
}
