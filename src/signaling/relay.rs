//! `rtc-offer`, `rtc-answer` and `ice-candidate`: the relay, most of what the server does.
//! A relay is handled at once, in the sender's read loop, when nothing of the sender's is
//! waiting before it and where it goes is known without waiting (target on this node, or on
//! a node this node's view knows); otherwise it takes its place in the sender's line as a
//! task of its own. A relay to a peer of another node goes to that node's inbox alone.

use std::sync::Arc;

use serde_json::value::RawValue;
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{SocketRef, State},
    handler::{FromMessageParts, MessageHandler, Value},
    socket::{Sid, Socket},
};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::extract::{Args, Caller, Peer, Reply};
use super::{Signaling, check_rate};
use crate::membership::Route;
use crate::metrics::EmitFailure;
use crate::protocol::{PeerId, Refusal, Relayed, RoomId, Signal, args};

/// Carries relays to other nodes (in cluster mode, the cluster's outbox).
pub(crate) trait Elsewhere: Send + Sync + std::fmt::Debug {
    /// Queues `message` for node `node`'s inbox, after everything queued before it; the
    /// answer says whether it was published. `None` when the queue is full.
    fn send(&self, node: &str, message: Vec<u8>) -> Option<oneshot::Receiver<bool>>;

    /// Resolves once everything queued before it was published (or failed).
    fn flush(&self) -> Option<oneshot::Receiver<bool>>;
}

/// The handler of one signaling event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relay(pub(crate) Signal);

/// What tells [`Relay`]'s handler impl apart from socketioxide's own for closures.
#[derive(Debug)]
pub(crate) struct ByHand;

impl<A: Adapter> MessageHandler<A, ByHand> for Relay {
    fn call(&self, s: Arc<Socket<A>>, mut v: Value, ack_id: Option<i64>) {
        let Some(peer) = s.extensions.get::<Arc<Peer>>() else {
            return;
        };
        let Ok(State(signaling)) = State::<Signaling>::from_message_parts(&s, &mut v, &ack_id)
        else {
            return;
        };
        let reply = Reply::new(&s, &mut v, &ack_id);
        let args = Args(v);
        let signal = self.0;
        let s = SocketRef::from(s);
        // Idle and connected: no earlier event of this socket's is still to be handled, so
        // this one cannot overtake any.
        let rated = if peer.is_idle() && s.connected() {
            match relay_now(&s, &peer, &signaling, signal, &args) {
                Now::Done(Ok(())) => return reply.ok(&Relayed::OK),
                Now::Done(Err(refusal)) => {
                    return reply.refuse(&s, &signaling, signal.event(), refusal);
                }
                Now::Queued(queued) => {
                    tokio::spawn(async move {
                        match queued.published(&signaling, signal).await {
                            Ok(()) => reply.ok(&Relayed::OK),
                            Err(refusal) => reply.refuse(&s, &signaling, signal.event(), refusal),
                        }
                    });
                    return;
                }
                Now::Later => true,
            }
        } else {
            false
        };
        let caller = Caller::in_line(peer);
        tokio::spawn(relay_later(
            s, caller, reply, signaling, args, signal, rated,
        ));
    }
}

/// What [`relay_now`] did.
enum Now {
    /// Delivered on this node, or refused.
    Done(Result<(), Refusal>),
    /// Queued for another node: the publish's answer is still to come.
    Queued(Queued),
    /// It must wait for Redis: in the sender's line.
    Later,
}

/// The relay done at once, or [`Now::Later`] when it must wait for Redis to say where the
/// target is, which is known once the rate was charged.
fn relay_now<A: Adapter>(
    s: &SocketRef<A>,
    peer: &Peer,
    signaling: &Signaling,
    signal: Signal,
    args: &Args,
) -> Now {
    if let Err(refusal) = check_rate(s, signaling, peer.limits.signal()) {
        return Now::Done(Err(refusal));
    }
    let packet = args.packet();
    let relay = match Checked::new(peer, signaling, signal, args, &packet) {
        Ok(relay) => relay,
        Err(refusal) => return Now::Done(Err(refusal)),
    };
    match signaling.membership.route(&peer.id, &relay.signaled.target) {
        Route::Ask => Now::Later,
        route => match relay.deliver(s, route) {
            Ok(Some(queued)) => Now::Queued(queued),
            Ok(None) => Now::Done(Ok(())),
            Err(refusal) => Now::Done(Err(refusal)),
        },
    }
}

