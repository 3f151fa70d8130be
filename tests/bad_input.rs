//! Malformed and misaddressed requests: relays with bad arguments, to the wrong peer or to
//! oneself, unknown events and broken frames are refused, and harm nobody else.

mod common;

use common::{Client, Incoming, Server, pair, peer_id_seen_by};
use serde_json::{Value, json};

/// Two rooms on one server, every peer id known: `a` and `b` share one, `c` and `d` the
/// other. `a` sends the requests under test; the other three are bystanders.
struct Scene {
    a: Client,
    b: Client,
    c: Client,
    d: Client,
    a_peer: String,
    b_peer: String,
    c_peer: String,
    d_peer: String,
    _server: Server,
}

impl Scene {
    async fn new() -> Self {
        let server = Server::start().await;
        let (a, mut b, _, b_peer) = pair(&server).await;
        let a_peer = peer_id_seen_by(&a, &mut b, &b_peer).await;
        let (c, mut d, _, d_peer) = pair(&server).await;
        let c_peer = peer_id_seen_by(&c, &mut d, &d_peer).await;
        Self {
            a,
            b,
            c,
            d,
            a_peer,
            b_peer,
            c_peer,
            d_peer,
            _server: server,
        }
    }

    /// Sends `array` (a Socket.IO event array as raw JSON) from `a` with an ack callback;
    /// returns the ack body, which must be the next thing `a` receives.
    async fn ack_of(&mut self, case: &str, array: &str) -> Value {
        self.a.send_raw(&format!("4299{array}"));
        match self.a.next().await {
            Incoming::Ack(99, args) => args[0].clone(),
            other => panic!("{case}: expected ack 99, got {other:?}"),
        }
    }

    /// `array` from `a` is refused: its ack is an error saying `says`, and nobody received
    /// anything (see [`Scene::nothing_reached_anyone`]).
    async fn assert_refused(&mut self, case: &str, array: &str, says: &str) {
        let ack = self.ack_of(case, array).await;
        let error = ack["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "{case}: ack {ack} does not say {says:?}"
        );
        self.nothing_reached_anyone(case).await;
    }

    /// `a` still relays within its room, and every bystander's next event is a relay sent
    /// now: nothing sent before reached them.
    async fn nothing_reached_anyone(&mut self, case: &str) {
        let marker = json!({ "after": case });
        self.a.emit(
            "rtc-answer",
            &[Value::from(self.b_peer.clone()), marker.clone()],
        );
        self.c.emit(
            "rtc-answer",
            &[Value::from(self.d_peer.clone()), marker.clone()],
        );
        self.d.emit(
            "rtc-answer",
            &[Value::from(self.c_peer.clone()), marker.clone()],
        );
        for (who, client, from) in [
            ("b", &mut self.b, &self.a_peer),
            ("c", &mut self.c, &self.d_peer),
            ("d", &mut self.d, &self.c_peer),
        ] {
            let got = client.expect_any().await;
            let want = (
                "rtc-answer".to_owned(),
                vec![Value::from(from.clone()), marker.clone()],
            );
            assert_eq!(got, want, "{case}: {who} received something first");
        }
    }

    /// `array` from `a` is relayed to `b` as `[a's peer id, payload]`, and acked `ok`.
    async fn assert_relayed(&mut self, case: &str, array: &str, payload: Value) {
        let ack = self.ack_of(case, array).await;
        assert_eq!(ack, json!({"ok": true}), "{case}");
        let got = self.b.expect_any().await;
        let want = (
            "ice-candidate".to_owned(),
            vec![Value::from(self.a_peer.clone()), payload],
        );
        assert_eq!(got, want, "{case}");
    }
}

