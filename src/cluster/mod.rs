//! One node of a cluster joined through Redis (`REDIS_URL`): the adapter that carries emits
//! to the other nodes, readiness, and the heartbeat that finds dead nodes and puts this
//! node's memberships back after Redis lost them (how and why: docs/cluster.md).

mod layout;
mod open;
mod outbox;
mod pubsub;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterConfig as RedisClusterConfig;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::error::Result;
use crate::membership::{Limits, Membership, NodeRooms, Notice};
use crate::metrics::Metrics;
use crate::protocol::{PeerId, RoomId};
use crate::redis_conn::Commands;
use crate::resume::{self, Resume};
use crate::signaling::{self, Elsewhere, Signaling};
use layout::Layout;
use open::{Seeds, Target};
use outbox::Outbox;
use pubsub::{PubSubDriver, Taps};

/// The adapter every node uses in cluster mode.
pub(crate) type ClusterAdapter =
    socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, PubSubDriver>;

/// A node's connection to the cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    rooms: NodeRooms,
    driver: PubSubDriver,
    outbox: Arc<Outbox>,
    /// Whether the last heartbeat (and any re-registration it asked for) succeeded.
    beating: Arc<AtomicBool>,
    /// The subscriber connection (see [`PubSubDriver::connections`]) for which this node
    /// last registered its memberships; 0 before the first time.
    registered_for: Arc<AtomicU64>,
    node: Arc<str>,
    interval: Duration,
    ttl: Duration,
    request_timeout: Duration,
    layout: Layout,
}

impl Cluster {
    /// Connects lazily: the node starts even while Redis is down, and reports not ready.
    /// Settings that can never work (an untrusted certificate, refused credentials) are an
    /// error instead, within a few seconds.
    /// With `REDIS_CLUSTER`, `url` holds the seed nodes of a Redis Cluster.
    pub(crate) async fn connect(config: &ClusterConfig, url: &str) -> Result<Self> {
        let ca_file = config.redis_ca_file.as_deref();
        let timeout = config.redis_timeout();
        let (target, commands) = if config.redis_cluster {
            let seeds = Seeds::new(url, ca_file)?;
            open::check(&seeds.first()?, timeout, true).await?;
            let commands = cluster_connection(&seeds, timeout);
            (Target::Cluster(seeds), commands)
        } else {
            let client = open::client(url, ca_file)?;
            open::check(&client, timeout, false).await?;
            let commands = command_connection(&client, timeout)?;
            (Target::One(client), commands)
        };
        let layout = Layout::new(config.redis_cluster);
        let node: Arc<str> = nanoid::nanoid!(12).into();
        let interval = config.node_heartbeat();
        let driver =
            PubSubDriver::start(target, commands.clone(), layout, &node, timeout, interval);
        Ok(Self {
            rooms: NodeRooms::new(commands, layout.prefix(), &node, timeout),
            outbox: Arc::new(Outbox::start(driver.clone())),
            driver,
            beating: Arc::default(),
            registered_for: Arc::default(),
            node,
            interval,
            ttl: config.node_ttl(),
            request_timeout: timeout,
            layout,
        })
    }

    /// Membership in this cluster's Redis.
    pub(crate) fn membership(&self, limits: Limits) -> Membership {
        self.rooms.membership(limits)
    }

    /// The Socket.IO adapter over this node's pub/sub driver. Requests to other nodes
    /// (`fetch_sockets`, `broadcast_with_ack`, which meshchat does not use) give up after
    /// the Redis timeout.
    pub(crate) fn adapter(&self) -> socketioxide_redis::RedisAdapterCtr<PubSubDriver> {
        let config = socketioxide_redis::RedisAdapterConfig::new()
            .with_prefix(self.layout.adapter_prefix())
            .with_request_timeout(self.request_timeout)
            .with_stream_buffer(8192);
        socketioxide_redis::RedisAdapterCtr::new_with_driver(self.driver.clone(), config)
    }

    /// Where relays to peers of other nodes go.
    pub(crate) fn elsewhere(&self) -> Arc<dyn Elsewhere> {
        self.outbox.clone()
    }