/// The relay in its place in the sender's line of handlers. `rated`: the rate limit was
/// already charged for it.
async fn relay_later<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reply: Reply<A>,
    signaling: Signaling,
    args: Args,
    signal: Signal,
    rated: bool,
) {
    let Some((peer, running)) = caller.wait_connected(&s).await else {
        return;
    };
    let event = signal.event();
    if !rated && let Err(refusal) = check_rate(&s, &signaling, peer.limits.signal()) {
        return reply.refuse(&s, &signaling, event, refusal);
    }
    let packet = args.packet();
    let relay = match Checked::new(&peer, &signaling, signal, &args, &packet) {
        Ok(relay) => relay,
        Err(refusal) => return reply.refuse(&s, &signaling, event, refusal),
    };
    let target = &relay.signaled.target;
    let route = match signaling.membership.route(&peer.id, target) {
        Route::Ask => {
            signaling.metrics.cluster_lookups.inc();
            match signaling.membership.locate(&peer.id, target).await {
                Ok(route) => route,
                Err(error) => {
                    warn!(peer = %peer.id, %error, "membership store unavailable");
                    return reply.refuse(&s, &signaling, event, Refusal::Unavailable);
                }
            }
        }
        route => route,
    };
    let queued = match relay.deliver(&s, route) {
        Ok(Some(queued)) => queued,
        Ok(None) => return reply.ok(&Relayed::OK),
        Err(refusal) => return reply.refuse(&s, &signaling, event, refusal),
    };
    // In the outbox's order now: the sender's next event may go ahead.
    drop(running);
    match queued.published(&signaling, signal).await {
        Ok(()) => reply.ok(&Relayed::OK),
        Err(refusal) => reply.refuse(&s, &signaling, event, refusal),
    }
}

/// A relay in the outbox, waiting for its publish.
struct Queued(oneshot::Receiver<bool>);

impl Queued {
    /// Redis did not take it: `unavailable`, as when Redis could not say where the target
    /// is.
    async fn published(self, signaling: &Signaling, signal: Signal) -> Result<(), Refusal> {
        if self.0.await.unwrap_or(false) {
            signaling.metrics.relayed(signal);
            signaling.metrics.cluster_relays_sent.inc();
            Ok(())
        } else {
            signaling
                .metrics
                .count_failed(Err(Unpublished), signal.event());
            Err(Refusal::Unavailable)
        }
    }
}

/// A relay that could not be published to its target's node.
#[derive(Debug)]
struct Unpublished;

impl EmitFailure for Unpublished {
    fn targets_closed(&self) -> bool {
        false
    }
}

/// A relay between nodes, as JSON: `[event, from, to, fromRooms, payload]`, the event being
/// its index in [`Signal::ALL`] and `fromRooms` the sender's rooms, for the receiving
/// node's own same-room check.
type Wire<'a> = (usize, &'a str, &'a str, Vec<&'a str>, &'a RawValue);

/// Delivers a relay that another node sent to this one, if its target is connected here
/// and in one of the sender's rooms; otherwise it is dropped and counted: the target left
/// (its leave is being told), is held for a resume, or has just resumed elsewhere.
pub(crate) fn relayed_here<A: Adapter>(io: &SocketIo<A>, signaling: &Signaling, message: &[u8]) {
    let metrics = &signaling.metrics;
    metrics.cluster_relays_received.inc();
    let parsed = serde_json::from_slice::<Wire<'_>>(message).ok().and_then(
        |(signal, from, to, rooms, payload)| {
            let rooms: Vec<RoomId> = rooms.into_iter().filter_map(RoomId::parse).collect();
            Some((
                *Signal::ALL.get(signal)?,
                from,
                PeerId::parse(to)?,
                rooms,
                payload,
            ))
        },
    );
    let Some((signal, from, to, rooms, payload)) = parsed else {
        warn!("relay from another node not understood: dropped");
        return;
    };
    let target = signaling
        .locals
        .get(&to)
        .filter(|_| signaling.membership.is_in_one_of(&to, &rooms))
        .and_then(|sid| io.of("/")?.get_socket(sid));
    let Some(target) = target else {
        metrics.cluster_relays_undelivered.inc();
        debug!(to = %to, from, "relay from another node: target not here");
        return;
    };
    let sent = target.emit(signal.event(), &(from, payload));
    debug!(event = signal.event(), from, to = %to, ok = sent.is_ok(), "relay from another node");
    metrics.count_failed(sent, signal.event());
}

