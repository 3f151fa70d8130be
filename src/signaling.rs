//! The room protocol of `PROTOCOL.md`: one handler per event.
//!
//! Every id announced to clients is a [`PeerId`], never a socket id. Each socket sits in a
//! Socket.IO room named after its peer id, which is how relays address it. Handlers of one
//! socket run in arrival order (see [`crate::order`]).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, value::RawValue};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, Event, SocketRef, State},
    handler::{FromDisconnectParts, FromMessage, FromMessageParts, Value},
    socket::{DisconnectReason, Socket},
};
use tracing::{debug, info, warn};

use crate::args;
use crate::config::Config;
use crate::error::Refusal;
use crate::limits::{PeerLimits, Quotas, Verdict};
use crate::membership::Membership;
use crate::metrics::ByLabel;
use crate::order::{Sequencer, Ticket, Turn};
use crate::rooms::{Join, PeerId, RoomId, Rooms};
use crate::turn::TurnIssuer;

/// The protocol's event names.
pub mod event {
    pub const CREATE_ROOM: &str = "create-room";
    pub const JOIN_ROOM: &str = "join-room";
    pub const RTC_OFFER: &str = "rtc-offer";
    pub const RTC_ANSWER: &str = "rtc-answer";
    pub const ICE_CANDIDATE: &str = "ice-candidate";
    pub const ROOM_CREATED: &str = "room-created";
    pub const NEW_USER_JOINED: &str = "new-user-joined";
    pub const USER_DISCONNECTED: &str = "user-disconnected";
    /// Extension: tells a client that sent no ack callback why a request was refused.
    pub const REQUEST_ERROR: &str = "request-error";
    /// Extension: `join-room` of a room that has the most members allowed.
    pub const ROOM_FULL: &str = "room-full";
}

/// State shared by every handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The in-memory table; empty in cluster mode, where membership lives in Redis.
    pub rooms: Rooms,
    pub membership: Membership,
    pub stats: Arc<Stats>,
    /// Mints TURN credentials for clients, when a TURN server is configured.
    pub turn: Option<Arc<TurnIssuer>>,
    quotas: Quotas,
    max_signal_bytes: usize,
    max_room_size: usize,
    max_rooms_per_socket: usize,
}

impl Shared {
    pub fn new(config: &Config) -> Self {
        let rooms = Rooms::default();
        Self::with_membership(config, rooms.clone(), Membership::Local(rooms))
    }

    /// State for cluster mode, with membership kept in Redis.
    pub fn clustered(config: &Config, store: crate::cluster::RedisRooms) -> Self {
        Self::with_membership(config, Rooms::default(), Membership::Cluster(store))
    }

    fn with_membership(config: &Config, rooms: Rooms, membership: Membership) -> Self {
        Self {
            rooms,
            membership,
            stats: Arc::default(),
            turn: TurnIssuer::from_config(config).map(Arc::new),
            quotas: Quotas::new(config),
            max_signal_bytes: config.max_signal_bytes,
            max_room_size: config.max_room_size,
            max_rooms_per_socket: config.max_rooms_per_socket,
        }
    }
}

/// Counters of what the signaling path did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sockets connected now.
    pub connected: AtomicUsize,
    /// Emits that failed, mostly because a client's outgoing buffer was full.
    pub failed_emits: AtomicU64,
    /// Events dropped by a rate limit.
    pub rate_limited: AtomicU64,
    /// Connections dropped for flooding.
    pub floods: AtomicU64,
    /// Relays, refusals and failed emits split by label for `/metrics`.
    pub relayed_by_event: ByLabel,
    pub refused_by_reason: ByLabel,
    pub failed_emits_by_event: ByLabel,
    /// HTTP requests the gate refused before Socket.IO, by reason.
    pub connections_refused: ByLabel,
}

/// One connected socket's identity and memberships, kept in its extensions.
#[derive(Debug)]
pub struct Peer {
    pub id: PeerId,
    rooms: Mutex<Vec<RoomId>>,
    order: Sequencer,
    limits: PeerLimits,
    /// The first place in line, taken before the client is told it is connected and
    /// given up by the connect handler, which socketioxide starts only once the socket
    /// counts as connected: no event handler runs before (its emits would fail).
    connecting: Mutex<Option<Ticket>>,
}

