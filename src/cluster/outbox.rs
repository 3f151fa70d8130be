//! The relays this node sends to peers of other nodes, in one queue: published in the
//! order they were queued, those queued while a publish was under way together, in one
//! script call per node.

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::pubsub::PubSubDriver;
use crate::signaling::Elsewhere;

/// Relays waiting for their publish, at most: past it a relay is refused (`undeliverable`)
/// rather than let a Redis that stalls fill the memory.
const QUEUE: usize = 16_384;

/// The most relays one publish carries.
const MOST_AT_ONCE: usize = 256;

enum Item {
    Relay {
        node: String,
        message: Vec<u8>,
        done: oneshot::Sender<bool>,
    },
    Flush(oneshot::Sender<bool>),
}

/// A node, the relays of a batch for it, and where to say whether they were published.
type ForNode = (String, Vec<Vec<u8>>, Vec<oneshot::Sender<bool>>);

/// The queue's sending end. Cheap to share.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: mpsc::Sender<Item>,
}

impl Outbox {
    /// Starts the task that publishes what is queued through `driver`.
    pub(crate) fn start(driver: PubSubDriver) -> Self {
        let (queue, items) = mpsc::channel(QUEUE);
        tokio::spawn(publish(driver, items));
        Self { queue }
    }
}

impl Elsewhere for Outbox {
    fn send(&self, node: &str, message: Vec<u8>) -> Option<oneshot::Receiver<bool>> {
        let (done, published) = oneshot::channel();
        let item = Item::Relay {
            node: node.to_owned(),
            message,
            done,
        };
        self.queue.try_send(item).ok().map(|()| published)
    }

    fn flush(&self) -> Option<oneshot::Receiver<bool>> {
        let (done, flushed) = oneshot::channel();
        self.queue
            .try_send(Item::Flush(done))
            .ok()
            .map(|()| flushed)
    }
}

/// Publishes what is queued, one batch at a time: a relay waits for no timer, only for the
/// publish before it, so the batches grow with the load and not the latency.
async fn publish(driver: PubSubDriver, mut items: mpsc::Receiver<Item>) {
    let mut batch = Vec::with_capacity(MOST_AT_ONCE);
    while items.recv_many(&mut batch, MOST_AT_ONCE).await > 0 {
        // In queue order within each node; nodes in the order first seen.
        let mut by_node: Vec<ForNode> = Vec::new();
        let mut flushes = Vec::new();
        for item in batch.drain(..) {
            match item {
                Item::Relay {
                    node,
                    message,
                    done,
                } => match by_node.iter_mut().find(|(n, _, _)| *n == node) {
                    Some((_, messages, dones)) => {
                        messages.push(message);
                        dones.push(done);
                    }
                    None => by_node.push((node, vec![message], vec![done])),
                },
                Item::Flush(done) => flushes.push(done),
            }
        }
        let sent = join_all(
            by_node
                .iter()
                .map(|(node, messages, _)| driver.send_to(node, messages)),
        )
        .await;
        for ((node, messages, dones), sent) in by_node.into_iter().zip(sent) {
            if let Err(error) = &sent {
                warn!(%node, relays = messages.len(), %error, "redis: relays to a node not published");
            }
            for done in dones {
                let _ = done.send(sent.is_ok());
            }
        }
        for done in flushes {
            let _ = done.send(true);
        }
    }
}