/// A relay whose first argument is not a peer id string is refused.
#[tokio::test]
async fn a_relay_without_a_peer_id_string_is_refused() {
    let mut s = Scene::new().await;
    for (case, array) in [
        ("no arguments", r#"["rtc-offer"]"#),
        ("a number", r#"["rtc-offer",42,{}]"#),
        ("null", r#"["rtc-answer",null,{}]"#),
    ] {
        s.assert_refused(case, array, "peer id").await;
    }
}

/// A relay without its payload is refused.
#[tokio::test]
async fn a_relay_without_a_payload_is_refused() {
    let mut s = Scene::new().await;
    let array = format!(r#"["rtc-offer","{}"]"#, s.b_peer);
    s.assert_refused("missing payload", &array, "payload").await;
}

/// An offer or answer that is not a JSON object is refused.
#[tokio::test]
async fn an_offer_or_answer_that_is_not_an_object_is_refused() {
    let mut s = Scene::new().await;
    let b = s.b_peer.clone();
    for (case, array) in [
        ("offer as a string", format!(r#"["rtc-offer","{b}","sdp"]"#)),
        ("answer as an array", format!(r#"["rtc-answer","{b}",[1]]"#)),
        ("answer as a number", format!(r#"["rtc-answer","{b}",7]"#)),
    ] {
        s.assert_refused(case, &array, "object").await;
    }
}

/// An ICE candidate that is not an object, a string or null is refused.
#[tokio::test]
async fn a_candidate_of_another_type_is_refused() {
    let mut s = Scene::new().await;
    let b = s.b_peer.clone();
    for (case, array) in [
        ("a number", format!(r#"["ice-candidate","{b}",7]"#)),
        ("an array", format!(r#"["ice-candidate","{b}",[]]"#)),
    ] {
        s.assert_refused(case, &array, "candidate").await;
    }
}

/// A payload over MAX_SIGNAL_BYTES (16 KiB by default) is refused.
#[tokio::test]
async fn a_payload_over_the_signal_size_limit_is_refused() {
    let mut s = Scene::new().await;
    let big = "x".repeat(20 * 1024);
    let array = format!(r#"["rtc-offer","{}",{{"sdp":"{big}"}}]"#, s.b_peer);
    s.assert_refused("20 KiB offer", &array, "larger").await;
}

/// A relay to a member of another room is refused, and that member receives nothing.
#[tokio::test]
async fn a_relay_to_a_member_of_another_room_is_refused() {
    let mut s = Scene::new().await;
    let array = format!(r#"["rtc-offer","{}",{{}}]"#, s.c_peer);
    s.assert_refused("member of another room", &array, "not in any")
        .await;
}

/// A relay to a peer id nobody has is refused.
#[tokio::test]
async fn a_relay_to_an_unknown_peer_id_is_refused() {
    let mut s = Scene::new().await;
    let huge = "r".repeat(15 * 1024);
    for (case, array) in [
        (
            "well-formed unknown id",
            r#"["rtc-offer","AAAAAAAAAAAAAAAA",{}]"#.to_owned(),
        ),
        ("15 KiB id", format!(r#"["rtc-offer","{huge}",{{}}]"#)),
    ] {
        s.assert_refused(case, &array, "not in any").await;
    }
}

/// Socket ids are not peer ids: a relay addressed to one is refused, even when that
/// socket shares a room with the sender.
#[tokio::test]
async fn a_relay_addressed_to_a_socket_id_is_refused() {
    let mut s = Scene::new().await;
    for (case, sid) in [
        ("the sender's own socket id", s.a.sid.clone()),
        ("a room member's socket id", s.b.sid.clone()),
    ] {
        let array = format!(r#"["rtc-offer","{sid}",{{}}]"#);
        s.assert_refused(case, &array, "not in any").await;
    }
}

/// A relay to oneself is refused.
#[tokio::test]
async fn signalling_yourself_is_refused() {
    let mut s = Scene::new().await;
    let array = format!(r#"["rtc-offer","{}",{{}}]"#, s.a_peer);
    s.assert_refused("own peer id", &array, "yourself").await;
}

/// An event the protocol does not define is refused.
#[tokio::test]
async fn an_unknown_event_is_refused() {
    let mut s = Scene::new().await;
    let long = format!(r#"["{}"]"#, "x".repeat(20 * 1024));
    for (case, array) in [
        ("chat-message", r#"["chat-message","hi"]"#),
        ("a 20 KiB event name", long.as_str()),
    ] {
        s.assert_refused(case, array, "unknown event").await;
    }
}

/// Without an ack callback, a refusal comes as a `request-error` event naming the event
/// and the reason.
#[tokio::test]
async fn without_an_ack_callback_a_refusal_comes_as_a_request_error_event() {
    let mut s = Scene::new().await;
    for (case, array, event, says) in [
        (
            "missing arguments",
            r#"["rtc-offer"]"#,
            "rtc-offer",
            "peer id",
        ),
        ("unknown event", r#"["nope"]"#, "nope", "unknown event"),
    ] {
        s.a.send_raw(&format!("42{array}"));
        let args = s.a.expect_event("request-error").await;
        assert_eq!(args[0]["event"], event, "{case}: {args:?}");
        let error = args[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{case}: {args:?}");
        s.nothing_reached_anyone(case).await;
    }
}

/// Arguments after the payload are ignored: the relay goes through without them.
#[tokio::test]
async fn extra_arguments_after_the_payload_are_ignored() {
    let mut s = Scene::new().await;
    let array = format!(r#"["ice-candidate","{}",{{"candidate":""}},1,2]"#, s.b_peer);
    s.assert_relayed("extra arguments", &array, json!({"candidate": ""}))
        .await;
}

/// An empty-string candidate, which marks the end of candidates, is relayed.
#[tokio::test]
async fn an_end_of_candidates_marker_is_relayed() {
    let mut s = Scene::new().await;
    let array = format!(r#"["ice-candidate","{}",""]"#, s.b_peer);
    s.assert_relayed("empty candidate", &array, json!("")).await;
}

/// A null candidate (what older clients send at the end of candidates) is relayed.
#[tokio::test]
async fn a_null_candidate_is_relayed() {
    let mut s = Scene::new().await;
    let array = format!(r#"["ice-candidate","{}",null]"#, s.b_peer);
    s.assert_relayed("null candidate", &array, Value::Null)
        .await;
}

/// Frames that are not valid Socket.IO packets.
const BROKEN_FRAMES: [&str; 6] = [
    r#"42[1,2]"#,
    r#"42{"a":1}"#,
    "42",
    "4x",
    "xyz",
    r#"42["rtc-offer""#,
];

/// A frame that is not a valid Socket.IO packet closes the sender's connection, as the
/// protocol prescribes.
#[tokio::test]
async fn a_broken_frame_closes_the_senders_connection() {
    for frame in BROKEN_FRAMES {
        let server = Server::start().await;
        let (_a, mut b, _, _) = pair(&server).await;
        b.send_raw(frame);
        let before = b.until_closed().await;
        assert!(
            before.is_empty(),
            "{frame}: got {before:?} before the close"
        );
    }
}

/// After a member's broken frame, the rest of its room is told it left and the room keeps
/// working.
#[tokio::test]
async fn a_broken_frame_harms_no_one_else() {
    for frame in BROKEN_FRAMES {
        let server = Server::start().await;
        let (mut a, b, room, b_peer) = pair(&server).await;
        b.send_raw(frame);
        assert_eq!(
            a.expect_event("user-disconnected").await,
            vec![Value::from(b_peer)],
            "{frame}"
        );
        let c = Client::connect(server.addr).await;
        c.emit("join-room", &[Value::from(room)]);
        a.expect_event("new-user-joined").await;
    }
}
