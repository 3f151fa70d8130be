//! Load generator for meshchat and any server of its room protocol (see docs/PROTOCOL.md):
//! Engine.IO v4 over websocket, spoken directly, for many clients from one process.
//!
//! - `client`: connect, events, room setup
//! - `idle`: clients held in rooms; server memory per client
//! - `polling`: a long-polling client that never upgrades, for the idle scenario
//! - `relay`: offers and candidates between room members; rate, delivery and latency
//! - `churn`: join-and-leave cycles per second
//! - `storm`: a node of a cluster killed under its clients; time until every room is whole

pub mod churn;
pub mod client;
pub mod idle;
pub mod polling;
pub mod relay;
pub mod storm;

use std::sync::OnceLock;
use std::time::Instant;

pub use client::Target;

/// Microseconds since the first call: the clock of send timestamps, which are read back
/// by this same process.
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}
