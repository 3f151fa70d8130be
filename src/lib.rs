//! meshchat: a Socket.IO signaling server for room-based WebRTC mesh chat.
//!
//! Modules from the bottom up; each imports only modules listed before it:
//! - `error` (internal failures), [`ice`] (the ICE servers browsers get), `once` (emits
//!   that may be retried without being received twice) and `protocol` (the wire format:
//!   event names, ids, argument parsing, refusals).
//! - [`config`]: flags and environment variables.
//! - `limits`: rate limits; `membership`: the only door to rooms, in memory or in Redis.
//! - `metrics`: what the server counts, and `GET /metrics`; `trim`: gives freed heap back
//!   to the system after the crowd shrinks.
//! - [`turn`]: TURN credentials, and the built-in STUN server and TURN relay.
//! - `signaling`: one handler per protocol event; `http`: the gate, health, RTC config and
//!   web client routes.
//! - `cluster`: one node of several, joined through Redis.
//! - [`run`]: wires it all and serves until shutdown.

mod error;
pub mod ice;
mod once;
mod protocol;

pub mod config;

mod limits;
mod membership;

mod metrics;
mod trim;

pub mod turn;

mod http;
mod signaling;

mod cluster;

mod server;

pub use config::Config;
pub use server::run;
