//! Bad input and abuse: every malformed request gets its refusal and harms nobody else;
//! room capacity, room-per-socket cap, rate limits, floods, origins, connection caps, slow
//! consumers and security headers.

mod common;

use common::{Client, Incoming, Server, join_and_stop_reading, pair};
use meshchat::Config;
use serde_json::{Value, json};

/// What the offender should see after sending a bad frame.
#[derive(Debug)]
enum Expect {
    /// An ack `{error}` containing this text.
    Ack(&'static str),
    /// A `request-error` event (no ack was asked for) containing this text.
    Event(&'static str),
    /// Nothing for the offender: it went to the target as a normal relay.
    Delivered,
}

/// Every malformed shape we can think of, sent by a member of a room of three while a
/// fourth client sits in another room. For each: the offender gets its refusal and keeps
/// working (or, for broken framing, only its own connection closes), and no other client
/// receives anything it should not.
#[tokio::test]
async fn malformed_requests_are_refused_and_harm_nobody_else() {
    let server = Server::start().await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    // The id `a` is announced by, as b sees it on a relay.
    a.emit(
        "rtc-offer",
        &[Value::from(b_peer.clone()), json!({"sdp": "hello"})],
    );
    let a_peer = b.expect_event("rtc-offer").await[0]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = Client::connect(server.addr).await;
    let mut d = Client::connect(server.addr).await;
    let other_room = c.create_room().await;
    d.emit("join-room", &[Value::from(other_room)]);
    let d_peer = c.expect_event("new-user-joined").await[0]
        .as_str()
        .unwrap()
        .to_owned();
    let c_peer = {
        c.emit("rtc-offer", &[Value::from(d_peer.clone()), json!({})]);
        d.expect_event("rtc-offer").await[0]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let big = "x".repeat(20 * 1024);
    let huge_room = "r".repeat(15 * 1024);
    let sid = a.sid.clone();
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "relay without arguments",
            r#"["rtc-offer"]"#.into(),
            Expect::Ack("peer id"),
        ),
        (
            "peer id of the wrong type",
            r#"["rtc-offer",42,{}]"#.into(),
            Expect::Ack("peer id"),
        ),
        (
            "peer id null",
            r#"["rtc-answer",null,{}]"#.into(),
            Expect::Ack("peer id"),
        ),
        (
            "missing payload",
            format!(r#"["rtc-offer","{b_peer}"]"#),
            Expect::Ack("payload"),
        ),
        (
            "offer as a string",
            format!(r#"["rtc-offer","{b_peer}","sdp"]"#),
            Expect::Ack("object"),
        ),
        (
            "answer as an array",
            format!(r#"["rtc-answer","{b_peer}",[1]]"#),
            Expect::Ack("object"),
        ),
        (
            "answer as a number",
            format!(r#"["rtc-answer","{b_peer}",7]"#),
            Expect::Ack("object"),
        ),
        (
            "candidate as a number",
            format!(r#"["ice-candidate","{b_peer}",7]"#),
            Expect::Ack("candidate"),
        ),
        (
            "candidate as an array",
            format!(r#"["ice-candidate","{b_peer}",[]]"#),
            Expect::Ack("candidate"),
        ),
        (
            "oversized payload",
            format!(r#"["rtc-offer","{b_peer}",{{"sdp":"{big}"}}]"#),
            Expect::Ack("larger"),
        ),
        (
            "member of another room",
            format!(r#"["rtc-offer","{c_peer}",{{}}]"#),
            Expect::Ack("not in any"),
        ),
        (
            "unknown peer id",
            r#"["rtc-offer","AAAAAAAAAAAAAAAA",{}]"#.into(),
            Expect::Ack("not in any"),
        ),
        (
            "socket id instead of peer id",
            format!(r#"["rtc-offer","{sid}",{{}}]"#),
            Expect::Ack("not in any"),
        ),
        (
            "huge peer id",
            format!(r#"["rtc-offer","{huge_room}",{{}}]"#),
            Expect::Ack("not in any"),
        ),
        (
            "signal yourself",
            format!(r#"["rtc-offer","{a_peer}",{{}}]"#),
            Expect::Ack("yourself"),
        ),
        (
            "unknown event",
            r#"["chat-message","hi"]"#.into(),
            Expect::Ack("unknown event"),
        ),
        (
            "long unknown event",
            format!(r#"["{big}"]"#),
            Expect::Ack("unknown event"),
        ),
        (
            "extra arguments",
            format!(r#"["ice-candidate","{b_peer}",{{"candidate":""}},1,2]"#),
            Expect::Delivered,
        ),
        (
            "end of candidates",
            format!(r#"["ice-candidate","{b_peer}",""]"#),
            Expect::Delivered,
        ),
        (
            "null candidate",
            format!(r#"["ice-candidate","{b_peer}",null]"#),
            Expect::Delivered,
        ),
    ];
    for (name, array, expect) in cases {
        a.send_raw(&format!("4299{array}"));
        match expect {
            Expect::Ack(text) => {
                let got = a.next().await;
                let Incoming::Ack(99, args) = &got else {
                    panic!("{name}: expected an error ack, got {got:?}")
                };
                let error = args[0]["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains(text),
                    "{name}: error {error:?} lacks {text:?}"
                );
            }
            Expect::Delivered => {
                assert_eq!(
                    a.next().await,
                    Incoming::Ack(99, vec![json!({"ok": true})]),
                    "{name}"
                );
                b.expect_event("ice-candidate").await;
            }
            Expect::Event(_) => unreachable!(),
        }
        // The offender still relays within its room, and b's next event is that relay:
        // nothing of the bad request reached it.
        a.emit(
            "rtc-answer",
            &[Value::from(b_peer.clone()), json!({"case": name})],
        );
        assert_eq!(
            b.expect_event("rtc-answer").await[1]["case"],
            name,
            "{name}: b saw something else first"
        );
    }

    // Without an ack callback a refusal comes as a `request-error` event.
    for (name, array, expect) in [
        (
            "no ack: missing arguments",
            r#"["rtc-offer"]"#,
            Expect::Event("peer id"),
        ),
        (
            "no ack: unknown event",
            r#"["nope"]"#,
            Expect::Event("unknown event"),
        ),
    ] {
        a.send_raw(&format!("42{array}"));
        let Expect::Event(text) = expect else {
            unreachable!()
        };
        let args = a.expect_event("request-error").await;
        assert!(
            args[0]["error"].as_str().unwrap().contains(text),
            "{name}: {args:?}"
        );
    }

    // c and d, in the other room, received nothing at all: their next events are these.
    c.emit(
        "rtc-offer",
        &[Value::from(d_peer.clone()), json!({"n": "last"})],
    );
    assert_eq!(d.expect_event("rtc-offer").await[1]["n"], "last");
    d.emit("rtc-offer", &[Value::from(c_peer), json!({"n": "last"})]);
    assert_eq!(c.expect_event("rtc-offer").await[1]["n"], "last");
}

/// Frames that are not valid Socket.IO packets close the sender's connection (as the
/// protocol prescribes); the rest of its room is told it left and keeps working.
#[tokio::test]
async fn broken_framing_closes_only_the_sender() {
    for frame in [
        r#"42[1,2]"#,
        r#"42{"a":1}"#,
        "42",
        "4x",
        "xyz",
        r#"42["rtc-offer""#,
    ] {
        let server = Server::start().await;
        let (mut a, b, room, b_peer) = pair(&server).await;
        b.send_raw(frame);
        let c = Client::connect(server.addr).await;
        c.emit("join-room", &[Value::from(room)]);
        // Whether b was closed or survived, a's room still works and announces c.
        loop {
            match a.expect_any().await {
                (name, args) if name == "user-disconnected" => {
                    assert_eq!(args[0], Value::from(b_peer.clone()), "{frame}");
                }
                (name, _) if name == "new-user-joined" => break,
                other => panic!("{frame}: unexpected {other:?}"),
            }
        }
    }
}

/// A join over the room cap gets `room-full` and an error ack; the members see nothing.
#[tokio::test]
async fn a_full_room_refuses_the_next_joiner() {
    let config = Config {
        max_room_size: 2,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let (a, mut b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    let ack = c.emit_ack("join-room", &[Value::from(room.clone())]).await;
    assert_eq!(ack[0]["error"], "the room is full");
    assert_eq!(c.expect_event("room-full").await, vec![Value::from(room)]);
    // The members' next event is a normal relay: no new-user-joined slipped through.
    a.emit("rtc-offer", &[Value::from(b_peer), json!({"x": 1})]);
    assert_eq!(b.expect_event("rtc-offer").await[1]["x"], 1);
}

/// A socket can be in only so many rooms at once.
#[tokio::test]
async fn rooms_per_socket_are_capped() {
    let config = Config {
        max_rooms_per_socket: 2,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let mut a = Client::connect(server.addr).await;
    a.create_room().await;
    a.create_room().await;
    let ack = a.emit_ack("create-room", &[]).await;
    assert_eq!(ack[0]["error"], "you are in too many rooms");
    assert_eq!(server.metrics().await.get("meshchat_rooms", &[]), 2);
}

/// Events over the rate are dropped and counted; a client that keeps flooding is
/// disconnected, and its room hears that it left.
#[tokio::test]
async fn a_flooding_client_is_rate_limited_then_disconnected() {
    let config = Config {
        signal_rate: 5,
        signal_burst: 10,
        flood_tolerance: 20,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    for i in 0..200 {
        a.emit(
            "ice-candidate",
            &[Value::from(b_peer.clone()), json!({ "i": i })],
        );
    }
    let mut delivered = 0;
    let a_peer = loop {
        match b.expect_any().await {
            (name, _) if name == "ice-candidate" => delivered += 1,
            (name, args) if name == "user-disconnected" => break args[0].clone(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(a_peer.is_string());
    assert!(
        (10..=15).contains(&delivered),
        "delivered {delivered} of 200"
    );
    let metrics = server.metrics().await;
    let limited = metrics.get("meshchat_rate_limited_total", &[]);
    assert!(limited >= 20, "{metrics:?}");
    assert_eq!(metrics.get("meshchat_floods_total", &[]), 1, "{metrics:?}");
    loop {
        match a.next().await {
            Incoming::Closed | Incoming::Disconnect => break,
            _ => continue,
        }
    }
}

/// Joins and creates have their own, tighter bucket.
#[tokio::test]
async fn room_joins_are_rate_limited() {
    let config = Config {
        join_rate: 1,
        join_burst: 3,
        max_rooms_per_socket: 100,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let mut a = Client::connect(server.addr).await;
    for _ in 0..3 {
        assert!(a.emit_ack("create-room", &[]).await[0]["roomId"].is_string());
    }
    let ack = a.emit_ack("create-room", &[]).await;
    assert_eq!(ack[0]["error"], "too many requests: slow down");
}

/// Only allowed origins may open Socket.IO connections, on both transports.
#[tokio::test]
async fn foreign_origins_are_refused_on_both_transports() {
    let config = Config {
        allowed_origins: vec!["https://chat.example.com".into()],
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let evil = "https://evil.example";
    assert_eq!(
        Client::try_connect(server.addr, Some(evil)).await.err(),
        Some(403)
    );
    assert!(
        Client::try_connect(server.addr, Some("https://chat.example.com"))
            .await
            .is_ok()
    );
    let same = format!("http://{}", server.addr);
    assert!(Client::try_connect(server.addr, Some(&same)).await.is_ok());

    let http = reqwest::Client::new();
    let polling = server.url("/socket.io/?EIO=4&transport=polling");
    let refused = http
        .get(&polling)
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let allowed = http
        .get(&polling)
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

/// Past MAX_CONNECTIONS new handshakes get 503; per IP, past the connection rate, 429.
#[tokio::test]
async fn connection_cap_and_per_ip_rate() {
    let server = Server::start_with(Config {
        max_connections: 2,
        ..Config::defaults()
    })
    .await;
    let _a = Client::connect(server.addr).await;
    let _b = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(503)
    );

    let server = Server::start_with(Config {
        connect_rate: 1,
        connect_burst: 2,
        ..Config::defaults()
    })
    .await;
    let _a = Client::connect(server.addr).await;
    let _b = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(429)
    );
}

/// A client that never reads cannot grow server memory: emits to it fail once its buffer
/// is full (counted, refused to the sender), and it is dropped when its heartbeat goes
/// unanswered; its room hears that it left.
#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let server = Server::start_with(Config {
        max_buffer: 16,
        ping_interval_ms: 300,
        ping_timeout_ms: 500,
        ..Config::defaults()
    })
    .await;
    let mut a = Client::connect(server.addr).await;
    let room = a.create_room().await;

    let b_peer = join_and_stop_reading(&server, &mut a, &room).await;

    for i in 0..100 {
        a.emit("ice-candidate", &[b_peer.clone(), json!({ "i": i })]);
    }
    loop {
        match a.expect_any().await {
            (name, args) if name == "user-disconnected" => {
                assert_eq!(args[0], b_peer);
                break;
            }
            (name, _) if name == "request-error" => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.sum("meshchat_failed_emits_total") >= 1,
        "{metrics:?}"
    );
}

/// Every response carries the security headers; the CSP allows only our own origin.
#[tokio::test]
async fn pages_carry_security_headers() {
    let server = Server::start().await;
    for path in ["/", "/healthz"] {
        let res = reqwest::get(server.url(path)).await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains('*') && !csp.contains("unsafe"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}
