//! Why the server refuses a client request, as sent back to that client.

use serde_json::{Value, json};

/// A refused request. The text is what the client sees: it says what was wrong without
/// revealing anything about other rooms or peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the first argument must be the peer id string")]
    MissingPeerId,
    #[error("the second argument must be the signaling payload")]
    MissingPayload,
    #[error("an offer or answer must be an object")]
    NotAnObject,
    #[error("an ICE candidate must be an object, a string or null")]
    BadCandidate,
    #[error("the payload is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("binary attachments are not accepted")]
    Binary,
    #[error("that peer is not in any of your rooms")]
    NotInYourRooms,
    #[error("you cannot signal yourself")]
    ToSelf,
    #[error("the peer could not be reached")]
    Undeliverable,
    #[error("unknown event")]
    UnknownEvent,
    #[error("the room is full")]
    RoomFull,
    #[error("you are in too many rooms")]
    TooManyRooms,
    #[error("too many requests: slow down")]
    RateLimited,
    #[error("the server is briefly unavailable: try again")]
    Unavailable,
}

impl Refusal {
    /// A short stable name, for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingPeerId => "missing_peer_id",
            Self::MissingPayload => "missing_payload",
            Self::NotAnObject => "not_an_object",
            Self::BadCandidate => "bad_candidate",
            Self::TooLarge { .. } => "too_large",
            Self::Binary => "binary",
            Self::NotInYourRooms => "not_in_your_rooms",
            Self::ToSelf => "to_self",
            Self::Undeliverable => "undeliverable",
            Self::UnknownEvent => "unknown_event",
            Self::RoomFull => "room_full",
            Self::TooManyRooms => "too_many_rooms",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }

    /// The acknowledgement body: `{"error": "...", "reason": "..."}`, the text for people
    /// and the stable name for programs (clients match on `reason`, never on the text).
    pub fn to_ack(&self) -> Value {
        json!({ "error": self.to_string(), "reason": self.reason() })
    }
}
