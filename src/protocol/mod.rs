//! The wire format of `docs/PROTOCOL.md`, with no state: event names, ids, argument parsing,
//! and the answers and refusals sent back to clients.

mod answer;
pub(crate) mod args;
pub(crate) mod ids;
mod refusal;

pub(crate) use answer::{Entered, Relayed, ResumeRefused, Resumed};
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
    /// Extension: the resume token of the `CONNECT` was accepted.
    pub(crate) const RESUMED: &str = "resumed";
    /// Extension: the resume token of the `CONNECT` was refused; the client is a new peer.
    pub(crate) const RESUME_REFUSED: &str = "resume-refused";
}

/// Why a resume token was refused: the stable `reason` of `resume-refused`.
pub(crate) mod resume {
    /// Not a token this server (or cluster) made: malformed, or its MAC does not match.
    pub(crate) const INVALID: &str = "resume_invalid";
    /// A genuine token past its expiry.
    pub(crate) const EXPIRED: &str = "resume_expired";
    /// The peer is still connected through another socket.
    pub(crate) const IN_USE: &str = "resume_in_use";
    /// The peer's rooms were already left (and told): the grace window passed.
    pub(crate) const GONE: &str = "resume_gone";
    /// Resume is off (`RESUME_GRACE_MS=0`), or its key or Redis is not available yet.
    pub(crate) const UNAVAILABLE: &str = "resume_unavailable";

    /// The text for people that goes with each reason.
    pub(crate) fn text(reason: &str) -> &'static str {
        match reason {
            INVALID => "the resume token is not valid",
            EXPIRED => "the resume token has expired",
            IN_USE => "that peer is still connected",
            GONE => "that peer has already left its rooms",
            _ => "resuming is not available: try again later",
        }
    }
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
