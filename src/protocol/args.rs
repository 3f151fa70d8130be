//! Parsing and validation of event arguments: pure functions over the raw packet text,
//! fuzzed with proptest. Nothing here panics, whatever a client sends.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{PeerId, Refusal, RoomId};

/// An event packet's arguments, as raw JSON.
#[derive(Debug, Default)]
pub(crate) struct Packet<'a> {
    pub(crate) args: Vec<&'a RawValue>,
}

/// Splits the packet text, which socketioxide already parsed as a JSON array whose first
/// element is the event name, into the arguments after the name; the name itself is not
/// decoded, since socketioxide routed the packet by it. Anything else yields no arguments.
pub(crate) fn packet(text: &str) -> Packet<'_> {
    let mut de = serde_json::Deserializer::from_str(text);
    let args = de
        .deserialize_seq(AfterName)
        .and_then(|args| de.end().map(|()| args))
        .unwrap_or_default();
    Packet { args }
}

/// Visits a packet's array: skips the first element, keeps the others raw.
struct AfterName;

impl<'de> Visitor<'de> for AfterName {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event packet")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if seq.next_element::<IgnoredAny>()?.is_none() {
            return Ok(Vec::new());
        }
        // The relay's three elements after the name in one allocation.
        let mut args = Vec::with_capacity(3);
        while let Some(arg) = seq.next_element()? {
            args.push(arg);
        }
        Ok(args)
    }
}

/// The room id of a `join-room`: `None` when missing, not a string or malformed.
pub(crate) fn room_id(args: &[&RawValue]) -> Option<RoomId> {
    let id: String = serde_json::from_str(args.first()?.get()).ok()?;
    RoomId::parse(&id)
}

/// A well-formed signaling message: who it is for and the payload to pass on untouched.
#[derive(Debug)]
pub(crate) struct Signaled<'a> {
    pub(crate) target: PeerId,
    pub(crate) payload: &'a RawValue,
}

