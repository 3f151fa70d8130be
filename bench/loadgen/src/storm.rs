//! The storm scenario: clients in rooms spread over the nodes of a cluster, one node
//! killed, its clients reconnecting to the others at once; how long until every room is
//! whole again, and whether every leave was told exactly once.
//!
//! Each client behaves as a page would: on `new-user-joined` it sends an offer, on an
//! offer it answers, on `user-disconnected` it forgets the peer. A `reference` client
//! reconnects with a fresh connection and joins its room again; a `resume` client keeps
//! the token of its create/join ack and reconnects with `auth: {resume}`. Every relay
//! carries its sender's seat in the room (`who`) and connection number (`ep`), so that
//! the load generator, which sees every client, can tell which pairs of members reached
//! each other on their current connections.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Target, WAIT, Ws, next_text};
use crate::now_us;
use crate::relay::cpu_secs;

/// How a client whose node died comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// As the reference page: no acks, a fresh connection, `join-room` again.
    Reference,
    /// Keeps the resume token of its acks and presents it in the `CONNECT`.
    Resume,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StormOpts {
    /// Clients in all (rounded down to whole rooms).
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Members per room; member k of room r is on node (r + k) mod nodes.
    #[arg(long, default_value_t = 4)]
    pub room: usize,
    #[arg(long, value_enum, default_value_t = Kind::Reference)]
    pub kind: Kind,
    /// The node to kill: its position among the `--addr`s.
    #[arg(long, default_value_t = 0)]
    pub kill_node: usize,
    /// Process id of that node, sent SIGKILL once every room is whole; without it, the
    /// node must be killed by hand.
    #[arg(long)]
    pub kill_pid: Option<u32>,
    /// Process ids of the surviving nodes, for their CPU time (repeat it).
    #[arg(long)]
    pub survivor_pid: Vec<u32>,
    /// Redis's address, for `INFO` (CPU and commands) before, during and after.
    #[arg(long)]
    pub redis: Option<SocketAddr>,
    /// Redis's process id, for its CPU time from /proc.
    #[arg(long)]
    pub redis_pid: Option<u32>,
    /// First reconnection delay in ms, doubled on each failed attempt
    /// (socket.io-client's `reconnectionDelay`).
    #[arg(long, default_value_t = 1000)]
    pub backoff_ms: u64,
    /// Longest reconnection delay in ms (`reconnectionDelayMax`).
    #[arg(long, default_value_t = 5000)]
    pub backoff_max_ms: u64,
    /// Each delay is randomized by up to this share either way
    /// (`randomizationFactor`).
    #[arg(long, default_value_t = 0.5)]
    pub jitter: f64,
    /// Seconds to watch after the kill: rooms not whole by then count as not healed, and
    /// leaves told until then are counted (keep it past the dead-node sweep,
    /// `NODE_TTL_MS` + `NODE_HEARTBEAT_MS`).
    #[arg(long, default_value_t = 20.0)]
    pub observe_secs: f64,
    /// Seconds every client stays idle between the last room formed and the kill.
    #[arg(long, default_value_t = 3.0)]
    pub quiet_secs: f64,
    /// Rooms being set up at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// A pair of members that can reach each other but has not heard from each other on
    /// its current connections is probed again after this many ms, doubled for each
    /// probe of that pair, so that probes do not pile onto an overloaded cluster.
    #[arg(long, default_value_t = 1500)]
    pub retry_ms: u64,
    /// Pings per second of the final check (one per pair of members, answered by a pong),
    /// paced for the same reason.
    #[arg(long, default_value_t = 2000)]
    pub final_rate: u64,
    /// Seconds the final check waits for the last pongs after its last ping.
    #[arg(long, default_value_t = 10.0)]
    pub final_wait_secs: f64,
}

