//! Bad input and abuse: malformed requests are refused and harm nobody else; room
//! capacity, the room-per-socket cap, rate limits, floods, origins, connection caps, slow
//! consumers and security headers.

mod common;

use common::{
    Client, Incoming, Server, config_with, http, join_and_stop_reading, pair, peer_id_seen_by,
    within,
};
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

/// A join over the room cap gets `room-full` and an error ack; the members see nothing.
#[tokio::test]
async fn a_full_room_refuses_the_next_joiner() {
    let config = common::config_with(|c| c.limits.max_room_size = 2);
    let server = Server::start_with(config).await;
    let (a, mut b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    let ack = c.emit_ack("join-room", &[Value::from(room.clone())]).await;
    assert_eq!(ack[0]["error"], "the room is full");
    assert_eq!(ack[0]["reason"], "room_full");
    assert_eq!(c.expect_event("room-full").await, vec![Value::from(room)]);
    // The members' next event is a normal relay: no new-user-joined slipped through.
    a.emit("rtc-offer", &[Value::from(b_peer), json!({"x": 1})]);
    assert_eq!(b.expect_event("rtc-offer").await[1]["x"], 1);
}

/// A socket can be in only MAX_ROOMS_PER_SOCKET rooms at once; the refused request makes
/// no room.
#[tokio::test]
async fn rooms_per_socket_are_capped() {
    let config = common::config_with(|c| c.limits.max_rooms_per_socket = 2);
    let server = Server::start_with(config).await;
    let mut a = Client::connect(server.addr).await;
    a.create_room().await;
    a.create_room().await;
    let ack = a.emit_ack("create-room", &[]).await;
    assert_eq!(ack[0]["error"], "you are in too many rooms");
    assert_eq!(server.metrics().await.get("meshchat_rooms", &[]), 2);
}

/// Offers, answers and candidates past the signaling rate are refused and not relayed.
#[tokio::test]
async fn signals_over_the_rate_limit_are_refused_and_not_relayed() {
    let server = Server::start_with(common::config_with(|c| {
        c.limits.signal_rate = 5;
        c.limits.signal_burst = 10;
        // High enough that this burst is limited but never treated as a flood.
        c.limits.flood_tolerance = 1000;
    }))
    .await;
    let (mut a, mut b, room, b_peer) = pair(&server).await;
    let c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    a.expect_event("new-user-joined").await;
    b.expect_event("new-user-joined").await;

    let ids: Vec<u64> = (0..200)
        .map(|i| {
            a.emit_asking_ack(
                "ice-candidate",
                &[Value::from(b_peer.clone()), json!({ "i": i })],
            )
        })
        .collect();
    let mut relayed = 0;
    for id in ids {
        let ack = a.expect_ack(id).await;
        match ack[0]["error"].as_str() {
            None => {
                assert_eq!(ack[0], json!({"ok": true}));
                relayed += 1;
            }
            Some(error) => assert_eq!(error, "too many requests: slow down"),
        }
    }
    assert!((10..=15).contains(&relayed), "relayed {relayed} of 200");

    // b received exactly the relayed ones, then c's marker (c has a bucket of its own).
    c.emit(
        "rtc-answer",
        &[Value::from(b_peer), json!({"marker": true})],
    );
    let (_, before) = b.until_event("rtc-answer").await;
    assert_eq!(before.len(), relayed, "{before:?}");
    assert!(before.iter().all(|(name, _)| name == "ice-candidate"));
}

/// A client that keeps flooding past the limits is disconnected, and its room hears that
/// it left.
#[tokio::test]
async fn a_client_that_keeps_flooding_is_disconnected() {
    let config = common::config_with(|c| {
        c.limits.signal_rate = 5;
        c.limits.signal_burst = 10;
        c.limits.flood_tolerance = 20;
    });
    let server = Server::start_with(config).await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    let a_peer = peer_id_seen_by(&a, &mut b, &b_peer).await;
    for i in 0..200 {
        a.emit(
            "ice-candidate",
            &[Value::from(b_peer.clone()), json!({ "i": i })],
        );
    }
    let (left, before) = b.until_event("user-disconnected").await;
    assert_eq!(left, vec![Value::from(a_peer)]);
    assert!(
        before.iter().all(|(name, _)| name == "ice-candidate"),
        "{before:?}"
    );
    a.until_closed().await;
}

/// Unknown events draw on the signaling rate limit too: a stream of them is refused, then
/// disconnected like any other flood.
#[tokio::test]
async fn a_client_that_keeps_sending_unknown_events_is_disconnected() {
    let config = common::config_with(|c| {
        c.limits.signal_rate = 5;
        c.limits.signal_burst = 10;
        c.limits.flood_tolerance = 20;
    });
    let server = Server::start_with(config).await;
    let mut a = Client::connect(server.addr).await;
    for _ in 0..10 {
        let ack = a.emit_ack("no-such-event", &[]).await;
        assert_eq!(ack[0]["error"], "unknown event");
    }
    let ack = a.emit_ack("no-such-event", &[]).await;
    assert_eq!(ack[0]["error"], "too many requests: slow down");
    for _ in 0..200 {
        a.emit("no-such-event", &[]);
    }
    a.until_closed().await;
    let metrics = server
        .metrics_when("a flood counted", |m| {
            m.get("meshchat_floods_total", &[]) == 1
        })
        .await;
    assert!(metrics.get("meshchat_rate_limited_total", &[]) >= 20);
}

/// Joins and creates have their own, tighter bucket.
#[tokio::test]
async fn room_joins_are_rate_limited() {
    let config = common::config_with(|c| {
        c.limits.join_rate = 1;
        c.limits.join_burst = 3;
        c.limits.max_rooms_per_socket = 100;
    });
    let server = Server::start_with(config).await;
    let mut a = Client::connect(server.addr).await;
    for _ in 0..3 {
        assert!(a.emit_ack("create-room", &[]).await[0]["roomId"].is_string());
    }
    let ack = a.emit_ack("create-room", &[]).await;
    assert_eq!(ack[0]["error"], "too many requests: slow down");
}

/// A Socket.IO handshake with `origin`, over websocket or long-polling: its HTTP status.
async fn handshake_status(server: &Server, websocket: bool, origin: &str) -> u16 {
    if websocket {
        match Client::try_connect(server.addr, Some(origin)).await {
            Ok(_) => 101,
            Err(status) => status,
        }
    } else {
        let polling = server.url("/socket.io/?EIO=4&transport=polling");
        let response = http()
            .get(&polling)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

/// A server that allows one extra origin, `https://chat.example.com`.
async fn server_allowing_one_origin() -> Server {
    Server::start_with(common::config_with(|c| {
        c.limits.allowed_origins = vec!["https://chat.example.com".into()]
    }))
    .await
}

/// A foreign origin may not open a Socket.IO connection, on either transport.
#[tokio::test]
async fn a_foreign_origin_is_refused_on_both_transports() {
    let server = server_allowing_one_origin().await;
    for websocket in [true, false] {
        assert_eq!(
            handshake_status(&server, websocket, "https://evil.example").await,
            403,
            "websocket: {websocket}"
        );
    }
}

/// Asserts that a handshake from `origin` succeeds on both transports.
async fn assert_origin_may_connect(server: &Server, origin: &str) {
    for (websocket, ok) in [(true, 101), (false, 200)] {
        assert_eq!(
            handshake_status(server, websocket, origin).await,
            ok,
            "{origin}, websocket: {websocket}"
        );
    }
}

/// Origins listed in ALLOWED_ORIGINS may connect, on either transport.
#[tokio::test]
async fn a_listed_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, "https://chat.example.com").await;
}

/// The page's own origin may connect, on either transport.
#[tokio::test]
async fn the_pages_own_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, &format!("http://{}", server.addr)).await;
}

