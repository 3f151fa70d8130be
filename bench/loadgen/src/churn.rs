//! The churn scenario: a client connects, joins a room, is announced, leaves and is
//! announced gone; cycles per second over many rooms at once.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::client::{Target, emit, expect_event, first_str};

#[derive(Debug, Clone, clap::Args)]
pub struct ChurnOpts {
    /// Rooms churning at once, each with one member that stays.
    #[arg(long, default_value_t = 64)]
    pub lanes: usize,
    /// Seconds to churn for.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub lanes: usize,
    pub secs: f64,
    pub cycles: u64,
    pub cycles_per_s: f64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

struct Meter {
    cycles: AtomicU64,
    errors: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

/// One room: its staying member watches newcomers come and go, one after another.
async fn lane(target: Target, deadline: Instant, meter: Arc<Meter>) -> Result<()> {
    let mut stay = target.connect().await?;
    emit(&mut stay, "create-room", &[]).await?;
    let room = first_str(&expect_event(&mut stay, "room-created").await?)?;
    while Instant::now() < deadline {
        let start = Instant::now();
        let cycle = async {
            let mut guest = target.connect().await?;
            emit(&mut guest, "join-room", &[Value::from(room.as_str())]).await?;
            let id = first_str(&expect_event(&mut stay, "new-user-joined").await?)?;
            let _ = guest.close(None).await;
            drop(guest);
            while first_str(&expect_event(&mut stay, "user-disconnected").await?)? != id {}
            anyhow::Ok(())
        };
        match cycle.await {
            Ok(()) => {
                meter.cycles.fetch_add(1, Ordering::Relaxed);
                let us = start.elapsed().as_micros() as u64;
                let _ = meter
                    .latency
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(us.max(1));
            }
            Err(e) => {
                // The staying member may have missed an event: start the lane over.
                meter.errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    Ok(())
}

pub async fn run(target: &Target, opts: &ChurnOpts) -> Result<Report> {
    let meter = Arc::new(Meter {
        cycles: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.secs);
    let mut lanes = JoinSet::new();
    for _ in 0..opts.lanes {
        lanes.spawn(lane(target.clone(), deadline, meter.clone()));
    }
    while let Some(done) = lanes.join_next().await {
        if let Ok(Err(e)) = done {
            eprintln!("churn: a lane stopped: {e:#}");
            if Instant::now() < deadline {
                lanes.spawn(lane(target.clone(), deadline, meter.clone()));
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cycles = meter.cycles.load(Ordering::Relaxed);
    let hist = meter.latency.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Report {
        scenario: "churn",
        lanes: opts.lanes,
        secs,
        cycles,
        cycles_per_s: cycles as f64 / secs,
        errors: meter.errors.load(Ordering::Relaxed),
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    })
}
