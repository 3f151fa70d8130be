//! The handlers of `docs/PROTOCOL.md`: connect, one per client event (one for the three relayed
//! signaling events), and disconnect. Each socket is addressed by its [`PeerId`], never by
//! its socket id.

mod extract;
mod locals;
mod order;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use socketioxide::{
    BroadcastError,
    adapter::Adapter,
    extract::{Event, SocketRef, State, TryData},
    operators::BroadcastOperators,
    socket::DisconnectReason,
};
use tracing::{debug, info, warn};

use crate::config::{LimitsConfig, ListenConfig};
use crate::limits::{PeerLimits, Quotas, Verdict};
use crate::membership::{Join, Left, Membership, Resumed};
use crate::metrics::Metrics;
use crate::protocol::{
    Entered, PeerId, Refusal, ResumeRefused, RoomId, Signal, args, event, resume,
};
use crate::resume::Resume;
use extract::{Args, Caller, Peer, Reply};
use locals::LocalPeers;
use relay::Relay;
pub(crate) use relay::{Elsewhere, relayed_here};

/// What every handler works with. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Signaling {
    pub(crate) membership: Membership,
    pub(crate) metrics: Arc<Metrics>,
    /// `MAX_SIGNAL_BYTES` is all it reads.
    listen: Arc<ListenConfig>,
    quotas: Quotas,
    locals: Arc<LocalPeers>,
    pub(crate) resume: Resume,
    /// Where relays to peers of other nodes go; `None` on a single node.
    elsewhere: Option<Arc<dyn Elsewhere>>,
}

impl Signaling {
    pub(crate) fn new(
        listen: Arc<ListenConfig>,
        limits: &LimitsConfig,
        membership: Membership,
        metrics: Arc<Metrics>,
        resume: Resume,
        elsewhere: Option<Arc<dyn Elsewhere>>,
    ) -> Self {
        Self {
            membership,
            metrics,
            quotas: Quotas::new(limits),
            listen,
            locals: Arc::default(),
            resume,
            elsewhere,
        }
    }
}

