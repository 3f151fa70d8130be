//! Smoke test: every scenario of the load generator runs for a few seconds against the
//! real server (in this process, on loopback) and gets its messages through.

use std::net::SocketAddr;

use clap::Parser;
use loadgen::{Target, churn, idle, relay};
use meshchat::Config;
use tokio::sync::oneshot;

/// Starts meshchat on 127.0.0.1:0 with the limits that would throttle a load test lifted,
/// as `bench/run.sh` runs it.
async fn start_server() -> (SocketAddr, oneshot::Sender<()>) {
    let config = Config::parse_from([
        "meshchat",
        "--connect-rate",
        "0",
        "--signal-rate",
        "0",
        "--join-rate",
        "0",
        "--stun-port",
        "0",
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(meshchat::run(listener, config, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn relay_opts(room: usize) -> relay::RelayOpts {
    Wrap::<relay::RelayOpts>::parse_from([
        "relay",
        "--room",
        &room.to_string(),
        "--clients",
        "16",
        "--fixed-rate",
        "400",
        "--step-secs",
        "2",
    ])
    .opts
}

#[derive(Parser)]
struct Wrap<T: clap::Args> {
    #[command(flatten)]
    opts: T,
}

/// Relays in rooms of 2 and 8 arrive, all of them, with their latency measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_delivers_between_room_members() {
    let (addr, _stop) = start_server().await;
    let target = Target::new(addr, 4);
    for room in [2, 8] {
        let report = relay::run(&target, &relay_opts(room)).await.unwrap();
        let step = &report.steps[0];
        assert!(step.delivered > 0, "nothing delivered in rooms of {room}");
        assert!(
            step.ratio >= 0.99,
            "rooms of {room}: {} of {} delivered",
            step.delivered,
            step.sent
        );
        assert!(step.p50_us > 0);
        assert_eq!(report.closed, 0, "clients were disconnected");
    }
}

/// Churn cycles complete: joins and leaves are announced to the member that stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_cycles_complete() {
    let (addr, _stop) = start_server().await;
    let opts = Wrap::<churn::ChurnOpts>::parse_from(["churn", "--lanes", "4", "--secs", "2"]).opts;
    let report = churn::run(&Target::new(addr, 4), &opts).await.unwrap();
    assert!(report.cycles > 0, "no churn cycle completed");
    assert_eq!(report.errors, 0);
}

/// Idle clients stay connected and the server's memory is read from /proc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_stay_connected() {
    let (addr, _stop) = start_server().await;
    let pid = std::process::id().to_string();
    let opts = Wrap::<idle::IdleOpts>::parse_from([
        "idle",
        "--clients",
        "42",
        "--room",
        "4",
        "--hold-secs",
        "1",
        "--server-pid",
        &pid,
    ])
    .opts;
    let report = idle::run(&Target::new(addr, 4), &opts).await.unwrap();
    assert_eq!(report.clients, 42);
    assert_eq!(report.alive, 42);
    assert!(report.rss_after_kib.is_some_and(|kib| kib > 0));
}