    /// From now on, relays sent to this node are delivered to its sockets in `io`, and
    /// membership notices kept in its view of other nodes' peers.
    pub(crate) fn receive<A: Adapter>(&self, io: SocketIo<A>, signaling: Signaling) {
        self.driver.tap(Box::new(Receiver {
            io,
            signaling,
            rooms: self.rooms.clone(),
        }));
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Ready to serve: Redis answers and every subscription is live.
    pub(crate) fn is_ready(&self) -> bool {
        let registered = self.registered_for.load(Ordering::Acquire);
        self.driver.is_live()
            && self.beating.load(Ordering::Acquire)
            && registered == self.driver.connections()
    }

    /// Beats until the process ends. Until `resume` has a key (no `RESUME_SECRET`), each
    /// beat first asks Redis for the one the nodes share.
    pub(crate) fn start_heartbeat<A: Adapter>(
        &self,
        io: SocketIo<A>,
        metrics: Arc<Metrics>,
        resume: Resume,
    ) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(cluster.interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if !resume.has_key() {
                    match cluster.rooms.shared_key(&resume::random_key()).await {
                        Ok(key) => resume.set_key(&key),
                        Err(error) => warn!(%error, "redis: resume key not read"),
                    }
                }
                let ok = cluster.beat(&io, &metrics, &resume).await;
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

    async fn beat<A: Adapter>(&self, io: &SocketIo<A>, metrics: &Metrics, resume: &Resume) -> bool {
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
            let peers = self.rooms.forget_local_peers();
            warn!(
                peers = peers.len(),
                "redis: this node was declared dead; dropping its clients"
            );
            let targets: Vec<String> = peers.iter().map(|p| p.socket_room()).collect();
            if !targets.is_empty() {
                let _ = io.local().to(targets).disconnect().await;
            }
            self.registered_for.store(connection, Ordering::Release);
        } else if tick.was_unknown || self.registered_for.load(Ordering::Acquire) != connection {
            // Redis lost this node's key (it restarted empty, or this node was silent past
            // its TTL), or the subscriber connection was made again (Redis may be another
            // one): write the memberships back, and the shared resume key, so that a node
            // starting now agrees with this one; both are idempotent. Not after a beat that
            // merely timed out: with Redis slow, tens of thousands of writes would make it
            // slower (the reconnect storm benchmark saw exactly that).
            if let Some(key) = resume.shared_key_to_keep()
                && let Err(error) = self.rooms.shared_key(&key).await
            {
                warn!(%error, "redis: resume key not written back");
            }
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
            // Not told: the sweep hands it to this node again on the next beat.
            let members = io.to(signaling::socket_rooms(&rooms));
            if signaling::announce_left(members, &peer, metrics).await {
                self.rooms.told_swept(peer);
            }
        }
        for (peer, rooms) in self.rooms.retry_leaves().await {
            self.announce_left(io, peer, rooms, metrics).await;
        }
        true
    }

    /// Tells `rooms` that `peer` left, or keeps the leave to tell at the next beat.
    async fn announce_left<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        peer: PeerId,
        rooms: Vec<RoomId>,
        metrics: &Metrics,
    ) {
        let members = io.to(signaling::socket_rooms(&rooms));
        if !signaling::announce_left(members, &peer, metrics).await {
            self.rooms.tell_later(peer, rooms);
        }
    }
}

/// What the driver passes on that is not the adapter's.
struct Receiver<A: Adapter> {
    io: SocketIo<A>,
    signaling: Signaling,
    rooms: NodeRooms,
}

impl<A: Adapter> Taps for Receiver<A> {
    fn relay(&self, message: &[u8]) {
        signaling::relayed_here(&self.io, &self.signaling, message);
    }

    fn notice(&self, message: &[u8]) {
        match Notice::parse(message) {
            Some(notice) => self.rooms.hear(notice),
            None => warn!("redis: a notice not understood"),
        }
    }

    fn reconnected(&self) {
        self.rooms.forget_view();
    }
}

/// Opens the command connection: it reconnects by itself on the next command after a
/// failure, and every attempt is short so that a request fails fast while Redis is away.
/// Lazy: the server starts (and reports not ready) even when Redis is down at boot.
pub(crate) fn command_connection(client: &redis::Client, timeout: Duration) -> Result<Commands> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(timeout);
    Ok(Commands::Single(ConnectionManager::new_lazy_with_config(
        client.clone(),
        config,
    )?))
}

/// The command connection to a Redis Cluster: redis-rs's, which learns the cluster's slots,
/// sends each command to the master owning its key and follows failovers (it asks again
/// for the slots after a `MOVED` or a lost connection). Lazy, like [`command_connection`].
fn cluster_connection(seeds: &Seeds, timeout: Duration) -> Commands {
    let config = RedisClusterConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout);
    Commands::Cluster(
        seeds
            .cluster
            .get_pending_async_connection_with_config(config),
    )
}
