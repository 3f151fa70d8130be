//! The handlers of `docs/PROTOCOL.md`: connect, one per client event (one for the three relayed
//! signaling events), and disconnect. Each socket is addressed through a Socket.IO room
//! named after its [`PeerId`], never by its socket id.

mod extract;
mod locals;
mod order;
mod relay;

use std::sync::Arc;

use socketioxide::{
    BroadcastError,
    adapter::Adapter,
    extract::{Event, SocketRef, State},
    operators::BroadcastOperators,
    socket::DisconnectReason,
};
use tracing::{debug, info, warn};

use crate::config::{LimitsConfig, ListenConfig};
use crate::limits::{PeerLimits, Quotas, Verdict};
use crate::membership::{Join, Membership};
use crate::metrics::Metrics;
use crate::protocol::{Entered, PeerId, Refusal, RoomId, Signal, args, event};
use extract::{Args, Caller, Peer, Reply};
use locals::LocalPeers;
use relay::Relay;

/// What every handler works with. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Signaling {
    pub(crate) membership: Membership,
    pub(crate) metrics: Arc<Metrics>,
    /// `MAX_SIGNAL_BYTES` is all it reads.
    listen: Arc<ListenConfig>,
    quotas: Quotas,
    locals: Arc<LocalPeers>,
}

impl Signaling {
    pub(crate) fn new(
        listen: Arc<ListenConfig>,
        limits: &LimitsConfig,
        membership: Membership,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            membership,
            metrics,
            quotas: Quotas::new(limits),
            listen,
            locals: Arc::default(),
        }
    }
}

/// Connect middleware: gives the socket its peer id and registers the event handlers.
/// socketioxide spawns the connect handler as a task after telling the client it is
/// connected, so a client that emits at once could beat handlers registered there; a
/// middleware runs before the client is told.
pub(crate) async fn init_socket<A: Adapter>(
    s: SocketRef<A>,
    State(signaling): State<Signaling>,
) -> Result<(), std::convert::Infallible> {
    let peer = Peer::new(PeerLimits::new(&signaling.quotas));
    // Only relays from other nodes need a Socket.IO room per peer: a relay on this node
    // finds its target in `locals`.
    if signaling.membership.is_shared() {
        s.join(peer.id.socket_room());
    }
    s.extensions.insert(peer);

    s.on(event::CREATE_ROOM, on_create_room::<A>);
    s.on(event::JOIN_ROOM, on_join_room::<A>);
    for signal in Signal::ALL {
        s.on(signal.event(), Relay(signal));
    }
    s.on_fallback(on_unknown_event::<A>);
    s.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// The connect handler, run once [`init_socket`] has and the socket counts as connected:
/// counts it and lets its event handlers start.
pub(crate) async fn on_connect<A: Adapter>(s: SocketRef<A>, State(signaling): State<Signaling>) {
    let Some(peer) = s.extensions.get::<Arc<Peer>>() else {
        return;
    };
    // Counted here, not in `init_socket`: socketioxide starts this handler only once the
    // CONNECT ack is out, and a socket whose ack failed is dropped without a disconnect.
    // The disconnect handler waits for `open` below, so it never uncounts a socket first.
    signaling.metrics.connected.inc();
    signaling.locals.insert(&peer.id, s.id);
    info!(sid = %s.id, peer = %peer.id, transport = ?s.transport_type(), "connected");
    peer.open().await;
}

/// `create-room`: a new room with the sender as its only member.
async fn on_create_room<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reply: Reply<A>,
    State(signaling): State<Signaling>,
) {
    let Some((peer, _running)) = caller.wait_connected(&s).await else {
        return;
    };
    if let Err(refusal) = check_rate(&s, &signaling, peer.limits.join()) {
        return reply.refuse(&s, &signaling, event::CREATE_ROOM, refusal);
    }
    let created = signaling.membership.create(&peer.id).await;
    entered(
        &s,
        &peer,
        &signaling,
        reply,
        event::CREATE_ROOM,
        None,
        created,
    )
    .await;
}