/// Checks the arguments of `rtc-offer`, `rtc-answer` or `ice-candidate` (`candidate` says
/// which shape the payload may have). Membership is checked by the caller.
pub(crate) fn signaled<'a>(
    args: &[&'a RawValue],
    candidate: bool,
    max_bytes: usize,
) -> Result<Signaled<'a>, Refusal> {
    let target: String = args
        .first()
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .ok_or(Refusal::MissingPeerId)?;
    let payload = *args.get(1).ok_or(Refusal::MissingPayload)?;
    let text = payload.get();
    if text.len() > max_bytes {
        return Err(Refusal::TooLarge { max: max_bytes });
    }
    // Raw values are trimmed, valid JSON, so the first byte tells the type.
    let first = text.bytes().next();
    if candidate {
        // An empty-string candidate marks the end of candidates; old clients send null.
        if !matches!(first, Some(b'{' | b'"' | b'n')) {
            return Err(Refusal::BadCandidate);
        }
    } else if first != Some(b'{') {
        return Err(Refusal::NotAnObject);
    }
    // A malformed id cannot name anyone in the sender's rooms; say no more than that.
    let target = PeerId::parse(&target).ok_or(Refusal::NotInYourRooms)?;
    Ok(Signaled { target, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn relay_of(text: &str, candidate: bool, max: usize) -> Result<(String, String), Refusal> {
        let args = packet(text).args;
        signaled(&args, candidate, max).map(|r| (r.target.to_string(), r.payload.get().to_owned()))
    }

    #[test]
    fn the_arguments_are_what_follows_the_event_name() {
        let args = packet(r#"["rtc\u002doffer", "a" ,{"b":[1]}]"#).args;
        let raw: Vec<&str> = args.iter().map(|a| a.get()).collect();
        assert_eq!(raw, [r#""a""#, r#"{"b":[1]}"#]);
        for none in ["[]", r#"["join-room"]"#, "{}", "not json", r#"["x",1"#] {
            assert!(packet(none).args.is_empty(), "{none}");
        }
    }

    #[test]
    fn a_valid_offer_passes_with_its_payload_untouched() {
        let target = PeerId::random();
        let packet = format!(r#"["rtc-offer","{target}",{{"type":"offer", "sdp":"v=0"}}]"#);
        let (t, payload) = relay_of(&packet, false, 1000).unwrap();
        assert_eq!(t, target.to_string());
        assert_eq!(payload, r#"{"type":"offer", "sdp":"v=0"}"#);
    }

    #[test]
    fn each_malformed_shape_gets_its_own_refusal() {
        let t = PeerId::random();
        let cases = [
            (r#"["rtc-offer"]"#.to_owned(), false, Refusal::MissingPeerId),
            (
                r#"["rtc-offer",1,{}]"#.to_owned(),
                false,
                Refusal::MissingPeerId,
            ),
            (
                format!(r#"["rtc-offer","{t}"]"#),
                false,
                Refusal::MissingPayload,
            ),
            (
                format!(r#"["rtc-offer","{t}","x"]"#),
                false,
                Refusal::NotAnObject,
            ),
            (
                format!(r#"["ice-candidate","{t}",1]"#),
                true,
                Refusal::BadCandidate,
            ),
            (
                format!(r#"["rtc-offer","{t}",{{"a":"{}"}}]"#, "x".repeat(50)),
                false,
                Refusal::TooLarge { max: 20 },
            ),
            (
                r#"["rtc-offer","short",{}]"#.to_owned(),
                false,
                Refusal::NotInYourRooms,
            ),
            ("not json".to_owned(), false, Refusal::MissingPeerId),
        ];
        for (packet, candidate, want) in cases {
            assert_eq!(
                relay_of(&packet, candidate, 20).unwrap_err(),
                want,
                "{packet}"
            );
        }
        for ok in [r#""""#, "null", r#"{"candidate":""}"#] {
            assert!(relay_of(&format!(r#"["ice-candidate","{t}",{ok}]"#), true, 100).is_ok());
        }
    }

    /// Any JSON value, nested a little.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
            "[A-Za-z0-9_-]{16}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::hash_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000)
        ))]

        /// Arbitrary text never panics and yields nothing out of bounds.
        #[test]
        fn arbitrary_text_is_handled(text in ".{0,200}", max in 0usize..64, candidate: bool) {
            let args = packet(&text).args;
            let _ = room_id(&args);
            if let Ok(r) = signaled(&args, candidate, max) {
                prop_assert!(r.payload.get().len() <= max);
            }
        }

        /// Arbitrary argument arrays: an accepted relay names a well-formed peer, carries
        /// exactly the second argument within the size cap, and has an allowed shape.
        #[test]
        fn accepted_relays_satisfy_every_rule(
            args in prop::collection::vec(json_value(), 0..5),
            max in 0usize..200,
            candidate: bool,
        ) {
            let mut all = vec![serde_json::Value::from("rtc-offer")];
            all.extend(args.iter().cloned());
            let text = serde_json::Value::Array(all).to_string();
            let raw = packet(&text).args;
            prop_assert_eq!(raw.len(), args.len());
            if let Some(room) = room_id(&raw) {
                prop_assert_eq!(Some(room.as_str()), args[0].as_str());
            }
            if let Ok(r) = signaled(&raw, candidate, max) {
                prop_assert_eq!(Some(r.target.as_str()), args[0].as_str());
                // Byte for byte the text the client sent for the second argument.
                prop_assert_eq!(r.payload.get(), args[1].to_string());
                let payload = &args[1];
                prop_assert!(r.payload.get().len() <= max);
                if candidate {
                    prop_assert!(payload.is_object() || payload.is_string() || payload.is_null());
                } else {
                    prop_assert!(payload.is_object());
                }
            }
        }

        /// Room ids are accepted exactly when they have the documented shape.
        #[test]
        fn room_ids_follow_the_documented_shape(id in ".{0,80}") {
            let shape = (4..=64).contains(&id.len())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            prop_assert_eq!(RoomId::parse(&id).is_some(), shape);
        }
    }
}
