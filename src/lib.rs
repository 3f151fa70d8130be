//! meshchat: a Socket.IO signaling server for room-based WebRTC mesh chat.
//!
//! - [`config`]: flags and environment variables.
//! - [`server`]: the axum app (HTTP routes plus the Socket.IO layer) and its run loop.
//! - [`signaling`]: one handler per protocol event: rooms, relays, leaves.
//! - [`args`]: parsing and validation of event arguments.
//! - [`rooms`]: room and peer ids and the membership table.
//! - [`membership`]: the membership backend: that table, or Redis in cluster mode.
//! - [`cluster`]: several nodes joined through Redis: adapter driver, shared membership,
//!   heartbeats.
//! - [`gate`]: origin, connection cap and connection rate checks before Socket.IO.
//! - [`limits`]: rate limits per connection and per client IP.
//! - [`order`]: keeps each socket's handlers in arrival order.
//! - [`error`]: refusals sent back to clients.
//! - [`turn`]: time-limited TURN credentials from a shared secret.
//! - [`metrics`]: `GET /metrics` for Prometheus.
//! - [`affinity`]: keeps a Socket.IO session's requests on its fly.io machine.
//! - [`web`]: the embedded web client.
//! - [`ice`]: the ICE servers handed to the web client.

pub mod affinity;
pub mod args;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gate;
pub mod ice;
pub mod limits;
pub mod membership;
pub mod metrics;
pub mod order;
pub mod rooms;
pub mod server;
pub mod signaling;
pub mod turn;
pub mod web;

pub use config::Config;
pub use server::{app, run, serve};
