//! The relay scenario: rooms of K members, each sending ~1 KB offers and candidates to its
//! peers at a fixed total rate, stepped up to the highest rate the server sustains.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Target, Ws, form_room};
use crate::now_us;

#[derive(Debug, Clone, clap::Args)]
pub struct RelayOpts {
    /// Members per room.
    #[arg(long, default_value_t = 2)]
    pub room: usize,
    /// Clients in all (rounded down to whole rooms).
    #[arg(long, default_value_t = 128)]
    pub clients: usize,
    /// First offered rate, in messages per second over all clients.
    #[arg(long, default_value_t = 2000.0)]
    pub start_rate: f64,
    /// Each passing step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// Most steps before the search stops, passing or not.
    #[arg(long, default_value_t = 14)]
    pub max_steps: usize,
    /// Halvings of the gap between the last passing and the first failing rate.
    #[arg(long, default_value_t = 2)]
    pub refine: usize,
    /// Seconds each step sends for.
    #[arg(long, default_value_t = 5.0)]
    pub step_secs: f64,
    /// Bytes of each payload.
    #[arg(long, default_value_t = 1000)]
    pub payload: usize,
    /// Run one step at this rate instead of searching.
    #[arg(long)]
    pub fixed_rate: Option<f64>,
    /// Times a failing step of the search is repeated before the rate counts as failed, so
    /// that one stall of a busy machine does not end the search.
    #[arg(long, default_value_t = 1)]
    pub retries: usize,
    /// The server's process id, to read the CPU time it spends per delivered message;
    /// repeat it for every process of a cluster (nodes and Redis), whose times add up.
    #[arg(long)]
    pub server_pid: Vec<u32>,
}

/// Delivery ratio a step needs to pass.
const MIN_DELIVERED: f64 = 0.999;
/// 99th percentile latency a step must stay under to pass, in microseconds.
const MAX_P99_US: u64 = 50_000;
/// How long after a step's last send its messages may still arrive.
const DRAIN: Duration = Duration::from_secs(2);
/// Before a step: how long no message may arrive for the server to count as drained, and
/// the longest wait for that.
const QUIET: Duration = Duration::from_millis(250);
const SETTLE_MAX: Duration = Duration::from_secs(30);

/// What one step measured.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    /// Messages the load generator handed to its clients per second.
    pub offered_per_s: f64,
    pub sent: u64,
    pub delivered: u64,
    pub delivered_per_s: f64,
    pub ratio: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Share of one core the load generator used while sending: near 1, the step
    /// measured the load generator rather than the server.
    pub loadgen_cpu: Option<f64>,
    /// Server CPU time (user + system, all threads) from the step's first send until its
    /// last message arrived, per delivered message, in microseconds (with `--server-pid`).
    pub server_cpu_us_per_msg: Option<f64>,
    /// Share of one core the server used over the same window.
    pub server_cpu: Option<f64>,
    pub pass: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub room: usize,
    pub clients: usize,
    /// The one rate of a run with `--fixed-rate`; none for a search.
    pub fixed_rate: Option<f64>,
    /// Highest rate that passed (messages/s), 0 if none did.
    pub best_rate: f64,
    pub best: Option<Step>,
    /// A step at half the best rate, for its latency.
    pub half: Option<Step>,
    pub steps: Vec<Step>,
    /// Client connections that closed during the run.
    pub closed: usize,
}

/// Counters of the running step, shared by every member task.
struct Meter {
    step_start_us: AtomicU64,
    delivered: AtomicU64,
    /// Every message that arrived, of any step.
    arrived: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    closed: AtomicUsize,
}