impl Peer {
    fn rooms(&self) -> std::sync::MutexGuard<'_, Vec<RoomId>> {
        // Never held across an await; a poisoned list is still the best list there is.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Extractor: the socket's [`Peer`] and a place in its line of handlers, taken while the
/// packet is decoded so that handlers run in arrival order.
pub struct InOrder {
    peer: Arc<Peer>,
    ticket: Ticket,
}

impl InOrder {
    async fn wait(self) -> (Arc<Peer>, Turn) {
        let turn = self.ticket.turn().await;
        (self.peer, turn)
    }

    /// Like `wait`, but `None` once the socket has disconnected: events it sent before
    /// leaving (a flood, say) are not acted on after its `user-disconnected`.
    async fn wait_connected<A: Adapter>(self, s: &SocketRef<A>) -> Option<(Arc<Peer>, Turn)> {
        let waited = self.wait().await;
        s.connected().then_some(waited)
    }

    fn take<A: Adapter>(s: &Arc<Socket<A>>) -> Result<Self, NoPeer> {
        let peer = s.extensions.get::<Arc<Peer>>().ok_or(NoPeer)?;
        let ticket = peer.order.ticket();
        Ok(Self { peer, ticket })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("socket has no peer state")]
pub struct NoPeer;

impl<A: Adapter> FromMessageParts<A> for InOrder {
    type Error = NoPeer;
    fn from_message_parts(
        s: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, NoPeer> {
        Self::take(s)
    }
}

impl<A: Adapter> FromDisconnectParts<A> for InOrder {
    type Error = NoPeer;
    fn from_disconnect_parts(s: &Arc<Socket<A>>, _: DisconnectReason) -> Result<Self, NoPeer> {
        Self::take(s)
    }
}

/// Extractor: answers a request through its ack callback when the client gave one, and
/// reports refusals with a `request-error` event when it did not.
pub struct Reply<A: Adapter> {
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
        Ok(Self {
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            wants_ack: ack_id.is_some(),
        })
    }
}

impl<A: Adapter> Reply<A> {
    fn ok<T: Serialize + ?Sized>(self, body: &T) {
        if self.wants_ack {
            let _ = self.ack.send(body);
        }
    }

