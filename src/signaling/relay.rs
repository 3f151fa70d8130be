//! `rtc-offer`, `rtc-answer` and `ice-candidate`: the relay, most of what the server does.
//! A relay is handled at once, in the sender's read loop, when nothing of the sender's is
//! waiting before it and the answer is known without waiting (target on this node, rooms in
//! memory); otherwise it takes its place in the sender's line as a task of its own.

use std::sync::Arc;

use serde_json::value::RawValue;
use socketioxide::{
    adapter::Adapter,
    extract::{SocketRef, State},
    handler::{FromMessageParts, MessageHandler, Value},
    socket::{Sid, Socket},
};
use tracing::{debug, warn};

use super::extract::{Args, Caller, Peer, Reply};
use super::{Signaling, check_rate};
use crate::metrics::EmitFailure;
use crate::protocol::{Refusal, Relayed, Signal, args};

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
                Some(Ok(())) => return reply.ok(&Relayed::OK),
                Some(Err(refusal)) => return reply.refuse(&s, &signaling, signal.event(), refusal),
                None => true,
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

/// The relay done at once, or `None` when it must wait (for Redis, or for another node),
/// which is known once the rate was charged.
fn relay_now<A: Adapter>(
    s: &SocketRef<A>,
    peer: &Peer,
    signaling: &Signaling,
    signal: Signal,
    args: &Args,
) -> Option<Result<(), Refusal>> {
    if let Err(refusal) = check_rate(s, signaling, peer.limits.signal()) {
        return Some(Err(refusal));
    }
    let packet = args.packet();
    let relay = match Checked::new(peer, signaling, signal, args, &packet) {
        Ok(relay) => relay,
        Err(refusal) => return Some(Err(refusal)),
    };
    let target = &relay.signaled.target;
    if !signaling.membership.share_a_room_now(&peer.id, target)? {
        return Some(Err(Refusal::NotInYourRooms));
    }
    match signaling.locals.get(target) {
        Some(sid) => Some(relay.deliver_here(s, sid)),
        // Not on this node: another one may hold it.
        None if signaling.membership.is_shared() => None,
        // Disconnecting: its leave is about to be told.
        None => Some(Err(Refusal::Undeliverable)),
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
    let Some((peer, _running)) = caller.wait_connected(&s).await else {
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
    match signaling.membership.share_a_room(&peer.id, target).await {
        Ok(true) => {}
        Ok(false) => return reply.refuse(&s, &signaling, event, Refusal::NotInYourRooms),
        Err(error) => {
            warn!(peer = %peer.id, %error, "membership store unavailable");
            return reply.refuse(&s, &signaling, event, Refusal::Unavailable);
        }
    }
    let sent = match signaling.locals.get(target) {
        Some(sid) => relay.deliver_here(&s, sid),
        None if signaling.membership.is_shared() => relay.deliver_elsewhere(&s).await,
        None => Err(Refusal::Undeliverable),
    };
    match sent {
        Ok(()) => reply.ok(&Relayed::OK),
        Err(refusal) => reply.refuse(&s, &signaling, event, refusal),
    }
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

    /// Emits to the target's socket on this node.
    fn deliver_here<A: Adapter>(&self, s: &SocketRef<A>, sid: Sid) -> Result<(), Refusal> {
        // Gone between the lookup and now: it is leaving, as if it had not been found.
        let Some(target) = s.broadcast().get_socket(sid) else {
            return Err(Refusal::Undeliverable);
        };
        self.delivered(target.emit(self.signal.event(), &self.body()))
    }

    /// Emits through the adapter, which finds the target on whichever node holds it.
    async fn deliver_elsewhere<A: Adapter>(&self, s: &SocketRef<A>) -> Result<(), Refusal> {
        let room = self.signaled.target.socket_room();
        // Boxed: socketioxide moves each handler's future several times before it runs,
        // so its size is paid for on every relay that comes this way.
        let sent = Box::pin(s.to(room).emit(self.signal.event(), &self.body())).await;
        self.delivered(sent)
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