impl Meter {
    fn record(&self, sent_us: u64) {
        self.arrived.fetch_add(1, Ordering::Relaxed);
        if sent_us < self.step_start_us.load(Ordering::Relaxed) {
            return; // a straggler of an earlier step
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let latency = now_us().saturating_sub(sent_us).max(1);
        let mut hist = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = hist.record(latency);
    }
}

/// The payload a member sends, minus its timestamp: a realistic ICE candidate line padded
/// to the wanted size, or an SDP offer body.
fn bodies(size: usize) -> [Arc<str>; 2] {
    let pad = |head: &str| -> String {
        let mut s = head.to_owned();
        while s.len() < size {
            s.push_str(" a=x-pad:0123456789abcdef");
        }
        s.truncate(size);
        s
    };
    let candidate = pad(
        "candidate:842163049 1 udp 1677729535 192.0.2.7 55123 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag 6bO4 network-cost 999",
    );
    let sdp = pad(
        "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\\r\\n",
    );
    [
        format!(r#","candidate":"{candidate}","sdpMid":"0","sdpMLineIndex":0}}]"#).into(),
        format!(r#","type":"offer","sdp":"{sdp}"}}]"#).into(),
    ]
}

/// One member: sends a message to its next peer for every timestamp it is handed, and
/// records the latency of every message it receives.
async fn member(
    mut ws: Ws,
    peers: Vec<String>,
    mut sends: mpsc::UnboundedReceiver<u64>,
    meter: Arc<Meter>,
    bodies: [Arc<str>; 2],
) {
    let heads: Vec<[String; 2]> = peers
        .iter()
        .map(|p| {
            [
                format!(r#"42["ice-candidate","{p}",{{"ts":"#),
                format!(r#"42["rtc-offer","{p}",{{"ts":"#),
            ]
        })
        .collect();
    let mut n = 0usize;
    let frame = |n: usize, ts: u64| {
        // Every peer in turn; offers and candidates alternate each round.
        let kind = (n / heads.len()) % 2;
        let (head, body) = (&heads[n % heads.len()][kind], &bodies[kind]);
        let mut f = String::with_capacity(head.len() + body.len() + 20);
        f.push_str(head);
        f.push_str(&ts.to_string());
        f.push_str(body);
        Message::text(f)
    };
    loop {
        tokio::select! {
            ts = sends.recv() => {
                let Some(ts) = ts else { break };
                let mut ok = ws.feed(frame(n, ts)).await.is_ok();
                n += 1;
                while ok && let Ok(ts) = sends.try_recv() {
                    ok = ws.feed(frame(n, ts)).await.is_ok();
                    n += 1;
                }
                if !ok || ws.flush().await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if text == "2" {
                        if ws.send(Message::text("3")).await.is_err() {
                            break;
                        }
                    } else if let Some(ts) = sent_at(text) {
                        meter.record(ts);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    if !sends.is_closed() {
        meter.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// CPU time a process has used (user + system, all its threads), from `/proc/<pid>/stat`;
/// `pid` "self" is this process.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux the benchmark runs on.
    Some(ticks as f64 / 100.0)
}

/// The send timestamp of a relayed message, found without parsing the whole frame.
fn sent_at(frame: &str) -> Option<u64> {
    if !frame.starts_with("42") {
        return None;
    }
    let at = frame.find("{\"ts\":")? + 6;
    let digits = &frame[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

pub async fn run(target: &Target, opts: &RelayOpts) -> Result<Report> {
    if opts.room < 2 {
        bail!("relay needs rooms of at least 2");
    }
    let rooms = (opts.clients / opts.room).max(1);
    let meter = Arc::new(Meter {
        step_start_us: AtomicU64::new(u64::MAX),
        delivered: AtomicU64::new(0),
        arrived: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        closed: AtomicUsize::new(0),
    });
    let bodies = bodies(opts.payload);
    let mut senders = Vec::with_capacity(rooms * opts.room);
    for _ in 0..rooms {
        let (_, members) = form_room(target, opts.room).await?;
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        for member_ in members {
            let peers = ids.iter().filter(|i| **i != member_.id).cloned().collect();
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            tokio::spawn(member(member_.ws, peers, rx, meter.clone(), bodies.clone()));
        }
    }
    eprintln!(
        "relay: {} clients in {rooms} rooms of {}",
        senders.len(),
        opts.room
    );

    let mut steps = Vec::new();
    let mut best: Option<Step> = None;
    let step = |rate: f64| run_step(rate, opts, &senders, &meter);
    if let Some(rate) = opts.fixed_rate {
        let s = step(rate).await;
        if s.pass {
            best = Some(s.clone());
        }
        steps.push(s);
    } else {
        let mut rate = opts.start_rate;
        let mut failed = None;
        // Up by `factor` while steps pass; if the first fails, down by halves until one
        // passes. Either way the result lies between a passing and a failing rate.
        for _ in 0..opts.max_steps {
            let s = search_step(rate, opts, &senders, &meter, &mut steps).await;
            if s.pass {
                best = Some(s);
                if failed.is_some() {
                    break;
                }
                rate *= opts.factor;
            } else {
                failed = Some(rate);
                if best.is_some() || rate < opts.start_rate / 32.0 {
                    break;
                }
                rate /= 2.0;
            }
        }
        if let (Some(mut hi), Some(mut lo)) = (failed, best.as_ref().map(|b| b.rate)) {
            for _ in 0..opts.refine {
                let mid = (lo * hi).sqrt().round();
                let s = search_step(mid, opts, &senders, &meter, &mut steps).await;
                if s.pass {
                    lo = mid;
                    best = Some(s);
                } else {
                    hi = mid;
                }
            }
        }
    }
    let half = match &best {
        Some(b) if opts.fixed_rate.is_none() => {
            let s = step((b.rate / 2.0).round()).await;
            steps.push(s.clone());
            Some(s)
        }
        _ => None,
    };
    drop(senders);
    Ok(Report {
        scenario: "relay",
        room: opts.room,
        clients: rooms * opts.room,
        fixed_rate: opts.fixed_rate,
        best_rate: best.as_ref().map_or(0.0, |b| b.rate),
        best,
        half,
        steps,
        closed: meter.closed.load(Ordering::Relaxed),
    })
}

/// A step of the search: the rate passes if any of `1 + retries` tries passes; every try
/// is kept in `steps`.
async fn search_step(
    rate: f64,
    opts: &RelayOpts,
    senders: &[mpsc::UnboundedSender<u64>],
    meter: &Meter,
    steps: &mut Vec<Step>,
) -> Step {
    let mut tries = 0;
    loop {
        let s = run_step(rate, opts, senders, meter).await;
        steps.push(s.clone());
        tries += 1;
        if s.pass || tries > opts.retries {
            return s;
        }
    }
}

/// Waits until messages stop arriving: after an overloaded step the server may still hold
/// a backlog, which would queue ahead of the next step's messages and charge it their wait.
async fn settle(meter: &Meter) {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut seen = meter.arrived.load(Ordering::Relaxed);
    while Instant::now() < deadline {
        tokio::time::sleep(QUIET).await;
        let now = meter.arrived.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
    eprintln!("  still receiving after {SETTLE_MAX:?}: measuring anyway");
}

/// Sends at `rate` messages/s for `secs`, spread round-robin over the members, then waits
/// for stragglers and measures.
async fn run_step(
    rate: f64,
    opts: &RelayOpts,
    senders: &[mpsc::UnboundedSender<u64>],
    meter: &Meter,
) -> Step {
    let secs = opts.step_secs;
    let server_cpu_secs = || -> Option<f64> {
        if opts.server_pid.is_empty() {
            return None;
        }
        opts.server_pid
            .iter()
            .map(|p| cpu_secs(&p.to_string()))
            .sum()
    };
    settle(meter).await;
    meter.delivered.store(0, Ordering::Relaxed);
    meter
        .latency
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .reset();
    let start = Instant::now();
    let cpu_start = cpu_secs("self");
    let server_cpu_start = server_cpu_secs();
    meter.step_start_us.store(now_us(), Ordering::Relaxed);
    let mut sent = 0u64;
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= secs {
            break;
        }
        let due = (rate * elapsed) as u64;
        // Stamped when handed over, so the latency includes any queueing in our own
        // writers too.
        let ts = now_us();
        while sent < due {
            let _ = senders[next].send(ts);
            next = (next + 1) % senders.len();
            sent += 1;
        }
    }
    let sending = start.elapsed().as_secs_f64();
    let loadgen_cpu = cpu_start
        .zip(cpu_secs("self"))
        .map(|(a, b)| (b - a) / sending);
    let drain_end = Instant::now() + DRAIN;
    while meter.delivered.load(Ordering::Relaxed) < sent && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = meter.delivered.load(Ordering::Relaxed);
    let window = start.elapsed().as_secs_f64();
    let server_cpu = server_cpu_start.zip(server_cpu_secs()).map(|(a, b)| b - a);
    let hist = meter.latency.lock().unwrap_or_else(|p| p.into_inner());
    let ratio = if sent == 0 {
        0.0
    } else {
        delivered as f64 / sent as f64
    };
    let p99 = hist.value_at_quantile(0.99);
    let step = Step {
        rate,
        offered_per_s: sent as f64 / sending,
        sent,
        delivered,
        delivered_per_s: delivered as f64 / sending,
        ratio,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: p99,
        p999_us: hist.value_at_quantile(0.999),
        max_us: hist.max(),
        loadgen_cpu,
        server_cpu_us_per_msg: server_cpu
            .filter(|_| delivered > 0)
            .map(|c| c * 1e6 / delivered as f64),
        server_cpu: server_cpu.map(|c| c / window),
        pass: sent > 0 && ratio >= MIN_DELIVERED && p99 < MAX_P99_US,
    };
    eprintln!(
        "  rate {:>8.0}/s: delivered {:>8.0}/s ({:.4}), p50 {} us, p99 {} us, p99.9 {} us, loadgen cpu {:.2}, server {:.1} us/msg{}",
        rate,
        step.delivered_per_s,
        ratio,
        step.p50_us,
        step.p99_us,
        step.p999_us,
        loadgen_cpu.unwrap_or(f64::NAN),
        step.server_cpu_us_per_msg.unwrap_or(f64::NAN),
        if step.pass { "" } else { "  FAIL" }
    );
    step
}