/// What became of the resume token a client presented, told once it is connected.
#[derive(Debug, Clone)]
enum ResumeAnswer {
    Resumed(Vec<RoomId>),
    Refused(&'static str),
}

/// How long a resume waits for a socket of its peer that is closing to finish doing so.
const CLOSING_WAIT: Duration = Duration::from_secs(1);

/// Connect middleware: gives the socket its peer id and registers the event handlers.
/// socketioxide spawns the connect handler as a task after telling the client it is
/// connected, so a client that emits at once could beat handlers registered there; a
/// middleware runs before the client is told.
pub(crate) async fn init_socket<A: Adapter>(
    s: SocketRef<A>,
    State(signaling): State<Signaling>,
    TryData(auth): TryData<Value>,
) -> Result<(), std::convert::Infallible> {
    let token = auth
        .ok()
        .as_ref()
        .and_then(|auth| auth.get("resume"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (id, answer) = match token {
        None => (PeerId::random(), None),
        Some(token) => match resume_peer(&s, &signaling, &token).await {
            Ok((id, rooms)) => {
                info!(sid = %s.id, peer = %id, rooms = rooms.len(), "peer resumed");
                for room in &rooms {
                    s.join(room.socket_room());
                }
                (id, Some(ResumeAnswer::Resumed(rooms)))
            }
            Err(reason) => {
                info!(sid = %s.id, reason, "resume refused");
                (PeerId::random(), Some(ResumeAnswer::Refused(reason)))
            }
        },
    };
    let peer = Peer::new(id, PeerLimits::new(&signaling.quotas));
    // With several nodes, a resume asks every node for a socket in the peer's own
    // Socket.IO room; relays find their target in `locals`, on whichever node it is.
    if signaling.membership.is_shared() {
        s.join(peer.id.socket_room());
    }
    if let Some(answer) = answer {
        if matches!(answer, ResumeAnswer::Resumed(_)) {
            watch_resumed(&s, &signaling, &peer);
        }
        s.extensions.insert(answer);
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
    // Told before any of its events is handled, so it hears this before any ack.
    match s.extensions.get::<ResumeAnswer>() {
        Some(ResumeAnswer::Resumed(rooms)) => {
            let token = signaling.resume.issue(&peer.id);
            if token.is_some() {
                peer.mark_resumable();
            }
            let body = crate::protocol::Resumed {
                peer_id: peer.id.as_str(),
                rooms: rooms.iter().map(RoomId::as_str).collect(),
                resume: token,
            };
            signaling.metrics.resumed("resumed");
            let sent = s.emit(event::RESUMED, &body);
            signaling.metrics.count_failed(sent, event::RESUMED);
        }
        Some(ResumeAnswer::Refused(reason)) => {
            let body = ResumeRefused {
                error: resume::text(reason),
                reason,
            };
            signaling.metrics.resumed(reason);
            let sent = s.emit(event::RESUME_REFUSED, &body);
            signaling.metrics.count_failed(sent, event::RESUME_REFUSED);
        }
        None => {}
    }
    peer.open().await;
}

/// A socket whose `CONNECT` answer fails is dropped without a disconnect: a resumed peer
/// whose socket never counted as connected would stay a member for good. Its rooms are
/// left and told once that is clear.
fn watch_resumed<A: Adapter>(s: &SocketRef<A>, signaling: &Signaling, peer: &Arc<Peer>) {
    let (s, signaling, peer) = (s.clone(), signaling.clone(), peer.clone());
    tokio::spawn(async move {
        tokio::time::sleep(NEVER_CONNECTED).await;
        if peer.is_open() {
            return;
        }
        warn!(sid = %s.id, peer = %peer.id, "resumed socket never connected: leaving its rooms");
        if let Some(hold) = signaling.membership.hold(&peer.id)
            && let Some(left) = signaling.membership.end_hold(&peer.id, hold).await
        {
            tell_left(&s, &signaling, &peer.id, left).await;
        }
    });
}

/// How long after its resume a socket that has not counted as connected is given up.
const NEVER_CONNECTED: Duration = Duration::from_secs(10);

/// The peer id and rooms a resume `token` gets back, or why it is refused: a token that is
/// not genuine or expired, a peer with a live socket (on any node), or one already gone.
async fn resume_peer<A: Adapter>(
    s: &SocketRef<A>,
    signaling: &Signaling,
    token: &str,
) -> Result<(PeerId, Vec<RoomId>), &'static str> {
    let id = signaling.resume.check(token)?;
    let deadline = tokio::time::Instant::now() + CLOSING_WAIT;
    loop {
        match try_resume(s, signaling, &id).await? {
            Resumed::Rooms(rooms) => return Ok((id, rooms)),
            Resumed::Gone => return Err(resume::GONE),
            // Its old socket may be closing (its client noticed before this node did):
            // wait a little for its disconnect to hold it.
            Resumed::InUse if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Resumed::InUse => return Err(resume::IN_USE),
        }
    }
}

/// One attempt of [`resume_peer`].
async fn try_resume<A: Adapter>(
    s: &SocketRef<A>,
    signaling: &Signaling,
    id: &PeerId,
) -> Result<Resumed, &'static str> {
    if signaling.locals.get(id).is_some() {
        return Ok(Resumed::InUse);
    }
    if signaling.membership.is_shared() {
        // Every node answers whether it has a socket in the peer's own room (a node that
        // died does not, and is not waited for); bounded by the adapter's request timeout.
        match s.broadcast().to(id.socket_room()).fetch_sockets().await {
            Ok(found) if !found.is_empty() => return Ok(Resumed::InUse),
            Ok(_) => {}
            Err(error) => {
                warn!(peer = %id, ?error, "resume: could not ask the other nodes");
                return Err(resume::UNAVAILABLE);
            }
        }
    }
    signaling.membership.resume(id).await.map_err(|error| {
        warn!(peer = %id, %error, "resume: membership store unavailable");
        resume::UNAVAILABLE
    })
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
    // A client that reads acks gets a resume token with each, and from then on its rooms
    // are held for it when its connection drops.
    let token = if reply.wants_ack() {
        signaling.resume.issue(&peer.id)
    } else {
        None
    };
    if token.is_some() && !matches!(outcome, Join::Full | Join::TooManyRooms) {
        peer.mark_resumable();
    }
    match (outcome, room) {
        (Join::Created(room), _) => {
            s.join(room.socket_room());
            info!(sid = %s.id, peer = %peer.id, room = %room, "room created");
            let sent = s.emit(event::ROOM_CREATED, room.as_str());
            signaling.metrics.count_failed(sent, event::ROOM_CREATED);
            reply.ok(&Entered::new(&room, true, &peer.id, token));
        }
        (Join::Joined { others }, Some(room)) => {
            s.join(room.socket_room());
            info!(sid = %s.id, peer = %peer.id, room = %room, members = others + 1, "peer joined");
            reply.ok(&Entered::new(room, false, &peer.id, token));
            if !announce_joined(s, room, &peer.id, &signaling.metrics).await {
                tokio::spawn(announce_joined_later(
                    s.clone(),
                    room.clone(),
                    peer.id.clone(),
                    signaling.metrics.clone(),
                ));
            }
        }
        (Join::AlreadyMember, Some(room)) => {
            reply.ok(&Entered::new(room, false, &peer.id, token));
        }
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

/// Leaves every room and tells the remaining members, once each; or, for a client that
/// was handed a resume token and lost its connection (or was handed over), holds its rooms
/// for the grace window and does so only if it has not resumed by then.
async fn on_disconnect<A: Adapter>(
    s: SocketRef<A>,
    caller: Caller,
    reason: DisconnectReason,
    State(signaling): State<Signaling>,
) {
    let (peer, _running) = caller.wait().await;
    signaling.metrics.connected.dec();
    signaling.locals.remove(&peer.id);
    // Relays of this peer's still in the outbox go out before its leave is told, so that
    // none arrives after its `user-disconnected`.
    if let Some(flushed) = signaling.elsewhere.as_ref().and_then(|e| e.flush()) {
        let _ = flushed.await;
    }
    let dropped = matches!(
        reason,
        DisconnectReason::TransportClose
            | DisconnectReason::TransportError
            | DisconnectReason::HeartbeatTimeout
    ) || peer.is_handed_over();
    let grace = signaling.resume.grace();
    if dropped
        && peer.is_resumable()
        && !grace.is_zero()
        && let Some(hold) = signaling.membership.hold(&peer.id)
    {
        info!(sid = %s.id, peer = %peer.id, %reason, ?grace, "disconnected: rooms held for a resume");
        let (id, s, signaling) = (peer.id.clone(), s.clone(), signaling.clone());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(left) = signaling.membership.end_hold(&id, hold).await {
                tell_left(&s, &signaling, &id, left).await;
            }
        });
        peer.mark_left();
        return;
    }
    let left = signaling.membership.leave_all(&peer.id).await;
    tell_left(&s, &signaling, &peer.id, left).await;
    info!(sid = %s.id, peer = %peer.id, %reason, "disconnected");
    peer.mark_left();
}

/// Tells the rooms `peer` left that it did, or keeps that to tell later.
async fn tell_left<A: Adapter>(s: &SocketRef<A>, signaling: &Signaling, peer: &PeerId, left: Left) {
    if let Some(error) = left.deferred {
        // Retried by the cluster heartbeat, which then tells the rooms.
        warn!(sid = %s.id, peer = %peer, %error, "leave deferred: membership store unavailable");
    }
    for room in &left.rooms {
        info!(sid = %s.id, peer = %peer, room = %room, "peer left");
    }
    if !left.rooms.is_empty()
        && !announce_left(s.to(socket_rooms(&left.rooms)), peer, &signaling.metrics).await
    {
        signaling.membership.tell_later(peer, left.rooms);
    }
}

/// Hands a socket over in a rolling restart: `cut` ends its transport, which the client
/// takes for a lost server and reconnects from (a namespace disconnect would stop it from
/// reconnecting); then it is disconnected here at once, rather than when its transport's
/// close is noticed, and this resolves once its rooms were left and told.
pub(crate) async fn hand_over<A: Adapter>(s: SocketRef<A>, cut: impl FnOnce()) {
    let Some(peer) = s.extensions.get::<Arc<Peer>>() else {
        return;
    };
    peer.mark_handed_over();
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

/// Tells the other members of `room` that `peer` joined; false when the publish to the
/// other nodes failed (Redis slow or away), which may have run all the same: under one
/// once-key per join, so that trying again is received once.
async fn announce_joined<A: Adapter>(
    s: &SocketRef<A>,
    room: &RoomId,
    peer: &PeerId,
    metrics: &Metrics,
) -> bool {
    let emit = s
        .to(room.socket_room())
        .emit(event::NEW_USER_JOINED, peer.as_str());
    emit_once(
        format!("joined:{peer}:{room}"),
        emit,
        event::NEW_USER_JOINED,
        metrics,
    )
    .await
}

/// The pauses before each attempt after the first.
const JOIN_RETRIES: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Tries a failed join announcement again for a few seconds, in its own task (the joiner's
/// next events need not wait): a member the others never heard of would never be offered
/// a connection. Stops once the joiner is gone, whose leave is told instead.
async fn announce_joined_later<A: Adapter>(
    s: SocketRef<A>,
    room: RoomId,
    peer: PeerId,
    metrics: Arc<Metrics>,
) {
    for pause in JOIN_RETRIES {
        tokio::time::sleep(pause).await;
        if !s.connected() || announce_joined(&s, &room, &peer, &metrics).await {
            return;
        }
    }
    warn!(%peer, %room, "a join announcement could not be published: the room did not hear of it");
}

/// Sends `user-disconnected(peer)` to `members`: one broadcast, so a member sharing several
/// of the rooms hears it once. False if it could not be published to the other nodes
/// (Redis went away; then no member was told, since the adapter publishes before it
/// delivers here), to be tried again. Every node that tells of this peer's leave does so
/// under one once-key: when this node's first attempt ran after all, the retry is
/// delivered here only; when another node told it first (a survivor's sweep, say), the
/// retry delivers nothing, since that node's publish reached this node's members too. A
/// failure of some local sockets (closing, full) is not retried: the others got it.
pub(crate) async fn announce_left<A: Adapter>(
    members: BroadcastOperators<A>,
    peer: &PeerId,
    metrics: &Metrics,
) -> bool {
    let emit = members.emit(event::USER_DISCONNECTED, peer.as_str());
    emit_once(
        format!("left:{peer}"),
        emit,
        event::USER_DISCONNECTED,
        metrics,
    )
    .await
}

/// Runs `emit` of `event` under the once-key `key` (see [`crate::once`]); whether it counts
/// as told: published to the other nodes, or told by another node first.
async fn emit_once(
    key: String,
    emit: impl Future<Output = Result<(), BroadcastError>>,
    event: &'static str,
    metrics: &Metrics,
) -> bool {
    let (sent, elsewhere) = crate::once::scope(key, emit).await;
    if elsewhere {
        return true;
    }
    let published = !matches!(sent, Err(BroadcastError::Adapter(_)));
    metrics.count_failed(sent, event);
    published
}
