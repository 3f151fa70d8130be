//! The Redis pub/sub driver under socketioxide-redis's adapter, which also carries relays
//! to one node's own inbox and the membership notices: keeps every subscription alive
//! across Redis restarts and Redis Cluster failovers (the crate's own driver silently loses
//! them), and replays from short streams what a resubscribing node missed (see
//! docs/cluster.md, "Inside").

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::{AsyncConnectionConfig, Msg, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Mutex, mpsc};
use tracing::{info, warn};

use super::layout::Layout;
use super::open::Target;
use crate::error::{Error, bounded};
use crate::redis_conn::{self, Commands};
// About how many messages the bus stream keeps: far more than a few seconds of a busy
// cluster's cross-node traffic, which is all a reconnect needs.
use crate::membership::BUS_LENGTH;

/// Longest pause between two attempts to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// About how many relays a node's inbox stream keeps, and how long it is kept after the
/// last one (a dead node's inbox goes away by itself).
const INBOX_LENGTH: u64 = 10_000;
const INBOX_KEEP: Duration = Duration::from_secs(600);

/// KEYS: a node's inbox (its stream and its channel have that name); ARGV: stream length,
/// how long to keep the stream (ms), then the messages. Adds each message to the stream
/// and publishes it prefixed with its stream id and a space, as [`PUBLISH`] does.
const TO_INBOX: &str = r"
for i = 3, #ARGV do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'p', ARGV[i])
  redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// KEYS: the stream; ARGV: channel, payload, stream length. Adds the message to the
/// stream, then publishes it prefixed with its stream id and a space, in one step: the
/// ids of what a subscriber receives only grow, and whatever it missed is in the stream.
const PUBLISH: &str = r"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[1], 'p', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return 1
";

/// Put before [`PUBLISH`] for an emit that may be retried (see [`crate::once`]), KEYS[2]
/// being its once-key, ARGV[4] how long that key is kept, in ms, and ARGV[5] this node:
/// publishes only if the key is not there, and keeps the node in it. A key set by this
/// node means its own earlier attempt ran after all (it timed out here, so its sockets
/// were not sent it): returns 0, and the adapter delivers to them. A key set by another
/// node means that node told every node, this one's sockets too: answers with an error of
/// code `TOLD_ELSEWHERE` (a one-word message would get Redis's `ERR` code instead), so the
/// adapter delivers nothing here.
const ONCE_GUARD: &str = r"
if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[4]) then
  if redis.call('GET', KEYS[2]) == ARGV[5] then return 0 end
  return redis.error_reply('TOLD_ELSEWHERE another node published it first')
end";

/// How long a once-key is kept: far longer than a retry takes to follow its first attempt
/// (the next heartbeat that reaches Redis), yet short enough that keys of busy rooms'
/// leaves never add up.
const ONCE_KEEP: Duration = Duration::from_secs(120);

/// A stream entry id, `milliseconds-sequence`.
type StreamId = (u64, u64);