    fn refuse(self, s: &SocketRef<A>, shared: &Shared, event: &str, refusal: Refusal) {
        let reason = [("reason", refusal.reason())];
        shared.stats.refused_by_reason.get_or_create(&reason).inc();
        debug!(sid = %s.id, event, reason = refusal.reason(), "request refused");
        if self.wants_ack {
            let _ = self.ack.send(&refusal.to_ack());
        } else {
            let body = json!({ "event": event, "error": refusal.to_string() });
            let _ = s.emit(event::REQUEST_ERROR, &body);
        }
    }
}

/// Extractor: the raw arguments of an event, parsed only when the handler's turn comes.
pub struct Args(Value);

impl<A: Adapter> FromMessage<A> for Args {
    type Error = Infallible;
    fn from_message(_: Arc<Socket<A>>, v: Value, _: Option<i64>) -> Result<Self, Infallible> {
        Ok(Self(v))
    }
}

impl Args {
    /// The arguments after the event name, as raw JSON, or a refusal for binary data.
    fn raw(&self) -> Result<Vec<&RawValue>, Refusal> {
        match &self.0 {
            Value::Str(_, Some(bins)) if !bins.is_empty() => Err(Refusal::Binary),
            Value::Str(text, _) => Ok(args::event_args(text)),
            Value::Bytes(_) => Err(Refusal::Binary),
        }
    }
}

/// Connect middleware: gives the socket its peer id and registers the event handlers.
/// socketioxide spawns the connect handler as a task after telling the client it is
/// connected, so a client that emits at once could beat handlers registered there; a
/// middleware runs before the client is told.
pub async fn prepare<A: Adapter>(
    s: SocketRef<A>,
    State(shared): State<Shared>,
) -> Result<(), Infallible> {
    shared.stats.connected.fetch_add(1, Ordering::Relaxed);
    let peer = Arc::new(Peer {
        id: PeerId::random(),
        rooms: Mutex::default(),
        order: Sequencer::default(),
        limits: PeerLimits::new(&shared.quotas),
        connecting: Mutex::default(),
    });
    *peer.connecting.lock().unwrap_or_else(|p| p.into_inner()) = Some(peer.order.ticket());
    s.join(peer.id.socket_room());
    s.extensions.insert(peer);

    s.on(event::CREATE_ROOM, on_create_room::<A>);
    s.on(event::JOIN_ROOM, on_join_room::<A>);
    s.on(event::RTC_OFFER, on_rtc_offer::<A>);
    s.on(event::RTC_ANSWER, on_rtc_answer::<A>);
    s.on(event::ICE_CANDIDATE, on_ice_candidate::<A>);
    s.on_fallback(on_unknown_event::<A>);
    s.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// The connect handler, run once [`prepare`] has and the socket counts as connected: lets
/// the socket's event handlers start.
pub async fn on_connect<A: Adapter>(s: SocketRef<A>) {
    let Some(peer) = s.extensions.get::<Arc<Peer>>() else {
        return;
    };
    info!(sid = %s.id, peer = %peer.id, transport = ?s.transport_type(), "connected");
    let ticket = peer
        .connecting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(ticket) = ticket {
        drop(ticket.turn().await);
    }
}

/// `create-room`: a new room with the sender as its only member.
async fn on_create_room<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    State(shared): State<Shared>,
) {
    let Some((peer, _turn)) = order.wait_connected(&s).await else {
        return;
    };
    if let Err(refusal) = may_enter_a_room(&s, &peer, &shared).await {
        return reply.refuse(&s, &shared, event::CREATE_ROOM, refusal);
    }
    create_room(&s, &peer, &shared, reply).await;
}

/// Checks the join rate and the per-socket room cap; disconnects a flooding socket.
async fn may_enter_a_room<A: Adapter>(
    s: &SocketRef<A>,
    peer: &Peer,
    shared: &Shared,
) -> Result<(), Refusal> {
    limited(s, shared, peer.limits.join())?;
    if peer.rooms().len() >= shared.max_rooms_per_socket {
        return Err(Refusal::TooManyRooms);
    }
    Ok(())
}

/// Turns a rate-limit verdict into a refusal, disconnecting a socket that keeps flooding.
fn limited<A: Adapter>(s: &SocketRef<A>, shared: &Shared, verdict: Verdict) -> Result<(), Refusal> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Dropped => {
            shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            Err(Refusal::RateLimited)
        }
        Verdict::Flooding => {
            shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            if s.connected() {
                shared.stats.floods.fetch_add(1, Ordering::Relaxed);
                warn!(sid = %s.id, "flooding: disconnecting");
                let _ = s.clone().disconnect();
            }
            Err(Refusal::RateLimited)
        }
    }
}