/// A relay that passed the checks needing no membership, ready to be delivered.
struct Checked<'a> {
    peer: &'a Peer,
    signaling: &'a Signaling,
    signal: Signal,
    signaled: args::Signaled<'a>,
}

impl<'a> Checked<'a> {
    /// Binary attachments, shape, size, and not to self.
    fn new(
        peer: &'a Peer,
        signaling: &'a Signaling,
        signal: Signal,
        args: &Args,
        packet: &args::Packet<'a>,
    ) -> Result<Self, Refusal> {
        if args.is_binary() {
            return Err(Refusal::Binary);
        }
        let max = signaling.listen.max_signal_bytes;
        let signaled = args::signaled(&packet.args, signal == Signal::Candidate, max)?;
        if signaled.target == peer.id {
            return Err(Refusal::ToSelf);
        }
        Ok(Self {
            peer,
            signaling,
            signal,
            signaled,
        })
    }

    /// What the target gets: `(senderPeerId, payload)`.
    fn body(&self) -> (&str, &RawValue) {
        (self.peer.id.as_str(), self.signaled.payload)
    }

    /// Delivers the relay where `route` says: to the target's socket on this node (`None`:
    /// done), or into the outbox of the target's node.
    fn deliver<A: Adapter>(
        &self,
        s: &SocketRef<A>,
        route: Route,
    ) -> Result<Option<Queued>, Refusal> {
        let signaling = self.signaling;
        match route {
            Route::NotShared => Err(Refusal::NotInYourRooms),
            // Not connected here: held for a resume, or disconnecting (its leave is about to
            // be told).
            Route::Here | Route::Ask => match signaling.locals.get(&self.signaled.target) {
                Some(sid) => self.deliver_here(s, sid).map(|()| None),
                None => Err(Refusal::Undeliverable),
            },
            Route::Node(node) => {
                let Some(elsewhere) = &signaling.elsewhere else {
                    return Err(Refusal::Undeliverable);
                };
                let rooms = signaling.membership.rooms_of(&self.peer.id);
                let index = Signal::ALL.iter().position(|s| *s == self.signal);
                let wire: Wire<'_> = (
                    index.unwrap_or(0),
                    self.peer.id.as_str(),
                    self.signaled.target.as_str(),
                    rooms.iter().map(RoomId::as_str).collect(),
                    self.signaled.payload,
                );
                let message = serde_json::to_vec(&wire).map_err(|_| Refusal::Undeliverable)?;
                debug!(event = self.signal.event(), from = %self.peer.id, to = %self.signaled.target, %node, "relay queued for another node");
                match elsewhere.send(&node, message) {
                    Some(published) => Ok(Some(Queued(published))),
                    None => {
                        self.signaling
                            .metrics
                            .count_failed(Err(Unpublished), self.signal.event());
                        Err(Refusal::Undeliverable)
                    }
                }
            }
        }
    }

    /// Emits to the target's socket on this node.
    fn deliver_here<A: Adapter>(&self, s: &SocketRef<A>, sid: Sid) -> Result<(), Refusal> {
        // Gone between the lookup and now: it is leaving, as if it had not been found.
        let Some(target) = s.broadcast().get_socket(sid) else {
            return Err(Refusal::Undeliverable);
        };
        self.delivered(target.emit(self.signal.event(), &self.body()))
    }

    fn delivered<E: EmitFailure>(&self, sent: Result<(), E>) -> Result<(), Refusal> {
        let event = self.signal.event();
        let metrics = &self.signaling.metrics;
        if sent.is_ok() {
            metrics.relayed(self.signal);
            let bytes = self.signaled.payload.get().len();
            debug!(event, from = %self.peer.id, to = %self.signaled.target, bytes, "relayed");
            Ok(())
        } else {
            // Mostly a full buffer: the target is not reading. Its queue stays bounded and
            // its unanswered heartbeat drops it (socketioxide cannot disconnect a socket
            // whose buffer is full: the disconnect packet finds no room either).
            metrics.count_failed(sent, event);
            Err(Refusal::Undeliverable)
        }
    }
}