/// Figures of one storm, printed as one line of JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub kind: Kind,
    pub clients: usize,
    pub rooms: usize,
    pub room: usize,
    pub nodes: usize,
    pub connect_secs: f64,
    /// Clients the dead node held.
    pub moved: usize,
    /// Rooms with a member on the dead node.
    pub rooms_hit: usize,
    /// From the kill until every room was whole: every member on a live connection, every
    /// pair of members heard from each other on their current connections, and every
    /// member's view of the room (from `new-user-joined`, relays and `user-disconnected`)
    /// exactly the others' current peer ids. None if some room never was.
    pub whole_ms: Option<u64>,
    /// Per hit room, from the kill until it was whole.
    pub whole_p50_ms: Option<u64>,
    pub whole_p99_ms: Option<u64>,
    /// From the kill until every pair of members had reached each other, stale peers
    /// still in views or not.
    pub reachable_ms: Option<u64>,
    pub reachable_p50_ms: Option<u64>,
    pub reachable_p99_ms: Option<u64>,
    /// Hit rooms never whole during the watch.
    pub rooms_not_whole: usize,
    /// Rooms whole at the end of the watch.
    pub rooms_whole_at_end: usize,
    /// Rooms whose id was answered with a new room on a rejoin.
    pub rooms_lost: usize,
    /// From the kill until a moved client was back on a node (resumed, or its join sent).
    pub back_p50_ms: u64,
    pub back_p99_ms: u64,
    pub back_max_ms: u64,
    /// Connection attempts of moved clients that failed and were retried.
    pub reconnect_failures: u64,
    /// Connections that closed without their node being killed.
    pub unexpected_closes: u64,
    pub resumed: u64,
    /// Resumes refused, by reason (the client then joined again).
    pub resume_refused: BTreeMap<String, u64>,
    /// Refusals heard (`request-error`, error acks), by event and reason.
    pub refusals: BTreeMap<String, u64>,
    /// Probes sent again because a pair had not heard from each other in time.
    pub probes_retried: u64,
    /// When the first and the last `user-disconnected` after the kill arrived.
    pub first_leave_ms: Option<u64>,
    pub last_leave_ms: Option<u64>,
    pub leaves: Told,
    pub joins: Told,
    /// After the watch, each member pinged each other member once (`--final-rate`): pairs
    /// (each direction counts) that heard each other, of all.
    pub final_pairs_ok: usize,
    pub final_pairs: usize,
    /// Rooms in which some pair failed the final pings.
    pub final_rooms_broken: usize,
    /// CPU (share of one core, summed over the survivors) and Redis, from the kill until
    /// every room was whole (or the end of the watch).
    pub survivors_cpu_secs: Option<f64>,
    pub survivors_cpu_share: Option<f64>,
    pub redis_cpu_secs: Option<f64>,
    pub redis_commands: Option<u64>,
    pub redis_commands_per_s: Option<f64>,
    /// Redis commands by name over the whole watch (`INFO commandstats`), most first.
    pub redis_commandstats: Vec<(String, u64)>,
    pub loadgen_cpu_share: Option<f64>,
    /// Longest gap between two of the load generator's 50 ms checks during the watch: far
    /// over 50, the load generator (and its clients) were starved of CPU.
    pub loadgen_max_gap_ms: u64,
    /// When that gap ended, after the kill.
    pub loadgen_max_gap_at_ms: u64,
    /// Connections this machine's listeners dropped because their accept queue was full
    /// (`ListenOverflows` of /proc/net/netstat, machine-wide), from the kill to the end of
    /// the watch: each costs its client a SYN retransmission (1 s, then 3 s, 7 s...).
    pub listen_overflows: Option<u64>,
    /// Once a second from the kill: what the cluster did and how far the rooms were.
    pub timeline: Vec<Sample>,
}

/// Leaves (`user-disconnected`) or joins (`new-user-joined`) heard after the kill.
#[derive(Debug, Default, Serialize)]
pub struct Told {
    /// What should have been heard: reference clients, each survivor of a hit room about
    /// each moved member (its old id for a leave, its new one for a join); resume
    /// clients, nothing.
    pub expected: u64,
    /// Of those, heard exactly once.
    pub once: u64,
    pub missing: u64,
    /// Extra times an id was heard after its first (expected or allowed ones).
    pub repeated: u64,
    /// Heard but not expected (for reference clients, a moved member hearing about the
    /// old id of another, or its own, is allowed and not counted here).
    pub unexpected: u64,
    pub total: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Share of one core over the last second, summed over the survivors.
    pub survivors_cpu: Option<f64>,
    pub redis_cpu: Option<f64>,
    pub redis_ops: Option<u64>,
    /// Moved clients back on a node.
    pub back: usize,
    pub rooms_reachable: usize,
    pub rooms_whole: usize,
    pub leaves: u64,
}

/// One member's seat in a room, as the load generator sees it.
#[derive(Default)]
struct Seat {
    node: usize,
    /// Its current peer id, once known.
    id: Option<String>,
    /// Its peer id when the node was killed.
    old_id: Option<String>,
    /// Its connection number: relays carry it, so one from an earlier connection is told
    /// apart.
    ep: u32,
    /// On a live connection and in the room (resumed, or its join sent).
    settled: bool,
    token: Option<String>,
    /// The peer ids it believes are in the room.
    view: HashSet<String>,
    leaves: HashMap<String, u32>,
    joins: HashMap<String, u32>,
    tx: Option<mpsc::UnboundedSender<Cmd>>,
}

struct RoomState {
    seats: Vec<Seat>,
    /// `heard[a][b]`: b heard a relay from a's current connection on its own.
    heard: Vec<Vec<bool>>,
    /// When a was last asked to probe b, and how often since b's current connection.
    probed: Vec<Vec<(Option<Instant>, u32)>>,
    reachable_at: Option<u64>,
    whole_at: Option<u64>,
    lost: bool,
}

impl RoomState {
    fn ids(&self) -> Vec<Option<&String>> {
        self.seats.iter().map(|s| s.id.as_ref()).collect()
    }

    fn reachable(&self) -> bool {
        let n = self.seats.len();
        self.seats.iter().all(|s| s.settled && s.id.is_some())
            && (0..n).all(|a| (0..n).all(|b| a == b || self.heard[a][b]))
    }

    fn whole(&self) -> bool {
        if !self.reachable() {
            return false;
        }
        let ids = self.ids();
        self.seats.iter().enumerate().all(|(me, seat)| {
            seat.view.len() == ids.len() - 1
                && ids
                    .iter()
                    .enumerate()
                    .all(|(i, id)| i == me || id.is_some_and(|id| seat.view.contains(id)))
        })
    }

    fn reset_heard(&mut self, seat: usize) {
        for other in 0..self.seats.len() {
            self.heard[seat][other] = false;
            self.heard[other][seat] = false;
            self.probed[seat][other] = (None, 0);
            self.probed[other][seat] = (None, 0);
        }
    }
}