/// Localhost origins (a dev server on another port) may connect, on either transport.
#[tokio::test]
async fn a_localhost_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, "http://localhost:5173").await;
}

/// Past MAX_CONNECTIONS connections, new handshakes get 503.
#[tokio::test]
async fn handshakes_past_the_connection_cap_get_503() {
    let server = Server::start_with(common::config_with(|c| c.limits.max_connections = 2)).await;
    let _a = Client::connect(server.addr).await;
    let _b = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(503)
    );
}

/// Past the per-IP connection rate, new handshakes get 429.
#[tokio::test]
async fn handshakes_past_the_per_ip_connection_rate_get_429() {
    let server = Server::start_with(common::config_with(|c| {
        c.limits.connect_rate = 1;
        c.limits.connect_burst = 2;
    }))
    .await;
    let _a = Client::connect(server.addr).await;
    let _b = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(429)
    );
}

/// A server with a small outgoing buffer and a fast heartbeat, and a room where `b` has
/// stopped reading while `a` sends it 100 candidates. Returns `a` and b's peer id.
async fn relays_to_a_client_that_never_reads() -> (Server, Client, Value) {
    let server = Server::start_with(common::config_with(|c| {
        c.listen.max_buffer = 16;
        c.listen.ping_interval_ms = 300;
        c.listen.ping_timeout_ms = 500;
    }))
    .await;
    let mut a = Client::connect(server.addr).await;
    let room = a.create_room().await;
    let b_peer = join_and_stop_reading(&server, &mut a, &room).await;
    for i in 0..100 {
        a.emit("ice-candidate", &[b_peer.clone(), json!({ "i": i })]);
    }
    (server, a, b_peer)
}