/// `join-room(roomId)`: enter an existing room and announce the sender to its members, or
/// get a new room when the id is unknown or malformed.
async fn on_join_room<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reply: Reply<A>,
    State(signaling): State<Signaling>,
    args: Args,
) {
    let Some((peer, _running)) = caller.wait_connected(&s).await else {
        return;
    };
    if let Err(refusal) = check_rate(&s, &signaling, peer.limits.join()) {
        return reply.refuse(&s, &signaling, event::JOIN_ROOM, refusal);
    }
    let requested = (!args.is_binary())
        .then(|| args::room_id(&args.packet().args))
        .flatten();
    let Some(room) = requested else {
        let created = signaling.membership.create(&peer.id).await;
        return entered(
            &s,
            &peer,
            &signaling,
            reply,
            event::JOIN_ROOM,
            None,
            created,
        )
        .await;
    };
    let joined = match signaling.membership.join(&room, &peer.id).await {
        Ok(Join::NoSuchRoom) => signaling.membership.create(&peer.id).await,
        other => other,
    };
    entered(
        &s,
        &peer,
        &signaling,
        reply,
        event::JOIN_ROOM,
        Some(&room),
        joined,
    )
    .await;
}

/// Tells the sender (and, on a join, the room) what the `event` request for `room` (none:
/// a new room) did.
async fn entered<A: Adapter>(
    s: &SocketRef<A>,
    peer: &Peer,
    signaling: &Signaling,
    reply: Reply<A>,
    event: &'static str,
    room: Option<&RoomId>,
    outcome: crate::error::Result<Join>,
) {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            warn!(sid = %s.id, %error, "membership store unavailable");
            return reply.refuse(s, signaling, event, Refusal::Unavailable);
        }
    };
    match (outcome, room) {
        (Join::Created(room), _) => {
            s.join(room.socket_room());
            info!(sid = %s.id, peer = %peer.id, room = %room, "room created");
            let sent = s.emit(event::ROOM_CREATED, room.as_str());
            signaling.metrics.count_failed(sent, event::ROOM_CREATED);
            reply.ok(&Entered::new(&room, true, &peer.id));
        }
        (Join::Joined { others }, Some(room)) => {
            s.join(room.socket_room());
            info!(sid = %s.id, peer = %peer.id, room = %room, members = others + 1, "peer joined");
            reply.ok(&Entered::new(room, false, &peer.id));
            let sent = s
                .to(room.socket_room())
                .emit(event::NEW_USER_JOINED, peer.id.as_str())
                .await;
            signaling.metrics.count_failed(sent, event::NEW_USER_JOINED);
        }
        (Join::AlreadyMember, Some(room)) => reply.ok(&Entered::new(room, false, &peer.id)),
        (Join::Full, Some(room)) => {
            info!(sid = %s.id, peer = %peer.id, room = %room, "room full: join refused");
            let sent = s.emit(event::ROOM_FULL, room.as_str());
            signaling.metrics.count_failed(sent, event::ROOM_FULL);
            reply.refuse(s, signaling, event, Refusal::RoomFull);
        }
        (Join::TooManyRooms, _) => reply.refuse(s, signaling, event, Refusal::TooManyRooms),
        // `join` never answers these without a room, and `NoSuchRoom` became a `create`.
        (Join::Joined { .. } | Join::AlreadyMember | Join::Full | Join::NoSuchRoom, _) => {
            warn!(sid = %s.id, "membership gave an answer that does not fit the request");
            reply.refuse(s, signaling, event, Refusal::Unavailable);
        }
    }
}

/// Turns a rate-limit verdict into a refusal, disconnecting a socket that keeps flooding.
pub(super) fn check_rate<A: Adapter>(
    s: &SocketRef<A>,
    signaling: &Signaling,
    verdict: Verdict,
) -> Result<(), Refusal> {
    if verdict == Verdict::Allowed {
        return Ok(());
    }
    signaling.metrics.rate_limited.inc();
    if verdict == Verdict::Flooding && s.connected() {
        signaling.metrics.floods.inc();
        warn!(sid = %s.id, "flooding: disconnecting");
        let _ = s.clone().disconnect();
    }
    Err(Refusal::RateLimited)
}

