//! The Redis pub/sub driver under socketioxide-redis's adapter: publishes on a
//! self-healing command connection and keeps every subscription alive across Redis
//! restarts (the crate's own driver silently loses them; see the README, "Several nodes").

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

/// Longest pause between two attempts to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

type Handlers = HashMap<String, mpsc::Sender<ChanItem>>;

/// The driver handed to the adapter. Clones share one connection pair.
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
    pub(crate) fn start(
        client: redis::Client,
        commands: ConnectionManager,
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
        let channels: Vec<String> = self.handlers().keys().cloned().collect();
        if !channels.is_empty() {
            bounded(self.inner.timeout, sink.subscribe(&channels)).await?;
        }
        *live = Some(sink);
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        self.inner.live.store(true, Ordering::Release);
        Ok(())
    }

    fn dispatch(&self, chan: &str, payload: &[u8]) {
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
        bounded(
            self.inner.timeout,
            redis::cmd("PUBLISH")
                .arg(chan)
                .arg(val)
                .query_async::<()>(&mut conn),
        )
        .await
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