/// `join-room(roomId)`: enter an existing room and announce the sender to its members, or
/// get a new room when the id is unknown or malformed.
async fn on_join_room<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    State(shared): State<Shared>,
    args: Args,
) {
    let Some((peer, _turn)) = order.wait_connected(&s).await else {
        return;
    };
    if let Err(refusal) = may_enter_a_room(&s, &peer, &shared).await {
        return reply.refuse(&s, &shared, event::JOIN_ROOM, refusal);
    }
    let requested = args.raw().ok().and_then(|a| args::room_id(&a));
    let Some(room) = requested else {
        return create_room(&s, &peer, &shared, reply).await;
    };
    let joined = shared
        .membership
        .join_existing(&room, &peer.id, shared.max_room_size)
        .await;
    let joined = match joined {
        Ok(joined) => joined,
        Err(error) => {
            warn!(sid = %s.id, %error, "membership store unavailable");
            return reply.refuse(&s, &shared, event::JOIN_ROOM, Refusal::Unavailable);
        }
    };
    match joined {
        Join::NoSuchRoom => create_room(&s, &peer, &shared, reply).await,
        Join::Full => {
            info!(sid = %s.id, peer = %peer.id, room = %room, "room full: join refused");
            count_failed(
                &shared,
                s.emit(event::ROOM_FULL, room.as_str()),
                event::ROOM_FULL,
            );
            reply.refuse(&s, &shared, event::JOIN_ROOM, Refusal::RoomFull);
        }
        Join::AlreadyMember => reply.ok(&json!({ "roomId": room.as_str(), "created": false })),
        Join::Joined { others } => {
            enter(&s, &peer, &room);
            info!(sid = %s.id, peer = %peer.id, room = %room, members = others + 1, "peer joined");
            reply.ok(&json!({ "roomId": room.as_str(), "created": false }));
            let sent = s
                .to(room.socket_room())
                .emit(event::NEW_USER_JOINED, peer.id.as_str())
                .await;
            count_failed(&shared, sent, event::NEW_USER_JOINED);
        }
    }
}

async fn create_room<A: Adapter>(s: &SocketRef<A>, peer: &Peer, shared: &Shared, reply: Reply<A>) {
    let room = match shared.membership.create(&peer.id).await {
        Ok(room) => room,
        Err(error) => {
            warn!(sid = %s.id, %error, "membership store unavailable");
            return reply.refuse(s, shared, event::CREATE_ROOM, Refusal::Unavailable);
        }
    };
    enter(s, peer, &room);
    info!(sid = %s.id, peer = %peer.id, room = %room, "room created");
    count_failed(
        shared,
        s.emit(event::ROOM_CREATED, room.as_str()),
        event::ROOM_CREATED,
    );
    reply.ok(&json!({ "roomId": room.as_str(), "created": true }));
}

fn enter<A: Adapter>(s: &SocketRef<A>, peer: &Peer, room: &RoomId) {
    s.join(room.socket_room());
    peer.rooms().push(room.clone());
}

/// `rtc-offer(peerId, offer)`.
fn on_rtc_offer<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    State(shared): State<Shared>,
    args: Args,
) -> impl Future<Output = ()> {
    relay(s, order, reply, shared, args, event::RTC_OFFER)
}

/// `rtc-answer(peerId, answer)`.
fn on_rtc_answer<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    State(shared): State<Shared>,
    args: Args,
) -> impl Future<Output = ()> {
    relay(s, order, reply, shared, args, event::RTC_ANSWER)
}

/// `ice-candidate(peerId, candidate)`.
fn on_ice_candidate<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    State(shared): State<Shared>,
    args: Args,
) -> impl Future<Output = ()> {
    relay(s, order, reply, shared, args, event::ICE_CANDIDATE)
}

/// Forwards `[sender peer id, payload]` to the target peer when both share a room. The
/// payload is forwarded as the raw JSON it arrived as.
///
/// The event handlers return this future itself rather than awaiting it, and the emit is
/// boxed: socketioxide moves each handler's future several times before it runs, so its
/// size is paid for on every relay (callgrind: ~900 instructions of copying per relay).
async fn relay<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reply: Reply<A>,
    shared: Shared,
    args: Args,
    event: &'static str,
) {
    let Some((peer, _turn)) = order.wait_connected(&s).await else {
        return;
    };
    if let Err(refusal) = limited(&s, &shared, peer.limits.signal()) {
        return reply.refuse(&s, &shared, event, refusal);
    }
    let raw = match args.raw() {
        Ok(raw) => raw,
        Err(refusal) => return reply.refuse(&s, &shared, event, refusal),
    };
    let args::Relay { target, payload } = match check_relay(&raw, &peer, &shared, event).await {
        Ok(relay) => relay,
        Err(refusal) => return reply.refuse(&s, &shared, event, refusal),
    };
    let sent = Box::pin(
        s.to(target.socket_room())
            .emit(event, &(peer.id.as_str(), payload)),
    )
    .await;
    if sent.is_ok() {
        shared
            .stats
            .relayed_by_event
            .get_or_create(&[("event", event)])
            .inc();
        debug!(event, from = %peer.id, to = %target, bytes = payload.get().len(), "relayed");
        reply.ok(&Relayed { ok: true });
    } else {
        // Mostly a full buffer: the target is not reading. Its queue stays bounded and
        // its unanswered heartbeat drops it (socketioxide cannot disconnect a socket
        // whose buffer is full: the disconnect packet finds no room either).
        count_failed(&shared, sent, event);
        reply.refuse(&s, &shared, event, Refusal::Undeliverable);
    }
}

