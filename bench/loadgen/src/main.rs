//! The `loadgen` command: runs one scenario against a server and prints its figures as
//! one line of JSON on stdout (progress goes to stderr).

use std::net::SocketAddr;

use anyhow::Result;
use clap::{Parser, Subcommand};
use loadgen::{Target, churn, idle, relay, storm};

/// Load generator for servers of the meshchat room protocol.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Server address; repeat it for the nodes of a cluster, which get connections in turn.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: Vec<SocketAddr>,
    /// Local addresses (127.0.0.2 and up) to spread connections over, for a loopback server.
    #[arg(long, default_value_t = 50)]
    sources: u8,
    /// Runtime worker threads (1: a single-threaded runtime, for a pinned load generator).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Clients held in rooms through a heartbeat; server memory per client.
    Idle(idle::IdleOpts),
    /// Offers and candidates between room members, stepped up to the highest sustained rate.
    Relay(relay::RelayOpts),
    /// Connect, join, be announced, leave, be announced gone: cycles per second.
    Churn(churn::ChurnOpts),
    /// A cluster's node killed under its clients: time until every room is whole again.
    Storm(storm::StormOpts),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One connection is one file descriptor: take all the process may have.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    let target = Target::spread(&cli.addr, cli.sources);
    let report = runtime.block_on(async {
        anyhow::Ok(match &cli.scenario {
            Scenario::Idle(o) => serde_json::to_string(&idle::run(&target, o).await?)?,
            Scenario::Relay(o) => serde_json::to_string(&relay::run(&target, o).await?)?,
            Scenario::Churn(o) => serde_json::to_string(&churn::run(&target, o).await?)?,
            Scenario::Storm(o) => serde_json::to_string(&storm::run(&target, o).await?)?,
        })
    })?;
    println!("{report}");
    Ok(())
}
