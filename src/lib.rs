//! meshchat: a Socket.IO signaling server for room-based WebRTC mesh chat.
//!
//! Modules from the bottom up; each imports only modules listed before it:
//! - `error` (internal failures), [`ice`] (the ICE servers browsers get), `metrics` (what
//!   the server counts, as Prometheus text), `once` (emits that may be retried without
//!   being received twice), `protocol` (the wire format: event names, ids, argument
//!   parsing, refusals) and `redis_conn` (commands to one Redis or a Redis Cluster).
//! - [`config`]: flags and environment variables, in one group per concern; `trim`: gives
//!   freed heap back to the system after the crowd shrinks.
//! - `limits`: rate limits; `membership`: the only door to rooms, in memory or in Redis;
//!   `resume`: the tokens that give a reconnecting client its peer id and rooms back.
//! - [`turn`]: TURN credentials, and the built-in STUN server and TURN relay.
//! - `signaling`: one handler per protocol event; `http`: every HTTP route (health,
//!   metrics, RTC config, web client) and the layers in front of Engine.IO.
//! - `cluster`: one node of several, joined through Redis.
//! - [`run`]: wires it all and serves until shutdown.

mod error;
pub mod ice;
mod metrics;
mod once;
mod protocol;
mod redis_conn;

pub mod config;
mod trim;

mod limits;
mod membership;
mod resume;

pub mod turn;

mod http;
mod signaling;

mod cluster;

mod server;

pub use config::Config;
pub use server::run;