/// Once a client's outgoing buffer is full, relays to it fail and the sender is told
/// that the peer could not be reached.
#[tokio::test]
async fn relays_to_a_client_whose_buffer_is_full_are_refused() {
    let (_server, mut a, _b_peer) = relays_to_a_client_that_never_reads().await;
    let args = a.expect_event("request-error").await;
    assert_eq!(
        args[0],
        json!({"event": "ice-candidate", "error": "the peer could not be reached", "reason": "undeliverable"})
    );
}

/// A client that never reads is dropped when its heartbeat goes unanswered, even with a
/// full buffer; its room hears that it left.
#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let (_server, mut a, b_peer) = relays_to_a_client_that_never_reads().await;
    let (left, before) = a.until_event("user-disconnected").await;
    assert_eq!(left, vec![b_peer]);
    assert!(
        before.iter().all(|(name, _)| name == "request-error"),
        "{before:?}"
    );
}

/// Every response carries the security headers; the CSP allows only our own origin.
#[tokio::test]
async fn pages_carry_security_headers() {
    let server = Server::start().await;
    for path in ["/", "/healthz"] {
        let res = http().get(server.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains('*') && !csp.contains("unsafe"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}

/// Past the per-IP rate, `GET /api/rtc-config` (fresh TURN credentials each time) gets 429
/// with `Retry-After` and mints nothing; another client IP is not held back, and the
/// refusal is counted. Handshakes past their own rate get `Retry-After` too.
#[tokio::test]
async fn rtc_configs_past_the_per_ip_rate_get_429_with_retry_after() {
    let server = Server::start_with(common::config_with(|c| {
        c.limits.connect_rate = 1;
        c.limits.connect_burst = 2;
        c.limits.trust_proxy = true;
        c.ice.turn_secret = Some("s3cret".parse().unwrap());
        c.ice.turn_urls = vec!["turn:turn.example:3478".into()];
    }))
    .await;
    let get = |path: &'static str, ip: &'static str| {
        let url = server.url(path);
        async move {
            common::http()
                .get(url)
                .header("fly-client-ip", ip)
                .send()
                .await
                .unwrap()
        }
    };
    let config = "/api/rtc-config";
    for _ in 0..2 {
        assert_eq!(get(config, "203.0.113.1").await.status(), 200);
    }
    let refused = get(config, "203.0.113.1").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(get(config, "203.0.113.2").await.status(), 200);

    // Connections have a bucket of their own: the same IP may still connect, up to its rate.
    let handshake = "/socket.io/?EIO=4&transport=polling";
    for _ in 0..2 {
        assert_eq!(get(handshake, "203.0.113.1").await.status(), 200);
    }
    let refused = get(handshake, "203.0.113.1").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");

    let m = server.metrics().await;
    assert_eq!(m.get("meshchat_turn_credentials_total", &[]), 3);
    let reason = |r| m.get("meshchat_connections_refused_total", &[("reason", r)]);
    assert_eq!(reason("rtc_config_rate"), 1);
    assert_eq!(reason("connect_rate"), 1);
}

/// A request head over the 8 KiB cap gets 431 (hyper stops buffering there), and the
/// server goes on serving.
#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");

    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
}

/// A keep-alive connection left idle, and one sending its request head too slowly, are
/// closed after `HTTP_IDLE_TIMEOUT_MS`: a client that never closes its connections must
/// not hold the server's memory for good.
#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start_with(config_with(|c| c.listen.http_idle_timeout_ms = 300)).await;

    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    within(
        "the idle connection closed",
        idle.read_to_end(&mut response),
    )
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));

    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut response = Vec::new();
    within(
        "the slow connection closed",
        slow.read_to_end(&mut response),
    )
    .await
    .unwrap();
    assert!(
        !String::from_utf8_lossy(&response).contains("200"),
        "{response:?}"
    );
}
