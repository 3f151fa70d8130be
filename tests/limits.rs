//! Caps and rate limits: room size, rooms per connection, the signaling and join rates,
//! floods, the connection cap, and the per-IP rates of handshakes and RTC configurations.

mod common;

use common::{
    Client, Server, config_with, flood, pair, peer_id_seen_by, server_with_a_tight_signal_rate,
};
use serde_json::{Value, json};

/// A join over the room cap gets `room-full` and an error ack; the members see nothing.
#[tokio::test]
async fn a_full_room_refuses_the_next_joiner() {
    let config = config_with(|c| c.limits.max_room_size = 2);
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
    let config = config_with(|c| c.limits.max_rooms_per_socket = 2);
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
    let server = Server::start_with(config_with(|c| {
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
    let server = server_with_a_tight_signal_rate().await;
    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    let a_peer = peer_id_seen_by(&a, &mut b, &b_peer).await;
    flood(&a, &b_peer);
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
    let server = server_with_a_tight_signal_rate().await;
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
    let config = config_with(|c| {
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

/// Past MAX_CONNECTIONS connections, new handshakes get 503.
#[tokio::test]
async fn handshakes_past_the_connection_cap_get_503() {
    let server = Server::start_with(config_with(|c| c.limits.max_connections = 2)).await;
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
    let server = Server::start_with(config_with(|c| {
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

/// Past the per-IP rate, `GET /api/rtc-config` (fresh TURN credentials each time) gets 429
/// with `Retry-After` and mints nothing; another client IP is not held back, and the
/// refusal is counted. Handshakes past their own rate get `Retry-After` too.
#[tokio::test]
async fn rtc_configs_past_the_per_ip_rate_get_429_with_retry_after() {
    let server = Server::start_with(config_with(|c| {
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