/// The answer to a relay that asked for one; a struct, so no JSON value is built for the
/// many relays that ask for none.
#[derive(Serialize)]
struct Relayed {
    ok: bool,
}

/// Validates a relay's arguments and checks that the target shares a room with the sender.
async fn check_relay<'a>(
    raw: &[&'a RawValue],
    peer: &Peer,
    shared: &Shared,
    event: &str,
) -> Result<args::Relay<'a>, Refusal> {
    let relay = args::relay(raw, event == event::ICE_CANDIDATE, shared.max_signal_bytes)?;
    if relay.target == peer.id {
        return Err(Refusal::ToSelf);
    }
    let shares_a_room = match &shared.membership {
        Membership::Local(rooms) => {
            let mine = peer.rooms();
            rooms.any_has_member(&mine, &relay.target)
        }
        Membership::Cluster(store) => {
            // The sender's room list is its own; only the target's side needs Redis.
            let mine = peer.rooms().clone();
            store
                .any_has_member(&mine, &relay.target)
                .await
                .map_err(|error| {
                    warn!(peer = %peer.id, %error, "membership store unavailable");
                    Refusal::Unavailable
                })?
        }
    };
    if !shares_a_room {
        return Err(Refusal::NotInYourRooms);
    }
    Ok(relay)
}

/// Any event the protocol does not define.
async fn on_unknown_event<A: Adapter>(
    s: SocketRef<A>,
    reply: Reply<A>,
    Event(name): Event,
    State(shared): State<Shared>,
) {
    // Event names are client input: cap what ends up in the logs and the reply.
    let name: String = name.chars().take(64).collect();
    reply.refuse(&s, &shared, &name, Refusal::UnknownEvent);
}

/// Leaves every room and tells the remaining members, once each.
async fn on_disconnect<A: Adapter>(
    s: SocketRef<A>,
    order: InOrder,
    reason: DisconnectReason,
    State(shared): State<Shared>,
) {
    let (peer, _turn) = order.wait().await;
    shared.stats.connected.fetch_sub(1, Ordering::Relaxed);
    let rooms = std::mem::take(&mut *peer.rooms());
    if let Err(error) = shared.membership.leave_all(&rooms, &peer.id).await {
        // Retried by the cluster heartbeat, which then tells the rooms.
        warn!(sid = %s.id, peer = %peer.id, %error, "leave deferred: membership store unavailable");
    }
    for room in &rooms {
        info!(sid = %s.id, peer = %peer.id, room = %room, "peer left");
    }
    if !rooms.is_empty() {
        // One broadcast to all the rooms: a member sharing several gets it once.
        let targets: Vec<String> = rooms.iter().map(RoomId::socket_room).collect();
        let sent = s
            .to(targets)
            .emit(event::USER_DISCONNECTED, peer.id.as_str())
            .await;
        count_failed(&shared, sent, event::USER_DISCONNECTED);
    }
    info!(sid = %s.id, peer = %peer.id, %reason, "disconnected");
}

fn count_failed<E: std::fmt::Debug>(shared: &Shared, sent: Result<(), E>, event: &'static str) {
    if let Err(error) = sent {
        shared.stats.failed_emits.fetch_add(1, Ordering::Relaxed);
        let label = [("event", event)];
        shared
            .stats
            .failed_emits_by_event
            .get_or_create(&label)
            .inc();
        warn!(event, ?error, "emit failed");
    }
}
