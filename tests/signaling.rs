//! The room protocol over a real websocket, from a Rust Engine.IO client: what the Node
//! suite cannot easily provoke (forged polling requests, silent heartbeats, killed
//! transports) plus the core rows.

mod common;

use common::{Client, Incoming, Server, WAIT, pair};
use meshchat::Config;
use serde_json::{Value, json};

/// A relay reaches only its target, from the sender's peer id, with the payload unchanged.
#[tokio::test]
async fn relay_reaches_only_its_target_with_the_payload_unchanged() {
    let server = Server::start().await;
    let (mut a, mut b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    let c_peer = a.expect_event("new-user-joined").await[0].clone();
    assert_eq!(b.expect_event("new-user-joined").await[0], c_peer);

    // Field order and number formatting survive: the raw JSON is forwarded as it came.
    let offer = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","z":1.50,"a":[]}"#;
    a.send_raw(&format!(r#"42["rtc-offer","{b_peer}",{offer}]"#));
    let got = b.expect_event("rtc-offer").await;
    let a_peer = got[0].as_str().unwrap().to_owned();
    assert_ne!(a_peer, a.sid, "the announced id must not be the socket id");
    assert_eq!(got[1], serde_json::from_str::<Value>(offer).unwrap());

    // c gets nothing: its first event is the next relay addressed to it.
    a.emit(
        "ice-candidate",
        &[c_peer.clone(), json!({"candidate": "", "sdpMid": "0"})],
    );
    assert_eq!(
        c.expect_event("ice-candidate").await,
        vec![Value::from(a_peer), json!({"candidate": "", "sdpMid": "0"})]
    );
}

/// The raw bytes of the relayed payload are the bytes that were sent.
#[tokio::test]
async fn relayed_payload_bytes_are_not_reencoded() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    let payload = r#"{"sdp":"a=x\u00e9","n":1e3,"k":{"b":1,"a":2}}"#;
    a.send_raw(&format!(r#"42["rtc-answer","{b_peer}",{payload}]"#));
    let got = b.expect_event("rtc-answer").await;
    assert_eq!(got[1]["sdp"], "a=x\u{e9}");
    // Escapes, exponents and key order survive only if the JSON is not rebuilt.
    let frames = b.raw_frames.lock().unwrap();
    let frame = frames.last().unwrap();
    assert!(
        frame.ends_with(&format!(",{payload}]")),
        "payload was re-encoded: {frame}"
    );
}

/// A forged long-polling request that uses an announced id as the session id is refused,
/// and nothing is delivered.
#[tokio::test]
async fn forged_polling_request_with_an_announced_id_is_refused() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    // The id `b` is announced by is all an attacker in the room learns about it.
    let http = reqwest::Client::new();
    let forged = format!(r#"42["rtc-offer","{b_peer}",{{"type":"offer","sdp":"forged"}}]"#);
    let post = http
        .post(server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={b_peer}")))
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 400, "a forged POST must be refused");
    let get = http
        .get(server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={b_peer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.status(),
        400,
        "polling someone else's queue must be refused"
    );

    // Barrier: b's first event after the forgery is a's genuine relay.
    a.emit(
        "rtc-offer",
        &[Value::from(b_peer), json!({"sdp": "genuine"})],
    );
    let got = b.expect_event("rtc-offer").await;
    assert_eq!(got[1]["sdp"], "genuine");
}

/// A client that stops answering heartbeats is announced as gone.
#[tokio::test]
async fn ping_timeout_announces_user_disconnected() {
    let config = Config {
        ping_interval_ms: 200,
        ping_timeout_ms: 200,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let (mut a, b, _room, b_peer) = pair(&server).await;
    b.stop_answering_pings();
    assert_eq!(
        a.expect_event("user-disconnected").await,
        vec![Value::from(b_peer)]
    );
}

/// A transport closed without any goodbye is announced at once, not after the heartbeat.
#[tokio::test]
async fn killed_transport_announces_user_disconnected_before_the_heartbeat() {
    let config = Config {
        ping_interval_ms: 60_000,
        ping_timeout_ms: 60_000,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let (mut a, b, _room, b_peer) = pair(&server).await;
    b.kill_transport();
    // WAIT (10 s) is far below the 120 s a heartbeat would take.
    assert_eq!(
        a.expect_event("user-disconnected").await,
        vec![Value::from(b_peer)]
    );
}

/// A clean Socket.IO disconnect is announced, and the room keeps working for the others.
#[tokio::test]
async fn client_disconnect_is_announced_and_the_room_keeps_working() {
    let server = Server::start().await;
    let (mut a, mut b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    let c_peer = a.expect_event("new-user-joined").await[0].clone();
    b.expect_event("new-user-joined").await;

    b.disconnect();
    assert_eq!(
        a.expect_event("user-disconnected").await,
        vec![Value::from(b_peer.clone())]
    );
    assert_eq!(
        c.expect_event("user-disconnected").await,
        vec![Value::from(b_peer)]
    );
    a.emit("rtc-offer", &[c_peer, json!({"sdp": "still here"})]);
    assert_eq!(c.expect_event("rtc-offer").await[1]["sdp"], "still here");
}

/// When the last member leaves, the room is gone: `/metrics` counts no room, and joining
/// its id makes a new room.
#[tokio::test]
async fn an_emptied_room_is_forgotten() {
    let server = Server::start().await;
    let (mut a, b, room, _) = pair(&server).await;
    assert_eq!(server.metrics().await.get("meshchat_rooms", &[]), 1);
    b.disconnect();
    a.expect_event("user-disconnected").await;
    a.disconnect();
    server
        .metrics_when("no rooms", |m| m.get("meshchat_rooms", &[]) == 0)
        .await;

    let mut d = Client::connect(server.addr).await;
    let ack = d.emit_ack("join-room", &[Value::from(room.clone())]).await;
    assert_eq!(ack[0]["created"], true);
    assert_ne!(ack[0]["roomId"], Value::from(room));
}

/// Handlers of one socket run in arrival order: hundreds of relays sent back to back
/// arrive in the order they were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_from_one_sender_keep_their_order() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    const N: u64 = 500;
    for i in 0..N {
        a.emit(
            "ice-candidate",
            &[Value::from(b_peer.clone()), json!({ "seq": i })],
        );
    }
    for i in 0..N {
        let got = b.expect_event("ice-candidate").await;
        assert_eq!(got[1]["seq"], i, "relay {i} arrived out of order");
    }
}

/// A binary attachment is refused with a clear error, and the connection keeps working.
#[tokio::test]
async fn binary_attachments_are_refused_and_the_connection_survives() {
    let server = Server::start().await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    a.send_raw(&format!(
        r#"451-1["rtc-offer","{b_peer}",{{"_placeholder":true,"num":0}}]"#
    ));
    a.send_binary(vec![1, 2, 3]);
    let ack = a.next().await;
    assert_eq!(
        ack,
        Incoming::Ack(
            1,
            vec![json!({"error": "binary attachments are not accepted"})]
        )
    );
    a.emit("rtc-offer", &[Value::from(b_peer), json!({"sdp": "after"})]);
    assert_eq!(b.expect_event("rtc-offer").await[1]["sdp"], "after");
}

/// An Engine.IO message over the payload cap closes only the sender's connection; the
/// other members are told it left and keep working.
#[tokio::test]
async fn an_oversized_engine_io_message_closes_only_that_connection() {
    let server = Server::start().await;
    let (mut a, b, room, b_peer) = pair(&server).await;
    let huge = "x".repeat(70 * 1024);
    b.send_raw(&format!(r#"42["join-room","{huge}"]"#));
    assert_eq!(
        a.expect_event("user-disconnected").await,
        vec![Value::from(b_peer)]
    );
    let c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    a.expect_event("new-user-joined").await;
}

/// On shutdown every client is disconnected and `run` returns within the timeout.
#[tokio::test]
async fn graceful_shutdown_disconnects_clients_and_returns() {
    let config = Config {
        shutdown_timeout_secs: 5,
        ..Config::defaults()
    };
    let server = Server::start_with(config).await;
    let (mut a, _b, _room, _) = pair(&server).await;
    let stopped = tokio::time::timeout(WAIT, server.shutdown()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "run did not return cleanly: {stopped:?}"
    );
    loop {
        match a.next().await {
            Incoming::Disconnect | Incoming::Closed => break,
            Incoming::Event(name, _) if name == "user-disconnected" => continue,
            other => panic!("unexpected {other:?} during shutdown"),
        }
    }
}

/// `/healthz` answers 200 and the web client is served at `/`.
#[tokio::test]
async fn healthz_and_index_are_served() {
    let server = Server::start().await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let index = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("<html"));
}
