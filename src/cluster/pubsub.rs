//! The Redis pub/sub driver under socketioxide-redis's adapter, which also carries relays
//! to one node's own inbox and the membership notices: keeps every subscription alive
//! across Redis restarts (the crate's own driver silently loses them), and replays from
//! short streams what a resubscribing node missed (see docs/cluster.md, "Inside").

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Mutex, mpsc};
use tracing::{info, warn};

use crate::error::{Error, bounded};
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

/// The name of node `node`'s inbox: its channel, and the key of its stream.
fn inbox(node: &str) -> String {
    format!("{}inbox:{node}", super::PREFIX)
}

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

/// The driver handed to the adapter: it publishes on the self-healing command connection
/// and subscribes on one of its own. Clones share that connection pair.
#[derive(Clone)]
pub(crate) struct PubSubDriver {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    commands: ConnectionManager,
    timeout: Duration,
    /// Every channel the adapter subscribed to, with where its messages go. The keys are
    /// what gets subscribed again after a reconnect.
    handlers: RwLock<Handlers>,
    /// The live subscriber connection's sending half, `None` while disconnected. Held
    /// while (re)subscribing so that a channel added meanwhile is never missed.
    sink: Mutex<Option<PubSubSink>>,
    /// True while connected with every channel subscribed.
    live: AtomicBool,
    /// Counts subscriber connections made. A new one may mean a new Redis that lost
    /// everything, so the node registers its memberships again before it is ready.
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
    /// Starts the subscriber task. `ping_every` is how often an idle subscriber connection
    /// is checked.
    /// `node` is this node's id, which names its inbox.
    pub(crate) fn start(
        client: redis::Client,
        commands: ConnectionManager,
        node: &str,
        timeout: Duration,
        ping_every: Duration,
    ) -> Self {
        let inner = Arc::new(Inner {
            client,
            commands,
            timeout,
            handlers: RwLock::default(),
            sink: Mutex::default(),
            live: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            bus: Line::new(format!("{}{}", super::PREFIX, crate::membership::BUS)),
            publish: redis::Script::new(PUBLISH),
            publish_once: redis::Script::new(&format!("{ONCE_GUARD}{PUBLISH}")),
            node: node.into(),
            inbox: Line::new(inbox(node)),
            to_inbox: redis::Script::new(TO_INBOX),
            notices: format!("{}{}", super::PREFIX, crate::membership::NOTICES),
            taps: std::sync::OnceLock::new(),
        });
        tokio::spawn(subscriber(Arc::downgrade(&inner), ping_every));
        Self { inner }
    }

    /// Whether the subscriber connection is up with every channel subscribed.
    pub(crate) fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
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
        call.key(inbox(node))
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

/// Owns the subscriber connection for as long as the driver lives: connect, subscribe to
/// every known channel, forward messages, and start over when the connection dies.
async fn subscriber(inner: std::sync::Weak<Inner>, ping_every: Duration) {
    let mut backoff = Duration::from_millis(100);
    let mut was_live = true;
    loop {
        let Some(driver) = inner.upgrade().map(|inner| PubSubDriver { inner }) else {
            return;
        };
        let timeout = driver.inner.timeout;
        let connected = bounded(timeout, driver.inner.client.get_async_pubsub()).await;
        let stream = match connected {
            Ok(pubsub) => {
                let (sink, stream) = pubsub.split();
                match driver.resubscribe(sink).await {
                    Ok(()) => Some(stream),
                    Err(error) => {
                        warn!(%error, "redis: subscribing failed");
                        None
                    }
                }
            }
            Err(error) => {
                if was_live {
                    warn!(%error, "redis: subscriber cannot connect");
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
            channels = driver.handlers().len(),
            "redis: subscriber connected"
        );
        if let Some(taps) = driver.inner.taps.get() {
            taps.reconnected();
        }
        // Subscribed first, so nothing falls between the replay and the live messages;
        // what arrives both ways is passed on once.
        // The command connection may have died with this one, and reconnects on the
        // command after a failure: one retry.
        let replayed = match driver.replay().await {
            Err(_) => driver.replay().await,
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
                msg = stream.next() => match msg {
                    Some(msg) => driver.dispatch(msg.get_channel_name(), msg.get_payload_bytes()),
                    None => break,
                },
                _ = ping.tick() => {
                    let sink = driver.inner.sink.lock().await.clone();
                    let Some(mut sink) = sink else { break };
                    if let Err(error) = bounded(timeout, sink.ping::<redis::Value>()).await {
                        warn!(%error, "redis: subscriber ping failed");
                        break;
                    }
                }
            }
        }
        driver.inner.live.store(false, Ordering::Release);
        *driver.inner.sink.lock().await = None;
        warn!("redis: subscriber connection lost, reconnecting");
    }
}

impl PubSubDriver {
    /// Subscribes a fresh connection to every known channel, then makes it the live one.
    async fn resubscribe(&self, mut sink: PubSubSink) -> Result<(), Error> {
        let mut live = self.inner.sink.lock().await;
        let mut channels: Vec<String> = self.handlers().keys().cloned().collect();
        channels.push(self.inner.inbox.stream.clone());
        channels.push(self.inner.notices.clone());
        bounded(self.inner.timeout, sink.subscribe(&channels)).await?;
        *live = Some(sink);
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        self.inner.live.store(true, Ordering::Release);
        Ok(())
    }

    /// Passes on, once, what the streams hold after the last message passed on (before the
    /// first connection: nothing, and the replay starts from the streams' ends): first the
    /// inbox, then the bus, so that a relay published before its sender's
    /// `user-disconnected` is still passed on before it. Returns how many messages it passed
    /// on.
    async fn replay(&self) -> Result<usize, Error> {
        let inbox = self.replay_line(&self.inner.inbox).await?;
        Ok(inbox + self.replay_line(&self.inner.bus).await?)
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
                    .key(format!("{}once:{key}", super::PREFIX))
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
        let sink = self.inner.sink.lock().await;
        if let Some(mut sink) = sink.clone()
            && let Err(error) = bounded(self.inner.timeout, sink.subscribe(&chan)).await
        {
            // The connection is failing: the subscriber task reconnects and subscribes
            // this channel along with the others.
            warn!(chan, %error, "redis: subscribe failed, retried on reconnect");
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers_mut().remove(&chan);
        let sink = self.inner.sink.lock().await.clone();
        if let Some(mut sink) = sink {
            bounded(self.inner.timeout, sink.unsubscribe(&chan)).await?;
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let mut conn = self.inner.commands.clone();
        let (_, count): (String, u16) = bounded(
            self.inner.timeout,
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(chan)
                .query_async(&mut conn),
        )
        .await?;
        Ok(count)
    }
}