/// Any event the protocol does not define: refused in its place in line, and drawing on
/// the signaling rate limit, so a stream of junk events ends like any other flood.
async fn on_unknown_event<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reply: Reply<A>,
    Event(name): Event,
    State(signaling): State<Signaling>,
) {
    let Some((peer, _running)) = caller.wait_connected(&s).await else {
        return;
    };
    // Event names are client input: cap what ends up in the logs and the reply.
    let name: String = name.chars().take(64).collect();
    let refusal = check_rate(&s, &signaling, peer.limits.signal())
        .err()
        .unwrap_or(Refusal::UnknownEvent);
    reply.refuse(&s, &signaling, &name, refusal);
}

/// Leaves every room and tells the remaining members, once each.
async fn on_disconnect<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reason: DisconnectReason,
    State(signaling): State<Signaling>,
) {
    let (peer, _running) = caller.wait().await;
    signaling.metrics.connected.dec();
    signaling.locals.remove(&peer.id);
    let left = signaling.membership.leave_all(&peer.id).await;
    if let Some(error) = left.deferred {
        // Retried by the cluster heartbeat, which then tells the rooms.
        warn!(sid = %s.id, peer = %peer.id, %error, "leave deferred: membership store unavailable");
    }
    for room in &left.rooms {
        info!(sid = %s.id, peer = %peer.id, room = %room, "peer left");
    }
    if !left.rooms.is_empty()
        && !announce_left(
            s.to(socket_rooms(&left.rooms)),
            &peer.id,
            &signaling.metrics,
        )
        .await
    {
        signaling.membership.tell_later(&peer.id, left.rooms);
    }
    info!(sid = %s.id, peer = %peer.id, %reason, "disconnected");
    peer.mark_left();
}

/// Hands a socket over in a rolling restart: `cut` ends its transport, which the client
/// takes for a lost server and reconnects from (a namespace disconnect would stop it from
/// reconnecting); then it is disconnected here at once, rather than when its transport's
/// close is noticed, and this resolves once its rooms were left and told.
pub(crate) async fn hand_over<A: Adapter>(s: SocketRef<A>, cut: impl FnOnce()) {
    let Some(peer) = s.extensions.get::<Arc<Peer>>() else {
        return;
    };
    cut();
    // The disconnect packet this queues finds the transport cut: the client never reads it.
    if s.connected() && s.clone().disconnect().is_err() {
        debug!(sid = %s.id, "hand-over: socket already closing");
    }
    peer.left().await;
}

/// The Socket.IO rooms of these chat rooms.
pub(crate) fn socket_rooms(rooms: &[RoomId]) -> Vec<String> {
    rooms.iter().map(RoomId::socket_room).collect()
}

/// Sends `user-disconnected(peer)` to `members`: one broadcast, so a member sharing several
/// of the rooms hears it once. False if it could not be published to the other nodes
/// (Redis went away; then no member was told, since the adapter publishes before it
/// delivers here), to be tried again: every node that tells of this peer's leave does so
/// under one once-key, so a first attempt that ran after all, or a sweep that told it
/// already, makes the retry a no-op. A failure of some local sockets (closing, full) is
/// not retried: the others got it.
pub(crate) async fn announce_left<A: Adapter>(
    members: BroadcastOperators<A>,
    peer: &PeerId,
    metrics: &Metrics,
) -> bool {
    let emit = members.emit(event::USER_DISCONNECTED, peer.as_str());
    let sent = crate::once::scope(format!("left:{peer}"), emit).await;
    let published = !matches!(sent, Err(BroadcastError::Adapter(_)));
    metrics.count_failed(sent, event::USER_DISCONNECTED);
    published
}
