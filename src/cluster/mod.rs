//! Running several nodes behind one address, joined through Redis (`REDIS_URL`).
//!
//! - [`driver`]: the pub/sub driver under socketioxide-redis's adapter, which carries every
//!   emit to the other nodes and survives Redis restarts.
//! - [`store`]: room membership in Redis, shared by all nodes.
//!
//! Why membership moves to Redis rather than being rebuilt from the adapter: a join must
//! see rooms whose members are all on other nodes, and the capacity and same-room checks
//! must be atomic across nodes; asking every node through the adapter (`fetch_sockets`)
//! costs a broadcast and a timeout-bounded wait per request and cannot be atomic. A single
//! node keeps the in-memory table (see [`crate::membership`]) and never talks to Redis.
//!
//! Node death: each node refreshes a heartbeat key with a TTL; on every beat, the script
//! that refreshes it also removes the peers of nodes whose key expired, atomically, so
//! exactly one survivor announces them (`user-disconnected` through the adapter, which
//! reaches every node). A dead node's peers are announced within TTL + one interval.
//!
//! Redis restarts: the subscriber reconnects and subscribes again by itself (see
//! [`driver`]); the first beat that finds this node's key gone (Redis lost its data)
//! writes this node's live memberships back. `/readyz` is 503 from the moment the
//! subscriber connection or a beat fails until both work again.
//!
//! How socketioxide-redis behaves when Redis fails, and what meshchat does about it: an
//! emit publishes to the other nodes *before* delivering locally, and a failed publish
//! fails the whole emit, so while Redis is away even members on the same node are not
//! reached. Relays and joins are refused anyway then (membership needs Redis), and a
//! leave that could not be written is retried by the heartbeat, which then announces it.
//! Requests that wait for other nodes' answers (`broadcast_with_ack`, `fetch_sockets`,
//! `rooms`) expect one answer per node counted by `PUBSUB NUMSUB`, which still counts a
//! node whose connection Redis has not yet seen drop, so they can wait out their whole
//! timeout; meshchat uses none of them, and the timeout is `REDIS_TIMEOUT_MS`. Every
//! Redis call a handler makes is bounded by that same timeout.

pub mod driver;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tracing::{info, warn};

use crate::config::Config;
use crate::rooms::RoomId;
use crate::signaling::event;
pub use driver::{PubSubDriver, RedisFailure};
pub use store::RedisRooms;

/// The adapter every node uses in cluster mode.
pub type ClusterAdapter =
    socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, PubSubDriver>;

/// Prefix of every key and channel meshchat uses in Redis.
const PREFIX: &str = "meshchat:";

/// A node's connection to the cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub rooms: RedisRooms,
    pub driver: PubSubDriver,
    /// Whether the last heartbeat (and any re-registration it asked for) succeeded.
    beating: Arc<AtomicBool>,
    /// The subscriber connection (see [`PubSubDriver::connections`]) for which this node
    /// last registered its memberships; 0 before the first time.
    registered_for: Arc<AtomicU64>,
    pub node: Arc<str>,
    interval: Duration,
    ttl: Duration,
}

impl Cluster {
    /// Connects lazily: the node starts even while Redis is down, and reports not ready.
    pub async fn connect(config: &Config, url: &str) -> Result<Self, RedisFailure> {
        let client = redis::Client::open(url)?;
        let timeout = config.redis_timeout();
        let commands = driver::command_connection(&client, timeout).await?;
        let node: Arc<str> = nanoid::nanoid!(12).into();
        let interval = config.node_heartbeat();
        let driver = PubSubDriver::start(client, commands.clone(), timeout, interval);
        Ok(Self {
            rooms: RedisRooms::new(commands, PREFIX, &node, timeout),
            driver,
            beating: Arc::default(),
            registered_for: Arc::default(),
            node,
            interval,
            ttl: config.node_ttl(),
        })
    }

    /// The adapter's settings: requests to other nodes (`fetch_sockets`,
    /// `broadcast_with_ack`, which meshchat does not use) give up after the Redis timeout.
    pub fn adapter_config(config: &Config) -> socketioxide_redis::RedisAdapterConfig {
        socketioxide_redis::RedisAdapterConfig::new()
            .with_prefix(format!("{PREFIX}socket.io"))
            .with_request_timeout(config.redis_timeout())
            .with_stream_buffer(8192)
    }

    /// Ready to serve: Redis answers and every subscription is live.
    pub fn is_ready(&self) -> bool {
        let registered = self.registered_for.load(Ordering::Acquire);
        self.driver.is_live()
            && self.beating.load(Ordering::Acquire)
            && registered == self.driver.connections()
    }

    /// Beats until the process ends: see the module docs.
    pub fn start_heartbeat<A: Adapter>(&self, io: SocketIo<A>) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(cluster.interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let ok = cluster.beat(&io).await;
                if ok != cluster.beating.swap(ok, Ordering::AcqRel) {
                    if ok {
                        info!(node = %cluster.node, "redis: heartbeat ok");
                    } else {
                        warn!(node = %cluster.node, "redis: heartbeat failing");
                    }
                }
            }
        });
    }

    async fn beat<A: Adapter>(&self, io: &SocketIo<A>) -> bool {
        // Read first: a reconnect that happens during this beat is handled by the next.
        let connection = self.driver.connections();
        let tick = match self.rooms.tick(self.ttl).await {
            Ok(tick) => tick,
            Err(error) => {
                if self.beating.load(Ordering::Acquire) {
                    warn!(%error, "redis: heartbeat failed");
                }
                return false;
            }
        };
        if tick.was_swept {
            // The others were told this node's peers left: make that true, so clients
            // reconnect and rejoin instead of sitting in rooms nobody else sees them in.
            let peers = self.rooms.local_peers();
            warn!(
                peers = peers.len(),
                "redis: this node was declared dead; dropping its clients"
            );
            let targets: Vec<String> = peers.iter().map(|p| p.socket_room()).collect();
            if !targets.is_empty() {
                let _ = io.local().to(targets).disconnect().await;
            }
            self.registered_for.store(connection, Ordering::Release);
        } else if tick.was_unknown
            || !self.beating.load(Ordering::Acquire)
            || self.registered_for.load(Ordering::Acquire) != connection
        {
            // Redis lost this node's key, or contact was lost meanwhile (Redis may have
            // restarted empty): write the memberships back; it is idempotent.
            match self.rooms.register_again().await {
                Ok(n) => {
                    self.registered_for.store(connection, Ordering::Release);
                    info!(node = %self.node, memberships = n, "redis: node registered");
                }
                Err(error) => {
                    warn!(%error, "redis: registering memberships failed");
                    return false;
                }
            }
        }
        for (peer, rooms) in tick.gone {
            info!(%peer, rooms = rooms.len(), "peer of a dead node removed");
            announce_left(io, &peer, &rooms).await;
        }
        for (peer, rooms) in self.rooms.retry_leaves().await {
            announce_left(io, &peer, &rooms).await;
        }
        true
    }
}

/// Tells every member of `rooms`, on any node, that `peer` left.
async fn announce_left<A: Adapter>(
    io: &SocketIo<A>,
    peer: &crate::rooms::PeerId,
    rooms: &[RoomId],
) {
    let targets: Vec<String> = rooms.iter().map(RoomId::socket_room).collect();
    if let Err(error) = io
        .to(targets)
        .emit(event::USER_DISCONNECTED, peer.as_str())
        .await
    {
        warn!(?error, "announcing a departed peer failed");
    }
}
