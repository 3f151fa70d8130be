//! What the handlers take from a socket: its peer state with a place in its line of
//! handlers, the way to answer, and the raw arguments.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef},
    handler::{FromDisconnectParts, FromMessage, FromMessageParts, Value},
    socket::{DisconnectReason, Socket},
};
use tracing::debug;

use super::Signaling;
use super::order::{Running, Sequencer, Ticket};
use crate::limits::PeerLimits;
use crate::protocol::{PeerId, Refusal, args, event};

/// One connected socket's own state, kept in its extensions.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) limits: PeerLimits,
    order: Sequencer,
    /// The first place in line, taken before the client is told it is connected and
    /// given up by the connect handler, which socketioxide starts only once the socket
    /// counts as connected: no event handler runs before (its emits would fail).
    connecting: Mutex<Option<Ticket>>,
    /// Set once the client was handed a resume token: its rooms are then held for a while
    /// when its connection drops, instead of left at once.
    resumable: AtomicBool,
    /// Set when a draining node hands it over: its rooms are held like those of a
    /// connection that dropped.
    handed_over: AtomicBool,
    /// Set once the disconnect handler has left every room and told them.
    has_left: AtomicBool,
    left: tokio::sync::Notify,
}

impl Peer {
    /// The state of a socket known as `id`: a fresh id, or a resumed one.
    pub(crate) fn new(id: PeerId, limits: PeerLimits) -> Arc<Self> {
        let order = Sequencer::default();
        let connecting = Mutex::new(Some(order.ticket()));
        Arc::new(Self {
            id,
            limits,
            order,
            connecting,
            resumable: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
            has_left: AtomicBool::new(false),
            left: tokio::sync::Notify::new(),
        })
    }

    /// Notes that the client was handed a resume token.
    pub(crate) fn mark_resumable(&self) {
        self.resumable.store(true, Ordering::Release);
    }

    pub(crate) fn is_resumable(&self) -> bool {
        self.resumable.load(Ordering::Acquire)
    }

    /// Notes that a draining node hands the client over.
    pub(crate) fn mark_handed_over(&self) {
        self.handed_over.store(true, Ordering::Release);
    }

    pub(crate) fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    /// Says that the peer has left its rooms and they were told.
    pub(crate) fn mark_left(&self) {
        self.has_left.store(true, Ordering::Release);
        self.left.notify_waiters();
    }

    /// Resolves once [`Peer::mark_left`] was called.
    pub(crate) async fn left(&self) {
        let notified = self.left.notified();
        tokio::pin!(notified);
        // Registered before the check, so a mark in between is not missed.
        notified.as_mut().enable();
        if self.has_left.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Whether no handler of this socket's is waiting or running, so its next event may be
    /// handled at once, in the socket's read loop, without overtaking one.
    pub(crate) fn is_idle(&self) -> bool {
        self.order.is_idle()
    }

    /// Whether [`Peer::open`] was called: the socket counted as connected.
    pub(crate) fn is_open(&self) -> bool {
        self.connecting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Lets the socket's event handlers start: called once it counts as connected.
    pub(crate) async fn open(&self) {
        let ticket = self
            .connecting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(ticket) = ticket {
            drop(ticket.wait().await);
        }
    }
}

/// Extractor: the socket's [`Peer`] and a place in its line of handlers, taken while the
/// packet is decoded so that handlers run in arrival order.
pub(crate) struct Caller {
    peer: Arc<Peer>,
    ticket: Ticket,
}

impl Caller {
    /// Waits for the handlers of earlier events to finish; the next one starts when the
    /// returned [`Running`] is dropped.
    pub(crate) async fn wait(self) -> (Arc<Peer>, Running) {
        let running = self.ticket.wait().await;
        (self.peer, running)
    }

    /// Like `wait`, but `None` once the socket has disconnected: events it sent before
    /// leaving (a flood, say) are not acted on after its `user-disconnected`.
    pub(crate) async fn wait_connected<A: Adapter>(
        self,
        s: &SocketRef<A>,
    ) -> Option<(Arc<Peer>, Running)> {
        let waited = self.wait().await;
        s.connected().then_some(waited)
    }

    fn take<A: Adapter>(s: &Arc<Socket<A>>) -> Result<Self, NoPeer> {
        let peer = s.extensions.get::<Arc<Peer>>().ok_or(NoPeer)?;
        Ok(Self::in_line(peer))
    }

    /// Takes `peer`'s next place in line: called in arrival order.
    pub(crate) fn in_line(peer: Arc<Peer>) -> Self {
        let ticket = peer.order.ticket();
        Self { peer, ticket }
    }
}

/// A socket without [`Peer`] state: the connect middleware did not run for it.
#[derive(Debug, thiserror::Error)]
#[error("socket has no peer state")]
pub(crate) struct NoPeer;

impl<A: Adapter> FromMessageParts<A> for Caller {
    type Error = NoPeer;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NoPeer> {
        Self::take(s)
    }
}

impl<A: Adapter> FromDisconnectParts<A> for Caller {
    type Error = NoPeer;
    fn from_disconnect_parts(s: &Arc<Socket<A>>, _: DisconnectReason) -> Result<Self, NoPeer> {
        Self::take(s)
    }
}

/// Extractor: answers a request through its ack callback when the client gave one, and
/// reports refusals with a `request-error` event when it did not.
pub(crate) struct Reply<A: Adapter> {
    ack: AckSender<A>,
    wants_ack: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Self::new(s, v, ack_id))
    }
}