fn parse_id(id: &[u8]) -> Option<StreamId> {
    let id = std::str::from_utf8(id).ok()?;
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

type Handlers = HashMap<String, mpsc::Sender<ChanItem>>;

/// Where what the adapter does not handle goes, called in the subscriber task in the order
/// messages were published.
pub(crate) trait Taps: Send + Sync {
    /// A relay another node sent to this one's inbox.
    fn relay(&self, message: &[u8]);
    /// A membership notice (see [`crate::membership::Notice`]).
    fn notice(&self, message: &[u8]);
    /// The subscriber connection was made again: messages may have been lost (Redis
    /// restarted without them).
    fn reconnected(&self);
}

/// A stream that what is published also goes to, and the id of the last message of it
/// passed on: what a replay starts after, and what a message received both live and
/// replayed is recognised by. `None` before any.
struct Line {
    stream: String,
    last: std::sync::Mutex<Option<StreamId>>,
}

impl Line {
    fn new(stream: String) -> Self {
        Self {
            stream,
            last: std::sync::Mutex::default(),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<StreamId>> {
        // Only a comparison and an assignment happen under this lock.
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether message `id` is new, noting it as the last if it is.
    fn is_new(&self, id: StreamId) -> bool {
        let mut last = self.last();
        if last.is_some_and(|last| id <= last) {
            return false;
        }
        *last = Some(id);
        true
    }
}

/// What one subscriber connection carries. On one server a single connection carries
/// everything; in a Redis Cluster, where a shard channel can only be subscribed on the shard
/// owning its slot, one connection carries the bus's channels (the adapter's and the
/// notices) and another this node's inbox, each replaying only its own stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    All,
    Bus,
    Inbox,
}

/// One subscriber connection, kept up by its own task.
struct Part {
    carries: Carries,
    /// The live connection's sending half, `None` while disconnected. Held while
    /// (re)subscribing so that a channel added meanwhile is never missed.
    sink: Mutex<Option<Sink>>,
    /// True while connected with every channel subscribed.
    live: AtomicBool,
}

impl Part {
    fn new(carries: Carries) -> Self {
        Self {
            carries,
            sink: Mutex::default(),
            live: AtomicBool::new(false),
        }
    }
}

/// The sending half of a subscriber connection: a RESP2 pub/sub connection on one server,
/// a RESP3 connection to one master in a Redis Cluster (`SSUBSCRIBE`).
#[derive(Clone)]
enum Sink {
    Plain(PubSubSink),
    Sharded(MultiplexedConnection),
}

impl Sink {
    async fn subscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Self::Plain(sink) => sink.subscribe(channels).await,
            Self::Sharded(conn) => {
                // One channel per command: redis-rs takes a confirmation push as the answer to
                // the command in flight, and a command with several channels gets several.
                for channel in channels {
                    redis::cmd("SSUBSCRIBE")
                        .arg(channel)
                        .query_async::<redis::Value>(conn)
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Self::Plain(sink) => sink.unsubscribe(channel).await,
            Self::Sharded(conn) => redis::cmd("SUNSUBSCRIBE")
                .arg(channel)
                .query_async::<redis::Value>(conn)
                .await
                .map(drop),
        }
    }

    async fn ping(&mut self) -> redis::RedisResult<()> {
        match self {
            Self::Plain(sink) => sink.ping::<redis::Value>().await.map(drop),
            Self::Sharded(conn) => redis::cmd("PING")
                .query_async::<redis::Value>(conn)
                .await
                .map(drop),
        }
    }
}

/// What a subscriber connection hears.
enum Heard {
    Message(Msg),
    /// Redis dropped this shard channel's subscription: its slot moved to another shard.
    Unsubscribed(String),
    Lost,
}

impl Heard {
    fn from_push(push: PushInfo) -> Option<Self> {
        match push.kind {
            PushKind::SMessage => Msg::from_push_info(push).map(Self::Message),
            PushKind::SUnsubscribe => {
                let channel = push.data.first()?;
                let channel: String = redis::from_redis_value_ref(channel).ok()?;
                Some(Self::Unsubscribed(channel))
            }
            PushKind::Disconnection => Some(Self::Lost),
            _ => None,
        }
    }
}

type Incoming = Pin<Box<dyn Stream<Item = Heard> + Send>>;

/// The driver handed to the adapter: it publishes on the self-healing command connection
/// and subscribes on connections of its own. Clones share those connections.
#[derive(Clone)]
pub(crate) struct PubSubDriver {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    commands: Commands,
    timeout: Duration,
    /// Every channel the adapter subscribed to, with where its messages go. The keys are
    /// what gets subscribed again after a reconnect.
    handlers: RwLock<Handlers>,
    /// The subscriber connections; the first carries the adapter's channels.
    parts: Vec<Part>,
    /// Counts subscriber connections made. A new one may mean a new Redis (or a new master
    /// after a failover) that lost writes, so the node registers its memberships again
    /// before it is ready.
    connections: AtomicU64,
    /// The stream every message to all nodes also goes to, and the scripts that put it
    /// there.
    bus: Line,
    publish: redis::Script,
    publish_once: redis::Script,
    /// This node's id, kept in the once-keys it sets.
    node: Arc<str>,
    /// This node's inbox: the channel (and stream) of the relays sent to it alone.
    inbox: Line,
    to_inbox: redis::Script,
    layout: Layout,
    /// The channel of membership notices, carried by the bus.
    notices: String,
    taps: std::sync::OnceLock<Box<dyn Taps>>,
}

impl std::fmt::Debug for PubSubDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubDriver")
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl PubSubDriver {
    /// Starts the subscriber tasks. `ping_every` is how often an idle subscriber
    /// connection is checked. `node` is this node's id, which names its inbox.
    pub(crate) fn start(
        target: Target,
        commands: Commands,
        layout: Layout,
        node: &str,
        timeout: Duration,
        ping_every: Duration,
    ) -> Self {
        let sharded = matches!(target, Target::Cluster(_));
        let prefix = layout.prefix();
        let parts = if sharded {
            vec![Part::new(Carries::Bus), Part::new(Carries::Inbox)]
        } else {
            vec![Part::new(Carries::All)]
        };
        let inner = Arc::new(Inner {
            target,
            commands,
            timeout,
            handlers: RwLock::default(),
            parts,
            connections: AtomicU64::new(0),
            bus: Line::new(format!("{prefix}{}", crate::membership::BUS)),
            publish: redis_conn::script(PUBLISH, sharded),
            publish_once: redis_conn::script(&format!("{ONCE_GUARD}{PUBLISH}"), sharded),
            node: node.into(),
            inbox: Line::new(layout.inbox(node)),
            to_inbox: redis_conn::script(TO_INBOX, sharded),
            layout,
            notices: format!("{prefix}{}", crate::membership::NOTICES),
            taps: std::sync::OnceLock::new(),
        });
        for part in 0..inner.parts.len() {
            tokio::spawn(subscriber(Arc::downgrade(&inner), part, ping_every));
        }
        Self { inner }
    }

    /// Whether every subscriber connection is up with every channel subscribed.
    pub(crate) fn is_live(&self) -> bool {
        self.inner
            .parts
            .iter()
            .all(|part| part.live.load(Ordering::Acquire))
    }

    /// How many times the subscriber connection was (re)made.
    pub(crate) fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Sets where relays to this node and notices go; until then they are dropped (no
    /// client can be connected yet). Only the first call counts.
    pub(crate) fn tap(&self, taps: Box<dyn Taps>) {
        let _ = self.inner.taps.set(taps);
    }

    /// Adds `messages` to the inbox of node `node`, in order, in one script call.
    pub(crate) async fn send_to(&self, node: &str, messages: &[Vec<u8>]) -> Result<(), Error> {
        let mut conn = self.inner.commands.clone();
        let mut call = self.inner.to_inbox.prepare_invoke();
        call.key(self.inner.layout.inbox(node))
            .arg(INBOX_LENGTH)
            .arg(u64::try_from(INBOX_KEEP.as_millis()).unwrap_or(u64::MAX));
        for message in messages {
            call.arg(message.as_slice());
        }
        bounded(self.inner.timeout, call.invoke_async::<()>(&mut conn)).await
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, Handlers> {
        // Only map operations happen under this lock; a poisoned map is still correct.
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Owns subscriber connection `part` for as long as the driver lives: connect, subscribe to
/// every channel it carries, replay what it missed, forward messages, and start over when
/// the connection dies.
async fn subscriber(inner: std::sync::Weak<Inner>, part: usize, ping_every: Duration) {
    let mut backoff = Duration::from_millis(100);
    let mut was_live = true;
    loop {
        let Some(driver) = inner.upgrade().map(|inner| PubSubDriver { inner }) else {
            return;
        };
        let timeout = driver.inner.timeout;
        let carries = driver.inner.parts[part].carries;
        let stream = match driver.connect(carries).await {
            Ok((sink, stream)) => match driver.resubscribe(part, sink).await {
                Ok(()) => Some(stream),
                Err(error) => {
                    warn!(%error, ?carries, "redis: subscribing failed");
                    None
                }
            },
            Err(error) => {
                if was_live {
                    warn!(%error, ?carries, "redis: subscriber cannot connect");
                }
                None
            }
        };
        let Some(mut stream) = stream else {
            was_live = false;
            drop(driver);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        backoff = Duration::from_millis(100);
        was_live = true;
        info!(
            channels = driver.channels(carries).len(),
            ?carries,
            "redis: subscriber connected"
        );
        if let Some(taps) = driver.inner.taps.get() {
            taps.reconnected();
        }
        // Subscribed first, so nothing falls between the replay and the live messages;
        // what arrives both ways is passed on once.
        // The command connection may have died with this one, and reconnects on the
        // command after a failure: one retry.
        let replayed = match driver.replay(carries).await {
            Err(_) => driver.replay(carries).await,
            done => done,
        };
        match replayed {
            Ok(0) => {}
            Ok(replayed) => info!(replayed, "redis: replayed messages published while away"),
            Err(error) => warn!(%error, "redis: replay failed; messages may be lost"),
        }

        let mut ping = tokio::time::interval(ping_every);
        ping.tick().await;
        loop {
            tokio::select! {
                heard = stream.next() => match heard {
                    Some(Heard::Message(msg)) => {
                        driver.dispatch(msg.get_channel_name(), msg.get_payload_bytes());
                    }
                    Some(Heard::Unsubscribed(channel)) => {
                        if driver.wants(&channel) {
                            warn!(channel, "redis: a shard dropped a subscription (its slot moved)");
                            break;
                        }
                    }
                    Some(Heard::Lost) | None => break,
                },
                _ = ping.tick() => {
                    let sink = driver.inner.parts[part].sink.lock().await.clone();
                    let Some(mut sink) = sink else { break };
                    if let Err(error) = bounded(timeout, sink.ping()).await {
                        warn!(%error, "redis: subscriber ping failed");
                        break;
                    }
                }
            }
        }
        let part = &driver.inner.parts[part];
        part.live.store(false, Ordering::Release);
        *part.sink.lock().await = None;
        warn!(?carries, "redis: subscriber connection lost, reconnecting");
    }
}

impl PubSubDriver {
    /// Opens a subscriber connection for what `carries` names: on one server, a pub/sub
    /// connection; in a Redis Cluster, a RESP3 connection to the master that owns the slot
    /// of those channels, as the cluster says now.
    async fn connect(&self, carries: Carries) -> Result<(Sink, Incoming), Error> {
        let timeout = self.inner.timeout;
        let seeds = match &self.inner.target {
            Target::One(client) => {
                let (sink, stream) = bounded(timeout, client.get_async_pubsub()).await?.split();
                return Ok((Sink::Plain(sink), Box::pin(stream.map(Heard::Message))));
            }
            Target::Cluster(seeds) => seeds,
        };
        let channel = match carries {
            Carries::Inbox => &self.inner.inbox.stream,
            Carries::All | Carries::Bus => &self.inner.notices,
        };
        let (host, port) = self.owner(channel).await?;
        let client = seeds.client_at(&host, port)?;
        let (pushes, heard) = mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(pushes);
        let conn = bounded(
            timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        let heard = futures_util::stream::unfold(heard, |mut heard| async move {
            heard.recv().await.map(|push| (push, heard))
        })
        .filter_map(|push| std::future::ready(Heard::from_push(push)));
        Ok((Sink::Sharded(conn), Box::pin(heard)))
    }

    /// The address of the master that owns `channel`'s slot, from `CLUSTER SLOTS`.
    async fn owner(&self, channel: &str) -> Result<(String, u16), Error> {
        let slot = redis_conn::slot(channel.as_bytes());
        let mut conn = self.inner.commands.clone();
        let ranges: Vec<Vec<redis::Value>> = bounded(
            self.inner.timeout,
            redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn),
        )
        .await?;
        for range in &ranges {
            let [start, end, master, ..] = range.as_slice() else {
                continue;
            };
            let (Ok(start), Ok(end), Ok(master)) = (
                redis::from_redis_value_ref::<u16>(start),
                redis::from_redis_value_ref::<u16>(end),
                redis::from_redis_value_ref::<Vec<redis::Value>>(master),
            ) else {
                continue;
            };
            if !(start..=end).contains(&slot) {
                continue;
            }
            if let [host, port, ..] = master.as_slice()
                && let (Ok(host), Ok(port)) = (
                    redis::from_redis_value_ref::<String>(host),
                    redis::from_redis_value_ref::<u16>(port),
                )
                && !host.is_empty()
                && host != "?"
            {
                return Ok((host, port));
            }
        }
        Err(redis::RedisError::from(std::io::Error::other(format!(
            "no master of slot {slot} is known (the cluster is failing over?)"
        )))
        .into())
    }

    /// The channels a subscriber connection that `carries` those subscribes to.
    fn channels(&self, carries: Carries) -> Vec<String> {
        let mut channels = Vec::new();
        if carries != Carries::Inbox {
            channels.extend(self.handlers().keys().cloned());
            channels.push(self.inner.notices.clone());
        }
        if carries != Carries::Bus {
            channels.push(self.inner.inbox.stream.clone());
        }
        channels
    }

    /// Whether this node still wants to hear `channel`.
    fn wants(&self, channel: &str) -> bool {
        channel == self.inner.inbox.stream
            || channel == self.inner.notices
            || self.handlers().contains_key(channel)
    }

    /// Subscribes a fresh connection to every channel of subscriber connection `part`,
    /// then makes it the live one.
    async fn resubscribe(&self, part: usize, mut sink: Sink) -> Result<(), Error> {
        let part = &self.inner.parts[part];
        let mut live = part.sink.lock().await;
        let channels = self.channels(part.carries);
        bounded(self.inner.timeout, sink.subscribe(&channels)).await?;
        *live = Some(sink);
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        part.live.store(true, Ordering::Release);
        Ok(())
    }

    /// Passes on, once, what the streams hold after the last message passed on (before the
    /// first connection: nothing, and the replay starts from the streams' ends): first the
    /// inbox, then the bus, so that a relay published before its sender's
    /// `user-disconnected` is still passed on before it; in a Redis Cluster only the stream
    /// of the connection made again. Returns how many messages it passed on.
    async fn replay(&self, carries: Carries) -> Result<usize, Error> {
        let inbox = match carries {
            Carries::Bus => 0,
            Carries::All | Carries::Inbox => self.replay_line(&self.inner.inbox).await?,
        };
        let bus = match carries {
            Carries::Inbox => 0,
            Carries::All | Carries::Bus => self.replay_line(&self.inner.bus).await?,
        };
        Ok(inbox + bus)
    }

    async fn replay_line(&self, line: &Line) -> Result<usize, Error> {
        let mut conn = self.inner.commands.clone();
        let timeout = self.inner.timeout;
        let last = *line.last();
        let Some((ms, seq)) = last else {
            let newest: Vec<(String, Vec<Vec<u8>>)> = bounded(
                timeout,
                redis::cmd("XREVRANGE")
                    .arg(&line.stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn),
            )
            .await?;
            let start = newest
                .first()
                .and_then(|(id, _)| parse_id(id.as_bytes()))
                .unwrap_or((0, 0));
            line.last().get_or_insert(start);
            return Ok(0);
        };
        let entries: Vec<(String, Vec<Vec<u8>>)> = bounded(
            timeout,
            redis::cmd("XRANGE")
                .arg(&line.stream)
                .arg(format!("({ms}-{seq}"))
                .arg("+")
                .arg("COUNT")
                .arg(BUS_LENGTH)
                .query_async(&mut conn),
        )
        .await?;
        let mut replayed = 0;
        for (id, fields) in entries {
            let Some(id) = parse_id(id.as_bytes()) else {
                continue;
            };
            let passed = match fields.as_slice() {
                [c, chan, p, payload] if c.as_slice() == b"c" && p.as_slice() == b"p" => {
                    self.pass_on(String::from_utf8_lossy(chan).as_ref(), id, payload)
                }
                [p, payload] if p.as_slice() == b"p" => {
                    self.pass_on(&self.inner.inbox.stream, id, payload)
                }
                _ => false,
            };
            if passed {
                replayed += 1;
            }
        }
        Ok(replayed)
    }

    /// A live message: its stream id, a space, then what was published.
    fn dispatch(&self, chan: &str, message: &[u8]) {
        let split = message.iter().position(|&b| b == b' ');
        let Some((id, payload)) =
            split.and_then(|at| Some((parse_id(&message[..at])?, &message[at + 1..])))
        else {
            // From a node of an older version, during a rolling deploy: passed on as is.
            self.forward(chan, message);
            return;
        };
        self.pass_on(chan, id, payload);
    }

    /// Passes message `id` of `chan` on unless it was already; true if it was now.
    fn pass_on(&self, chan: &str, id: StreamId, payload: &[u8]) -> bool {
        let taps = self.inner.taps.get();
        if chan == self.inner.inbox.stream {
            if !self.inner.inbox.is_new(id) {
                return false;
            }
            if let Some(taps) = taps {
                taps.relay(payload);
            }
            return true;
        }
        if !self.inner.bus.is_new(id) {
            return false;
        }
        if chan == self.inner.notices {
            if let Some(taps) = taps {
                taps.notice(payload);
            }
        } else {
            self.forward(chan, payload);
        }
        true
    }

    fn forward(&self, chan: &str, payload: &[u8]) {
        let handlers = self.handlers();
        let Some(tx) = handlers.get(chan) else {
            return;
        };
        if let Err(error) = tx.try_send((chan.to_owned(), payload.to_vec())) {
            warn!(chan, %error, "redis: adapter is not keeping up, message dropped");
        }
    }
}

impl Driver for PubSubDriver {
    type Error = Error;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let mut conn = self.inner.commands.clone();
        let mut call;
        match crate::once::key() {
            None => {
                call = self.inner.publish.prepare_invoke();
                call.key(&self.inner.bus.stream)
                    .arg(chan)
                    .arg(val)
                    .arg(BUS_LENGTH);
            }
            Some(key) => {
                call = self.inner.publish_once.prepare_invoke();
                call.key(&self.inner.bus.stream)
                    .key(format!("{}once:{key}", self.inner.layout.prefix()))
                    .arg(chan)
                    .arg(val)
                    .arg(BUS_LENGTH)
                    .arg(u64::try_from(ONCE_KEEP.as_millis()).unwrap_or(u64::MAX))
                    .arg(&*self.inner.node);
            }
        }
        match bounded(self.inner.timeout, call.invoke_async::<()>(&mut conn)).await {
            Err(Error::Redis(error)) if error.code() == Some("TOLD_ELSEWHERE") => {
                crate::once::told_elsewhere();
                Err(Error::ToldElsewhere)
            }
            done => done,
        }
    }

    /// Never fails: a channel asked for while Redis is away is subscribed as soon as the
    /// subscriber connection is back, so the adapter can start before Redis does.
    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers_mut().insert(chan.clone(), tx);
        let sink = self.inner.parts[0].sink.lock().await;
        if let Some(mut sink) = sink.clone()
            && let Err(error) = bounded(
                self.inner.timeout,
                sink.subscribe(std::slice::from_ref(&chan)),
            )
            .await
        {
            // The connection is failing: the subscriber task reconnects and subscribes
            // this channel along with the others.
            warn!(chan, %error, "redis: subscribe failed, retried on reconnect");
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers_mut().remove(&chan);
        let sink = self.inner.parts[0].sink.lock().await.clone();
        if let Some(mut sink) = sink {
            bounded(self.inner.timeout, sink.unsubscribe(&chan)).await?;
        }
        Ok(())
    }

    /// How many nodes hear `chan`; in a Redis Cluster asked of the shard that owns it.
    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let mut conn = self.inner.commands.clone();
        let which = if conn.is_cluster() {
            "SHARDNUMSUB"
        } else {
            "NUMSUB"
        };
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(which).arg(chan);
        let answer = bounded(self.inner.timeout, conn.on_owner_of(chan, cmd)).await?;
        let (_, count): (String, u16) =
            redis::from_redis_value(answer).map_err(redis::RedisError::from)?;
        Ok(count)
    }
}
