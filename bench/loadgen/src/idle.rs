//! The idle scenario: many clients in rooms, held through heartbeats, and the server's
//! resident memory per client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Target, Ws, form_room};
use crate::polling::{self, Poller};

/// How idle clients stay connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A websocket from the start.
    Websocket,
    /// HTTP long-polling, never upgraded: one pending GET per client.
    Polling,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdleOpts {
    /// Clients to connect.
    #[arg(long, default_value_t = 19_000)]
    pub clients: usize,
    /// Members per room.
    #[arg(long, default_value_t = 4)]
    pub room: usize,
    /// Seconds to hold every client after the last one joined; at least one heartbeat
    /// interval, so every client has answered a ping.
    #[arg(long, default_value_t = 30.0)]
    pub hold_secs: f64,
    /// Rooms being set up at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The server's process id, to read its resident memory (VmRSS) from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub transport: Transport,
    pub room: usize,
    pub clients: usize,
    pub connect_secs: f64,
    /// Clients still connected at the end of the hold.
    pub alive: usize,
    /// Clients that answered at least one ping during the hold.
    pub pinged: usize,
    pub rss_before_kib: Option<u64>,
    pub rss_connected_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// (RSS after the hold - RSS before connecting) / clients.
    pub rss_per_client_kib: Option<f64>,
}

/// Resident memory of a process, in KiB, from `/proc/<pid>/status`.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Counts {
    alive: AtomicUsize,
    pinged: AtomicUsize,
}

/// A client of either transport, in a room.
enum Idler {
    Websocket(Box<Ws>),
    Polling(Poller),
}

async fn form(target: Target, size: usize, transport: Transport) -> Result<Vec<Idler>> {
    Ok(match transport {
        Transport::Websocket => form_room(&target, size)
            .await?
            .1
            .into_iter()
            .map(|m| Idler::Websocket(Box::new(m.ws)))
            .collect(),
        Transport::Polling => polling::form_room(&target, size)
            .await?
            .into_iter()
            .map(Idler::Polling)
            .collect(),
    })
}

/// Answers heartbeats and ignores everything else until the connection closes.
async fn hold(idler: Idler, counts: Arc<Counts>, hold_start: Arc<tokio::sync::OnceCell<Instant>>) {
    counts.alive.fetch_add(1, Ordering::Relaxed);
    let mut pinged = false;
    let on_ping = || {
        if !pinged && hold_start.get().is_some() {
            pinged = true;
            counts.pinged.fetch_add(1, Ordering::Relaxed);
        }
    };
    match idler {
        Idler::Websocket(ws) => hold_websocket(*ws, on_ping).await,
        Idler::Polling(poller) => poller.hold(on_ping).await,
    }
    counts.alive.fetch_sub(1, Ordering::Relaxed);
}

async fn hold_websocket(mut ws: Ws, mut on_ping: impl FnMut()) {
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(text) = msg
            && text.as_str() == "2"
        {
            if ws.send(Message::text("3")).await.is_err() {
                break;
            }
            on_ping();
        }
    }
}

pub async fn run(target: &Target, opts: &IdleOpts) -> Result<Report> {
    if opts.room == 0 || opts.clients == 0 {
        bail!("idle needs clients and rooms of at least 1");
    }
    let rss = || opts.server_pid.and_then(vm_rss_kib);
    let rss_before_kib = rss();
    let counts = Arc::new(Counts::default());
    let hold_start = Arc::new(tokio::sync::OnceCell::new());
    let mut holders = JoinSet::new();
    let started = Instant::now();
    let mut sizes: Vec<usize> = vec![opts.room; opts.clients / opts.room];
    if !opts.clients.is_multiple_of(opts.room) {
        sizes.push(opts.clients % opts.room);
    }
    let mut forming = JoinSet::new();
    let mut sizes = sizes.into_iter();
    let mut clients = 0;
    loop {
        while forming.len() < opts.concurrency
            && let Some(size) = sizes.next()
        {
            forming.spawn(form(target.clone(), size, opts.transport));
        }
        let Some(done) = forming.join_next().await else {
            break;
        };
        for member in done?? {
            clients += 1;
            holders.spawn(hold(member, counts.clone(), hold_start.clone()));
        }
        if clients % 1000 < opts.room {
            eprintln!("idle: {clients} clients connected");
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let rss_connected_kib = rss();
    eprintln!(
        "idle: {clients} clients in {connect_secs:.1} s; holding {} s",
        opts.hold_secs
    );
    let _ = hold_start.set(Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(opts.hold_secs)).await;
    let rss_after_kib = rss();
    let report = Report {
        scenario: "idle",
        transport: opts.transport,
        room: opts.room,
        clients,
        connect_secs,
        alive: counts.alive.load(Ordering::Relaxed),
        pinged: counts.pinged.load(Ordering::Relaxed),
        rss_before_kib,
        rss_connected_kib,
        rss_after_kib,
        rss_per_client_kib: rss_before_kib
            .zip(rss_after_kib)
            .map(|(b, a)| a.saturating_sub(b) as f64 / clients as f64),
    };
    holders.shutdown().await;
    Ok(report)
}
