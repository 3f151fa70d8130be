//! The wire format of `docs/PROTOCOL.md`, with no state: event names, ids, argument parsing,
//! and the answers and refusals sent back to clients.

mod answer;
pub(crate) mod args;
pub(crate) mod ids;
mod refusal;

pub(crate) use answer::{Entered, Relayed};
pub(crate) use ids::{PeerId, RoomId};
pub(crate) use refusal::Refusal;

/// The protocol's event names.
pub(crate) mod event {
    pub(crate) const CREATE_ROOM: &str = "create-room";
    pub(crate) const JOIN_ROOM: &str = "join-room";
    pub(crate) const RTC_OFFER: &str = "rtc-offer";
    pub(crate) const RTC_ANSWER: &str = "rtc-answer";
    pub(crate) const ICE_CANDIDATE: &str = "ice-candidate";
    pub(crate) const ROOM_CREATED: &str = "room-created";
    pub(crate) const NEW_USER_JOINED: &str = "new-user-joined";
    pub(crate) const USER_DISCONNECTED: &str = "user-disconnected";
    /// Extension: tells a client that sent no ack callback why a request was refused.
    pub(crate) const REQUEST_ERROR: &str = "request-error";
    /// Extension: `join-room` of a room that has the most members allowed.
    pub(crate) const ROOM_FULL: &str = "room-full";
}

/// The three signaling events the server passes from one peer to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Offer,
    Answer,
    Candidate,
}

impl Signal {
    pub(crate) const ALL: [Self; 3] = [Self::Offer, Self::Answer, Self::Candidate];

    pub(crate) fn event(self) -> &'static str {
        match self {
            Self::Offer => event::RTC_OFFER,
            Self::Answer => event::RTC_ANSWER,
            Self::Candidate => event::ICE_CANDIDATE,
        }
    }
}