/// The error a refused request's client sees when it gave no ack callback.
#[derive(Serialize)]
struct RequestError<'a> {
    event: &'a str,
    error: String,
    reason: &'static str,
}

impl<A: Adapter> Reply<A> {
    pub(crate) fn new(s: &Arc<Socket<A>>, v: &mut Value, ack_id: &Option<i64>) -> Self {
        let Ok(ack) = AckSender::from_message_parts(s, v, ack_id);
        Self {
            ack,
            wants_ack: ack_id.is_some(),
        }
    }

    /// Whether the client passed an ack callback, so that `ok` reaches it.
    pub(crate) fn wants_ack(&self) -> bool {
        self.wants_ack
    }

    pub(crate) fn ok<T: Serialize + ?Sized>(self, body: &T) {
        if self.wants_ack {
            let _ = self.ack.send(body);
        }
    }

    pub(crate) fn refuse(
        self,
        s: &SocketRef<A>,
        signaling: &Signaling,
        event: &str,
        refusal: Refusal,
    ) {
        signaling.metrics.refused(refusal.reason());
        debug!(sid = %s.id, event, reason = refusal.reason(), "request refused");
        if self.wants_ack {
            let _ = self.ack.send(&refusal.to_ack());
        } else {
            let body = RequestError {
                event,
                error: refusal.to_string(),
                reason: refusal.reason(),
            };
            let _ = s.emit(event::REQUEST_ERROR, &body);
        }
    }
}

/// Extractor: the raw event packet, parsed only when the handler's turn comes.
pub(crate) struct Args(pub(crate) Value);

impl<A: Adapter> FromMessage<A> for Args {
    type Error = Infallible;
    fn from_message(_: Arc<Socket<A>>, v: Value, _: Option<i64>) -> Result<Self, Infallible> {
        Ok(Self(v))
    }
}

impl Args {
    /// The event's name and arguments as raw JSON (binary attachments show as placeholders).
    pub(crate) fn packet(&self) -> args::Packet<'_> {
        match &self.0 {
            Value::Str(text, _) => args::packet(text),
            Value::Bytes(_) => args::Packet::default(),
        }
    }

    /// Whether the event came with binary attachments, which the protocol never uses.
    pub(crate) fn is_binary(&self) -> bool {
        match &self.0 {
            Value::Str(_, bins) => bins.as_ref().is_some_and(|b| !b.is_empty()),
            Value::Bytes(_) => true,
        }
    }
}
