//! The room protocol over a real websocket, from a Rust Engine.IO client: what the Node
//! suite cannot easily provoke (forged polling requests, silent heartbeats, killed
//! transports) plus the core rows.

mod common;

use common::{Client, Incoming, Server, WAIT, http, pair, peer_id_seen_by, within};
use serde_json::{Value, json};

/// A relay reaches its target and no other member of the room.
#[tokio::test]
async fn a_relay_reaches_only_its_target() {
    let server = Server::start().await;
    let (mut a, mut b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    let c_peer = a.expect_event("new-user-joined").await[0].clone();
    assert_eq!(b.expect_event("new-user-joined").await[0], c_peer);

    a.emit("rtc-offer", &[Value::from(b_peer), json!({"sdp": "for b"})]);
    assert_eq!(b.expect_event("rtc-offer").await[1]["sdp"], "for b");
    // c gets nothing: its first event is the next relay addressed to it.
    a.emit("rtc-offer", &[c_peer, json!({"sdp": "for c"})]);
    assert_eq!(c.expect_event("rtc-offer").await[1]["sdp"], "for c");
}

/// A relay names its sender by the peer id the room was told on join, never by the
/// sender's socket id.
#[tokio::test]
async fn a_relay_names_its_sender_by_the_announced_peer_id() {
    let server = Server::start().await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    assert_ne!(b_peer, b.sid, "the announced id must not be the socket id");
    let a_peer = peer_id_seen_by(&a, &mut b, &b_peer).await;
    b.emit(
        "ice-candidate",
        &[Value::from(a_peer), json!({"candidate": "", "sdpMid": "0"})],
    );
    assert_eq!(
        a.expect_event("ice-candidate").await,
        vec![Value::from(b_peer), json!({"candidate": "", "sdpMid": "0"})]
    );
}

/// The relayed payload is the bytes that were sent: escapes, number formatting and key
/// order survive, because the JSON is forwarded as it came and never rebuilt.
#[tokio::test]
async fn relayed_payloads_are_forwarded_byte_for_byte() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    for (event, payload) in [
        (
            "rtc-offer",
            r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","z":1.50,"a":[]}"#,
        ),
        (
            "rtc-answer",
            r#"{"sdp":"a=x\u00e9","n":1e3,"k":{"b":1,"a":2}}"#,
        ),
    ] {
        a.send_raw(&format!(r#"42["{event}","{b_peer}",{payload}]"#));
        let got = b.expect_event(event).await;
        assert_eq!(got[1], serde_json::from_str::<Value>(payload).unwrap());
        let frames = b.raw_frames.lock().unwrap();
        let frame = frames.last().unwrap();
        assert!(
            frame.ends_with(&format!(",{payload}]")),
            "{event} was re-encoded: {frame}"
        );
    }
}

/// A long-polling POST that uses an announced peer id as its session id is refused, and
/// nothing of it is delivered.
#[tokio::test]
async fn posting_as_another_peer_with_its_announced_id_is_refused() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    // The id `b` is announced by is all an attacker in the room learns about it.
    let forged = format!(r#"42["rtc-offer","{b_peer}",{{"type":"offer","sdp":"forged"}}]"#);
    let post = http()
        .post(server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={b_peer}")))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 400, "a forged POST must be refused");

    // Barrier: b's first event after the forgery is a's genuine relay.
    a.emit(
        "rtc-offer",
        &[Value::from(b_peer), json!({"sdp": "genuine"})],
    );
    assert_eq!(b.expect_event("rtc-offer").await[1]["sdp"], "genuine");
}

/// A long-polling GET that uses an announced peer id as its session id is refused: nobody
/// can read another peer's queue, which still reaches its owner.
#[tokio::test]
async fn polling_another_peers_queue_with_its_announced_id_is_refused() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    a.emit(
        "rtc-offer",
        &[Value::from(b_peer.clone()), json!({"sdp": "queued"})],
    );
    let get = http()
        .get(server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={b_peer}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.status(),
        400,
        "polling someone else's queue must be refused"
    );
    assert_eq!(b.expect_event("rtc-offer").await[1]["sdp"], "queued");
}

/// A client that stops answering heartbeats is announced as gone.
#[tokio::test]
async fn ping_timeout_announces_user_disconnected() {
    let config = common::config_with(|c| {
        c.listen.ping_interval_ms = 200;
        c.listen.ping_timeout_ms = 200;
    });
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
    let config = common::config_with(|c| {
        c.listen.ping_interval_ms = 60_000;
        c.listen.ping_timeout_ms = 60_000;
    });
    let server = Server::start_with(config).await;
    let (mut a, b, _room, b_peer) = pair(&server).await;
    b.kill_transport();
    // WAIT (10 s) is far below the 120 s a heartbeat would take.
    assert_eq!(
        a.expect_event("user-disconnected").await,
        vec![Value::from(b_peer)]
    );
}

/// A clean Socket.IO disconnect is announced to every other member of the room.
#[tokio::test]
async fn a_clean_disconnect_is_announced_to_every_other_member() {
    let server = Server::start().await;
    let (mut a, b, room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    a.expect_event("new-user-joined").await;

    b.disconnect();
    for (who, member) in [("a", &mut a), ("c", &mut c)] {
        assert_eq!(
            member.expect_event("user-disconnected").await,
            vec![Value::from(b_peer.clone())],
            "{who}"
        );
    }
}

/// After a member leaves, the others still relay to each other.
#[tokio::test]
async fn the_room_keeps_working_after_a_member_leaves() {
    let server = Server::start().await;
    let (mut a, b, room, _b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    let c_peer = a.expect_event("new-user-joined").await[0].clone();

    b.disconnect();
    a.expect_event("user-disconnected").await;
    c.expect_event("user-disconnected").await;
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
            vec![json!({"error": "binary attachments are not accepted", "reason": "binary"})]
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

/// A server with a 5 s shutdown timeout and a room of two.
async fn server_with_a_room() -> (Server, Client, Client) {
    let server =
        Server::start_with(common::config_with(|c| c.listen.shutdown_timeout_secs = 5)).await;
    let (a, b, _room, _) = pair(&server).await;
    (server, a, b)
}

/// On shutdown, `run` returns `Ok` within the shutdown timeout, clients or not.
#[tokio::test]
async fn graceful_shutdown_returns_within_the_timeout() {
    let (server, _a, _b) = server_with_a_room().await;
    let stopped = tokio::time::timeout(WAIT, server.shutdown()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "run did not return cleanly: {stopped:?}"
    );
}

/// On shutdown every client is disconnected (at most hearing first that the others
/// left).
#[tokio::test]
async fn graceful_shutdown_disconnects_every_client() {
    let (server, mut a, mut b) = server_with_a_room().await;
    let shutdown = tokio::spawn(server.shutdown());
    for (who, client) in [("a", &mut a), ("b", &mut b)] {
        for before in client.until_closed().await {
            assert!(
                matches!(&before, Incoming::Event(name, _) if name == "user-disconnected"),
                "{who}: unexpected {before:?} during shutdown"
            );
        }
    }
    within("run returning", shutdown).await.unwrap().unwrap();
}

/// `/healthz` answers 200.
#[tokio::test]
async fn healthz_answers_200() {
    let server = Server::start().await;
    let health = http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// The web client is served at `/`.
#[tokio::test]
async fn the_web_client_is_served_at_the_root() {
    let server = Server::start().await;
    let index = http().get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("<html"));
}