struct Room {
    id: Mutex<String>,
    state: Mutex<RoomState>,
}

/// What the load generator asks a client to do.
enum Cmd {
    /// Ping this peer id.
    Probe(String),
}

#[derive(Default)]
struct Counts {
    reconnect_failures: AtomicU64,
    unexpected_closes: AtomicU64,
    resumed: AtomicU64,
    probes_retried: AtomicU64,
    leaves_after_kill: AtomicU64,
    first_leave_us: AtomicU64,
    last_leave_us: AtomicU64,
    back: AtomicUsize,
    resume_refused: Mutex<BTreeMap<String, u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
}

struct Storm {
    target: Target,
    opts: StormOpts,
    nodes: usize,
    rooms: Vec<Room>,
    /// `now_us` of the kill; `u64::MAX` before.
    killed_at: AtomicU64,
    next_survivor: AtomicUsize,
    counts: Counts,
    back: Mutex<Histogram<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    *lock(map).entry(key).or_default() += 1;
}

impl Storm {
    fn killed(&self) -> Option<u64> {
        let at = self.killed_at.load(Ordering::Relaxed);
        (at != u64::MAX).then_some(at)
    }

    fn survivor(&self) -> usize {
        let live: Vec<usize> = (0..self.nodes)
            .filter(|n| *n != self.opts.kill_node)
            .collect();
        live[self.next_survivor.fetch_add(1, Ordering::Relaxed) % live.len()]
    }

    /// Delay before reconnection attempt `attempt` (0 first), as socket.io-client's
    /// backoff computes it.
    fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let base = (self.opts.backoff_ms as f64) * 2f64.powi(attempt.min(16) as i32);
        let deviation = base * self.opts.jitter * rng.unit();
        let ms = if rng.unit() < 0.5 {
            base - deviation
        } else {
            base + deviation
        };
        Duration::from_millis(ms.min(self.opts.backoff_max_ms as f64).max(0.0) as u64)
    }
}

/// xorshift64*: enough randomness for backoff jitter.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A relay frame to `to`, carrying the sender's seat and connection number.
fn relay(event: &str, to: &str, who: usize, ep: u32, extra: &str) -> Message {
    let kind = match event {
        "rtc-offer" => r#""type":"offer","#,
        "rtc-answer" => r#""type":"answer","#,
        _ => "",
    };
    Message::text(format!(
        r#"42["{event}","{to}",{{{kind}"who":{who},"ep":{ep}{extra}}}]"#
    ))
}

