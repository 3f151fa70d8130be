//! TURN and STUN: the time-limited credentials meshchat hands to browsers
//! (`credentials.rs`) and the built-in STUN server and TURN relay (`server.rs`).

mod credentials;
mod server;

pub use credentials::{TurnIssuer, credential};
pub(crate) use server::StunTurn;