/// One client, over all its connections: handles what it hears as a page would, and
/// reconnects when its connection closes.
async fn client(
    storm: Arc<Storm>,
    r: usize,
    me: usize,
    mut ws: Ws,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    mut acks: u64,
) {
    let mut rng = Rng::new((r * 64 + me) as u64 + now_us());
    loop {
        let closed = serve(&storm, r, me, &mut ws, &mut cmds, &mut acks).await;
        if !closed {
            return;
        }
        let room = &storm.rooms[r];
        let token = {
            let mut st = lock(&room.state);
            let seat = &mut st.seats[me];
            seat.settled = false;
            seat.ep += 1;
            let expected = storm.killed().is_some() && seat.node == storm.opts.kill_node;
            if !expected {
                storm
                    .counts
                    .unexpected_closes
                    .fetch_add(1, Ordering::Relaxed);
            }
            if storm.opts.kind == Kind::Reference {
                seat.id = None;
            }
            let token = seat.token.clone();
            st.reset_heard(me);
            token
        };
        let auth = token.map(|t| json!({ "resume": t }));
        let mut attempt = 0;
        ws = loop {
            tokio::time::sleep(storm.backoff(attempt, &mut rng)).await;
            match storm
                .target
                .connect_to(storm.survivor(), auth.as_ref())
                .await
            {
                Ok(ws) => break ws,
                Err(_) => {
                    storm
                        .counts
                        .reconnect_failures
                        .fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
            }
        };
        if auth.is_none() {
            // The reference page: join the room again; it learns who is there from the
            // offers the members send it.
            let id = lock(&room.id).clone();
            if ws
                .send(Message::text(format!(r#"42["join-room","{id}"]"#)))
                .await
                .is_err()
            {
                continue;
            }
            let mut st = lock(&room.state);
            let seat = &mut st.seats[me];
            seat.view.clear();
            seat.settled = true;
            drop(st);
            storm.record_back();
        }
        // A resuming client is settled once `resumed` arrives (in `serve`).
    }
}

impl Storm {
    fn record_back(&self) {
        self.counts.back.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = self.killed() {
            let ms = now_us().saturating_sub(at) / 1000;
            let _ = lock(&self.back).record(ms.max(1));
        }
    }
}

/// Serves one connection until it closes (true) or the storm is over (false).
async fn serve(
    storm: &Storm,
    r: usize,
    me: usize,
    ws: &mut Ws,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    acks: &mut u64,
) -> bool {
    let room = &storm.rooms[r];
    let mut out: Vec<Message> = Vec::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return false };
                let st = lock(&room.state);
                let seat = &st.seats[me];
                if !seat.settled {
                    continue;
                }
                let Cmd::Probe(id) = cmd;
                out.push(relay("ice-candidate", &id, me, seat.ep, r#","ping":1"#));
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if text == "2" {
                        out.push(Message::text("3"));
                    } else if let Some(body) = text.strip_prefix("42") {
                        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) {
                            on_event(storm, r, me, &items, &mut out, acks);
                        }
                    } else if let Some(body) = text.strip_prefix("43") {
                        let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
                        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) {
                            on_ack(storm, r, me, items.first());
                        }
                    } else if text.starts_with("41") || text.starts_with('1') {
                        return true;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return true,
                Some(Ok(_)) => {}
            },
        }
        if !out.is_empty() {
            for m in out.drain(..) {
                if ws.feed(m).await.is_err() {
                    return true;
                }
            }
            if ws.flush().await.is_err() {
                return true;
            }
        }
    }
}

/// The answer to a `create-room` or `join-room` of ours.
fn on_ack(storm: &Storm, r: usize, me: usize, answer: Option<&Value>) {
    let room = &storm.rooms[r];
    let Some(answer) = answer else { return };
    if let Some(reason) = answer.get("reason").and_then(Value::as_str) {
        bump(&storm.counts.refusals, format!("join-room: {reason}"));
        return;
    }
    let room_id = answer.get("roomId").and_then(Value::as_str);
    let mut st = lock(&room.state);
    if room_id.is_some_and(|id| id != lock(&room.id).as_str()) {
        st.lost = true;
    }
    let seat = &mut st.seats[me];
    if let Some(id) = answer.get("peerId").and_then(Value::as_str) {
        seat.id = Some(id.to_owned());
    }
    if let Some(token) = answer.get("resume").and_then(Value::as_str) {
        seat.token = Some(token.to_owned());
    }
}

/// An event: what a page does with it, and what the load generator learns from it.
fn on_event(
    storm: &Storm,
    r: usize,
    me: usize,
    items: &[Value],
    out: &mut Vec<Message>,
    acks: &mut u64,
) {
    let room = &storm.rooms[r];
    let name = items.first().and_then(Value::as_str).unwrap_or_default();
    let arg = items.get(1);
    let from = arg.and_then(Value::as_str).map(str::to_owned);
    let mut st = lock(&room.state);
    match (name, from) {
        ("new-user-joined", Some(id)) => {
            let seat = &mut st.seats[me];
            seat.view.insert(id.clone());
            *seat.joins.entry(id.clone()).or_default() += 1;
            out.push(relay("rtc-offer", &id, me, seat.ep, ""));
        }
        ("rtc-offer" | "rtc-answer" | "ice-candidate", Some(id)) => {
            let payload = items.get(2);
            let who = payload
                .and_then(|p| p.get("who"))
                .and_then(Value::as_u64)
                .map(|w| w as usize);
            let ep = payload
                .and_then(|p| p.get("ep"))
                .and_then(Value::as_u64)
                .map(|e| e as u32);
            if let (Some(who), Some(ep)) = (who, ep)
                && who < st.seats.len()
                && who != me
                && st.seats[who].ep == ep
            {
                st.seats[who].id = Some(id.clone());
                st.heard[who][me] = true;
            }
            let seat = &mut st.seats[me];
            seat.view.insert(id.clone());
            let ep = seat.ep;
            match name {
                "rtc-offer" => out.push(relay("rtc-answer", &id, me, ep, "")),
                "ice-candidate" if payload.and_then(|p| p.get("ping")).is_some() => {
                    out.push(relay("ice-candidate", &id, me, ep, r#","pong":1"#));
                }
                _ => {}
            }
        }
        ("user-disconnected", Some(id)) => {
            let seat = &mut st.seats[me];
            seat.view.remove(&id);
            *seat.leaves.entry(id).or_default() += 1;
            if storm.killed().is_some() {
                let now = now_us();
                let c = &storm.counts;
                c.leaves_after_kill.fetch_add(1, Ordering::Relaxed);
                let _ =
                    c.first_leave_us
                        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                c.last_leave_us.store(now, Ordering::Relaxed);
            }
        }
        // A room-created that is not our room: the room was gone when we joined again.
        ("room-created", Some(id)) if id != *lock(&room.id) => st.lost = true,
        ("resumed", _) => {
            let body = arg.cloned().unwrap_or_default();
            let seat = &mut st.seats[me];
            if let Some(id) = body.get("peerId").and_then(Value::as_str) {
                seat.id = Some(id.to_owned());
            }
            if let Some(token) = body.get("resume").and_then(Value::as_str) {
                seat.token = Some(token.to_owned());
            }
            seat.settled = true;
            // The page's data channels never broke; here, a ping to each member shows
            // that relays flow both ways again.
            for id in &seat.view {
                out.push(relay("ice-candidate", id, me, seat.ep, r#","ping":1"#));
            }
            let id = lock(&room.id).clone();
            let in_room = body
                .get("rooms")
                .and_then(Value::as_array)
                .is_some_and(|rooms| rooms.iter().any(|x| x.as_str() == Some(id.as_str())));
            if !in_room {
                st.lost = true;
            }
            drop(st);
            storm.counts.resumed.fetch_add(1, Ordering::Relaxed);
            storm.record_back();
        }
        ("resume-refused", _) => {
            let reason = arg
                .and_then(|a| a.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            bump(&storm.counts.resume_refused, reason);
            // As the page does: a new peer, which joins its room again.
            let seat = &mut st.seats[me];
            seat.view.clear();
            seat.token = None;
            seat.settled = true;
            *acks += 1;
            let id = lock(&room.id).clone();
            out.push(Message::text(format!(r#"42{}["join-room","{id}"]"#, *acks)));
            drop(st);
            storm.record_back();
        }
        ("request-error", _) => {
            let event = arg.and_then(|a| a.get("event")).and_then(Value::as_str);
            let reason = arg.and_then(|a| a.get("reason")).and_then(Value::as_str);
            bump(
                &storm.counts.refusals,
                format!("{}: {}", event.unwrap_or("?"), reason.unwrap_or("?")),
            );
        }
        ("room-full", _) => bump(&storm.counts.refusals, "join-room: room-full".into()),
        _ => {}
    }
}

/// Connects the members of room `r` and waits until it is whole.
async fn form(storm: Arc<Storm>, r: usize, tasks: Arc<Mutex<JoinSet<()>>>) -> Result<()> {
    let resume = storm.opts.kind == Kind::Resume;
    let room = &storm.rooms[r];
    for k in 0..storm.opts.room {
        let node = (r + k) % storm.nodes;
        let mut ws = storm.target.connect_to(node, None).await?;
        if k == 0 {
            let create = if resume {
                r#"421["create-room"]"#
            } else {
                r#"42["create-room"]"#
            };
            ws.send(Message::text(create)).await?;
            // The room id from `room-created`, and with an ack the peer id and token.
            let mut id = None;
            let mut ack = None;
            while id.is_none() || (resume && ack.is_none()) {
                let text = tokio::time::timeout(WAIT, next_text(&mut ws)).await;
                let Ok(Ok(Some(text))) = text else {
                    bail!("no room-created");
                };
                if let Some(body) = text.strip_prefix("42[\"room-created\",") {
                    id = serde_json::from_str::<Value>(&format!("[{body}"))?
                        .get(0)
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                } else if let Some(body) = text.strip_prefix("431") {
                    ack = serde_json::from_str::<Value>(body)?.get(0).cloned();
                }
            }
            *lock(&room.id) = id.unwrap_or_default();
            on_ack(&storm, r, 0, ack.as_ref());
        } else {
            let id = lock(&room.id).clone();
            let join = if resume {
                format!(r#"421["join-room","{id}"]"#)
            } else {
                format!(r#"42["join-room","{id}"]"#)
            };
            ws.send(Message::text(join)).await?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut st = lock(&room.state);
            let seat = &mut st.seats[k];
            seat.node = node;
            seat.settled = true;
            seat.tx = Some(tx);
        }
        let acks = u64::from(resume);
        lock(&tasks).spawn(client(storm.clone(), r, k, ws, rx, acks));
    }
    let deadline = Instant::now() + WAIT;
    while !lock(&room.state).whole() {
        if Instant::now() > deadline {
            bail!("room {r} not whole after setup");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `INFO <section>` of a Redis, as field → value.
fn redis_info(addr: SocketAddr, section: &str) -> Option<HashMap<String, String>> {
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(format!("INFO {section}\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    // A bulk string: `$<len>\r\n<body>\r\n`.
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let (head, rest) = text.split_once("\r\n")?;
        let len: usize = head.strip_prefix('$')?.parse().ok()?;
        if rest.len() >= len {
            return Some(
                rest[..len]
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                    .collect(),
            );
        }
    }
}

/// `INFO <section>` on a thread of its own: a busy Redis must not stall every client of
/// this single-threaded load generator.
async fn redis_info_async(
    addr: Option<SocketAddr>,
    section: &'static str,
) -> Option<HashMap<String, String>> {
    let addr = addr?;
    tokio::task::spawn_blocking(move || redis_info(addr, section))
        .await
        .ok()
        .flatten()
}

/// Commands Redis has processed, from `INFO stats`.
async fn redis_ops(addr: Option<SocketAddr>) -> Option<u64> {
    redis_info_async(addr, "stats")
        .await?
        .get("total_commands_processed")?
        .parse()
        .ok()
}

/// Calls per command from `INFO commandstats`.
async fn redis_commandstats(addr: Option<SocketAddr>) -> HashMap<String, u64> {
    let Some(info) = redis_info_async(addr, "commandstats").await else {
        return HashMap::new();
    };
    info.into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("cmdstat_")?.to_owned();
            let calls = v.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name, calls.parse().ok()?))
        })
        .collect()
}

/// `TcpExt: ListenOverflows` from /proc/net/netstat.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn pct(hist: &Histogram<u64>, q: f64) -> Option<u64> {
    (!hist.is_empty()).then(|| hist.value_at_quantile(q))
}

pub async fn run(target: &Target, opts: &StormOpts) -> Result<Report> {
    let nodes = target.servers();
    if nodes < 2 || opts.kill_node >= nodes || opts.room < 2 {
        bail!(
            "storm needs two nodes or more (--addr), a --kill-node among them, rooms of 2 or more"
        );
    }
    let rooms_n = opts.clients / opts.room;
    let rooms = (0..rooms_n)
        .map(|_| Room {
            id: Mutex::new(String::new()),
            state: Mutex::new(RoomState {
                seats: (0..opts.room).map(|_| Seat::default()).collect(),
                heard: vec![vec![false; opts.room]; opts.room],
                probed: vec![vec![(None, 0); opts.room]; opts.room],
                reachable_at: None,
                whole_at: None,
                lost: false,
            }),
        })
        .collect();
    let storm = Arc::new(Storm {
        target: target.clone(),
        opts: opts.clone(),
        nodes,
        rooms,
        killed_at: AtomicU64::new(u64::MAX),
        next_survivor: AtomicUsize::new(0),
        counts: Counts::default(),
        back: Mutex::new(Histogram::new_with_bounds(1, 600_000, 3)?),
    });

    // Setup: rooms formed a few at a time, each whole before it counts.
    let tasks = Arc::new(Mutex::new(JoinSet::new()));
    let started = Instant::now();
    let mut forming = JoinSet::new();
    let mut next = 0;
    let mut formed = 0;
    loop {
        while forming.len() < opts.concurrency && next < rooms_n {
            forming.spawn(form(storm.clone(), next, tasks.clone()));
            next += 1;
        }
        let Some(done) = forming.join_next().await else {
            break;
        };
        done??;
        formed += 1;
        if formed % 250 == 0 {
            eprintln!("storm: {} clients in rooms", formed * opts.room);
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "storm: {} clients in {rooms_n} rooms of {} over {nodes} nodes in {connect_secs:.1} s",
        rooms_n * opts.room,
        opts.room
    );
    tokio::time::sleep(Duration::from_secs_f64(opts.quiet_secs)).await;

    // The kill. Counters of what is heard start now; old ids are kept for the checks.
    let mut moved = 0;
    let mut rooms_hit = 0;
    for room in &storm.rooms {
        let mut st = lock(&room.state);
        let mut hit = false;
        for seat in &mut st.seats {
            seat.leaves.clear();
            seat.joins.clear();
            seat.old_id = seat.id.clone();
            if seat.node == opts.kill_node {
                moved += 1;
                hit = true;
            }
        }
        // Its members on the dead node are not on a live connection any more (they
        // notice a moment later).
        for k in 0..st.seats.len() {
            if st.seats[k].node == opts.kill_node {
                st.seats[k].settled = false;
                st.reset_heard(k);
            }
        }
        rooms_hit += usize::from(hit);
    }
    let survivors_cpu = || -> Option<f64> {
        if opts.survivor_pid.is_empty() {
            return None;
        }
        opts.survivor_pid
            .iter()
            .map(|p| cpu_secs(&p.to_string()))
            .sum()
    };
    let redis_proc_cpu = || opts.redis_pid.and_then(|p| cpu_secs(&p.to_string()));
    let cmdstats_before = redis_commandstats(opts.redis).await;
    let ops0 = redis_ops(opts.redis).await;
    let cpu0 = survivors_cpu();
    let rcpu0 = redis_proc_cpu();
    let self0 = cpu_secs("self");
    let overflows0 = listen_overflows();
    let t0 = now_us();
    storm.killed_at.store(t0, Ordering::Relaxed);
    match opts.kill_pid {
        Some(pid) => {
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()?;
            if !status.success() {
                bail!("could not kill {pid}");
            }
            eprintln!(
                "storm: node {} (pid {pid}) killed in {} ms",
                opts.kill_node,
                (now_us() - t0) / 1000
            );
        }
        None => eprintln!("storm: kill node {} now", opts.kill_node),
    }

    // Watch: rooms checked every 50 ms, pairs that can reach each other but have not yet
    // probed again, one sample a second.
    let watch_end = Duration::from_secs_f64(opts.observe_secs);
    let retry = Duration::from_millis(opts.retry_ms);
    let mut timeline = Vec::new();
    let mut last_sample = (0u64, cpu0, rcpu0, ops0);
    let mut whole_all: Option<u64> = None;
    let mut reachable_all: Option<u64> = None;
    let mut at_whole = None;
    let whole_at_end;
    // The longest gap between two checks: far over 50 ms, the load generator itself was
    // starved (or stalled) and its clients with it.
    let (mut max_gap, mut max_gap_at, mut last_tick) = (0u64, 0u64, now_us());
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let now = now_us();
        if now.saturating_sub(last_tick) > max_gap {
            max_gap = now - last_tick;
            max_gap_at = now - t0;
        }
        last_tick = now;
        let t_ms = (now - t0) / 1000;
        let mut reachable = 0;
        let mut whole = 0;
        let instant = Instant::now();
        for room in &storm.rooms {
            let mut guard = lock(&room.state);
            let st = &mut *guard;
            if st.reachable_at.is_none() && st.reachable() {
                st.reachable_at = Some(now);
            }
            if st.whole_at.is_none() && st.whole() {
                st.whole_at = Some(now);
            }
            // Still whole now, not only once.
            reachable += usize::from(st.reachable());
            whole += usize::from(st.whole());
            let n = st.seats.len();
            for a in 0..n {
                for b in 0..n {
                    if a == b || st.heard[a][b] || !st.seats[a].settled || !st.seats[b].settled {
                        continue;
                    }
                    let Some(id) = st.seats[b].id.clone() else {
                        continue;
                    };
                    if !st.seats[a].view.contains(&id) {
                        continue;
                    }
                    match st.probed[a][b] {
                        (None, _) => st.probed[a][b] = (Some(instant), 0),
                        (Some(at), n)
                            if instant.duration_since(at) >= retry * 2u32.pow(n.min(6)) =>
                        {
                            st.probed[a][b] = (Some(instant), n + 1);
                            if let Some(tx) = &st.seats[a].tx {
                                let _ = tx.send(Cmd::Probe(id));
                                storm.counts.probes_retried.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        (Some(_), _) => {}
                    }
                }
            }
        }
        if reachable_all.is_none() && reachable == rooms_n {
            reachable_all = Some(t_ms);
        }
        if whole_all.is_none() && whole == rooms_n {
            whole_all = Some(t_ms);
            at_whole = Some((
                now,
                survivors_cpu(),
                redis_proc_cpu(),
                redis_ops(opts.redis).await,
            ));
            eprintln!("storm: every room whole {t_ms} ms after the kill");
        }
        if t_ms >= last_sample.0 + 1000 || t_ms == 0 {
            let (cpu, rcpu) = (survivors_cpu(), redis_proc_cpu());
            let ops = redis_ops(opts.redis).await;
            let secs = (t_ms - last_sample.0).max(1) as f64 / 1000.0;
            if t_ms > 0 {
                timeline.push(Sample {
                    t_ms,
                    survivors_cpu: cpu.zip(last_sample.1).map(|(b, a)| (b - a) / secs),
                    redis_cpu: rcpu.zip(last_sample.2).map(|(b, a)| (b - a) / secs),
                    redis_ops: ops.zip(last_sample.3).map(|(b, a)| b.saturating_sub(a)),
                    back: storm.counts.back.load(Ordering::Relaxed),
                    rooms_reachable: reachable,
                    rooms_whole: whole,
                    leaves: storm.counts.leaves_after_kill.load(Ordering::Relaxed),
                });
                eprintln!(
                    "storm: {:>5} ms  back {:>5}/{moved}  reachable {:>5}  whole {:>5}/{rooms_n}  leaves {}",
                    t_ms,
                    storm.counts.back.load(Ordering::Relaxed),
                    reachable,
                    whole,
                    storm.counts.leaves_after_kill.load(Ordering::Relaxed)
                );
            }
            last_sample = (t_ms, cpu, rcpu, ops);
        }
        if t_ms >= watch_end.as_millis() as u64 {
            whole_at_end = whole;
            break;
        }
    }
    let t_end = now_us();
    let ops_end = redis_ops(opts.redis).await;
    let self_end = cpu_secs("self");
    let overflows_end = listen_overflows();
    let cmdstats_after = redis_commandstats(opts.redis).await;

    // Final check: each member pings each later member of its room, at a steady rate; the
    // ping counts for one direction of the pair, the pong for the other.
    let mut pings = Vec::new();
    for (r, room) in storm.rooms.iter().enumerate() {
        let mut st = lock(&room.state);
        let n = st.seats.len();
        st.heard = vec![vec![false; n]; n];
        for a in 0..n {
            for b in a + 1..n {
                if let Some(id) = st.seats[b].id.clone() {
                    pings.push((r, a, id));
                }
            }
        }
    }
    let per_tick = (opts.final_rate / 100).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for batch in pings.chunks(per_tick) {
        tick.tick().await;
        for (r, a, id) in batch {
            if let Some(tx) = &lock(&storm.rooms[*r].state).seats[*a].tx {
                let _ = tx.send(Cmd::Probe(id.clone()));
            }
        }
    }
    let answered = || {
        storm.rooms.iter().all(|room| {
            let st = lock(&room.state);
            let n = st.seats.len();
            (0..n).all(|a| (0..n).all(|b| a == b || st.heard[a][b]))
        })
    };
    let final_end = Instant::now() + Duration::from_secs_f64(opts.final_wait_secs);
    while Instant::now() < final_end && !answered() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The checks.
    let mut leaves = Told::default();
    let mut joins = Told::default();
    let mut whole_hist = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let mut reach_hist = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let (mut rooms_not_whole, mut rooms_lost, mut final_ok, mut final_pairs, mut broken) =
        (0, 0, 0, 0, 0);
    for room in &storm.rooms {
        let st = lock(&room.state);
        let n = st.seats.len();
        let ok = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|&(a, b)| a != b && st.heard[a][b])
            .count();
        final_ok += ok;
        final_pairs += n * (n - 1);
        broken += usize::from(ok < n * (n - 1));
        rooms_lost += usize::from(st.lost);
        let hit = st.seats.iter().any(|s| s.node == opts.kill_node);
        if hit {
            match st.whole_at {
                Some(at) => {
                    let _ = whole_hist.record((at.saturating_sub(t0) / 1000).max(1));
                }
                None => rooms_not_whole += 1,
            }
            if let Some(at) = st.reachable_at {
                let _ = reach_hist.record((at.saturating_sub(t0) / 1000).max(1));
            }
        }
        let current: HashSet<&String> = st.seats.iter().filter_map(|s| s.id.as_ref()).collect();
        let old_of_moved: HashSet<&String> = st
            .seats
            .iter()
            .filter(|s| s.node == opts.kill_node)
            .filter_map(|s| s.old_id.as_ref())
            .collect();
        for (i, seat) in st.seats.iter().enumerate() {
            leaves.total += seat.leaves.values().map(|&c| u64::from(c)).sum::<u64>();
            joins.total += seat.joins.values().map(|&c| u64::from(c)).sum::<u64>();
            let survivor = seat.node != opts.kill_node;
            let mut expected_leaves = HashSet::new();
            let mut expected_joins = HashSet::new();
            if opts.kind == Kind::Reference && survivor {
                for (j, other) in st.seats.iter().enumerate() {
                    if j != i && other.node == opts.kill_node {
                        expected_leaves.extend(other.old_id.clone());
                        expected_joins.extend(other.id.clone());
                    }
                }
            }
            tally(&mut leaves, &seat.leaves, &expected_leaves, |id| {
                // A moved reference client may hear the sweep of old ids, its own too.
                opts.kind == Kind::Reference && !survivor && old_of_moved.contains(id)
            });
            tally(&mut joins, &seat.joins, &expected_joins, |id| {
                // A moved reference client hears the other moved members join after it.
                opts.kind == Kind::Reference && !survivor && current.contains(id)
            });
        }
    }
    let cpu_window = at_whole.map_or(t_end, |w| w.0).saturating_sub(t0) as f64 / 1e6;
    let survivors_cpu_secs = match at_whole {
        Some((_, cpu, _, _)) => cpu.zip(cpu0).map(|(b, a)| b - a),
        None => survivors_cpu().zip(cpu0).map(|(b, a)| b - a),
    };
    let redis_cpu_secs = match at_whole {
        Some((_, _, rcpu, _)) => rcpu.zip(rcpu0).map(|(b, a)| b - a),
        None => redis_proc_cpu().zip(rcpu0).map(|(b, a)| b - a),
    };
    let redis_commands = match at_whole {
        Some((_, _, _, ops)) => ops.zip(ops0).map(|(b, a)| b.saturating_sub(a)),
        None => ops_end.zip(ops0).map(|(b, a)| b.saturating_sub(a)),
    };
    let mut commandstats: Vec<(String, u64)> = cmdstats_after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(*cmdstats_before.get(k).unwrap_or(&0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    commandstats.sort_by_key(|c| std::cmp::Reverse(c.1));
    let back = lock(&storm.back);
    let c = &storm.counts;
    let leave_ms = |us: u64| (us != 0).then(|| us.saturating_sub(t0) / 1000);
    let report = Report {
        scenario: "storm",
        kind: opts.kind,
        clients: rooms_n * opts.room,
        rooms: rooms_n,
        room: opts.room,
        nodes,
        connect_secs,
        moved,
        rooms_hit,
        whole_ms: whole_all,
        whole_p50_ms: pct(&whole_hist, 0.5),
        whole_p99_ms: pct(&whole_hist, 0.99),
        reachable_ms: reachable_all,
        reachable_p50_ms: pct(&reach_hist, 0.5),
        reachable_p99_ms: pct(&reach_hist, 0.99),
        rooms_not_whole,
        rooms_whole_at_end: whole_at_end,
        rooms_lost,
        back_p50_ms: back.value_at_quantile(0.5),
        back_p99_ms: back.value_at_quantile(0.99),
        back_max_ms: back.max(),
        reconnect_failures: c.reconnect_failures.load(Ordering::Relaxed),
        unexpected_closes: c.unexpected_closes.load(Ordering::Relaxed),
        resumed: c.resumed.load(Ordering::Relaxed),
        resume_refused: lock(&c.resume_refused).clone(),
        refusals: lock(&c.refusals).clone(),
        probes_retried: c.probes_retried.load(Ordering::Relaxed),
        first_leave_ms: leave_ms(c.first_leave_us.load(Ordering::Relaxed)),
        last_leave_ms: leave_ms(c.last_leave_us.load(Ordering::Relaxed)),
        leaves,
        joins,
        final_pairs_ok: final_ok,
        final_pairs,
        final_rooms_broken: broken,
        survivors_cpu_secs,
        survivors_cpu_share: survivors_cpu_secs.map(|s| s / cpu_window),
        redis_cpu_secs,
        redis_commands,
        redis_commands_per_s: redis_commands.map(|o| o as f64 / cpu_window),
        redis_commandstats: commandstats,
        loadgen_cpu_share: self0
            .zip(self_end)
            .map(|(a, b)| (b - a) / ((t_end - t0) as f64 / 1e6)),
        loadgen_max_gap_ms: max_gap / 1000,
        loadgen_max_gap_at_ms: max_gap_at / 1000,
        listen_overflows: overflows0
            .zip(overflows_end)
            .map(|(a, b)| b.saturating_sub(a)),
        timeline,
    };
    drop(back);
    lock(&tasks).abort_all();
    Ok(report)
}

/// Adds one member's heard counts to `told`: each expected id heard once, missing or
/// repeated; the rest unexpected unless `allowed`.
fn tally(
    told: &mut Told,
    heard: &HashMap<String, u32>,
    expected: &HashSet<String>,
    allowed: impl Fn(&String) -> bool,
) {
    told.expected += expected.len() as u64;
    for id in expected {
        match heard.get(id).copied().unwrap_or(0) {
            0 => told.missing += 1,
            1 => told.once += 1,
            n => told.repeated += u64::from(n - 1),
        }
    }
    for (id, &n) in heard {
        if expected.contains(id) {
            continue;
        }
        if allowed(id) {
            told.repeated += u64::from(n.saturating_sub(1));
        } else {
            told.unexpected += u64::from(n);
        }
    }
}
