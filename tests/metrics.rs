//! `GET /metrics` read after driving real traffic through the server.

mod common;

use common::{
    Client, Metrics, Server, config_with, flood, http, pair, relays_to_a_client_that_never_reads,
    server_with_a_tight_signal_rate,
};
use serde_json::{Value, json};

/// A fresh server lists its gauges at zero.
#[tokio::test]
async fn a_fresh_server_reports_no_sockets_and_no_rooms() {
    let server = Server::start().await;
    let m = server.metrics().await;
    assert_eq!(m.get("meshchat_connected_sockets", &[]), 0);
    assert_eq!(m.get("meshchat_rooms", &[]), 0);
}

/// Three clients: `a` and `b` in one room, `c` alone in another; `b`'s peer id.
async fn two_rooms(server: &Server) -> (Client, Client, Client, String) {
    let (a, b, _room, b_peer) = pair(server).await;
    let mut c = Client::connect(server.addr).await;
    c.create_room().await;
    (a, b, c, b_peer)
}

/// `meshchat_connected_sockets` counts open connections, and goes down when one closes.
#[tokio::test]
async fn connected_sockets_follow_connections() {
    let server = Server::start().await;
    let (mut a, b, _c, _) = two_rooms(&server).await;
    assert_eq!(
        server
            .metrics()
            .await
            .get("meshchat_connected_sockets", &[]),
        3
    );
    b.disconnect();
    a.expect_event("user-disconnected").await;
    assert_eq!(
        server
            .metrics()
            .await
            .get("meshchat_connected_sockets", &[]),
        2
    );
}

/// `meshchat_rooms` and `meshchat_rooms_by_size` follow membership, sizes listed even at
/// zero, and move when a member leaves.
#[tokio::test]
async fn room_gauges_follow_membership() {
    let server = Server::start().await;
    let (mut a, b, _c, _) = two_rooms(&server).await;
    let m = server.metrics().await;
    assert_eq!(m.get("meshchat_rooms", &[]), 2, "{m:?}");
    for (members, rooms) in [("1", 1), ("2", 1), ("3", 0)] {
        let got = m.get("meshchat_rooms_by_size", &[("members", members)]);
        assert_eq!(got, rooms, "rooms of {members} in\n{m:?}");
    }

    b.disconnect();
    a.expect_event("user-disconnected").await;
    let m = server.metrics().await;
    for (members, rooms) in [("1", 2), ("2", 0)] {
        let got = m.get("meshchat_rooms_by_size", &[("members", members)]);
        assert_eq!(got, rooms, "rooms of {members} after a leave in\n{m:?}");
    }
}

/// Relays are counted by event; an event never relayed has no series.
#[tokio::test]
async fn relays_are_counted_by_event() {
    let server = Server::start().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    for i in 0..2 {
        a.emit(
            "rtc-offer",
            &[Value::from(b_peer.clone()), json!({ "i": i })],
        );
        b.expect_event("rtc-offer").await;
    }
    a.emit("ice-candidate", &[Value::from(b_peer.clone()), json!("")]);
    b.expect_event("ice-candidate").await;

    let m = server.metrics().await;
    let relayed = |event| m.value("meshchat_relayed_total", &[("event", event)]);
    assert_eq!(relayed("rtc-offer"), Some(2), "{m:?}");
    assert_eq!(relayed("ice-candidate"), Some(1), "{m:?}");
    assert_eq!(relayed("rtc-answer"), None, "{m:?}");
}

/// Refused requests are counted by reason.
#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let server = Server::start().await;
    let (_a, _b, mut c, b_peer) = two_rooms(&server).await;
    // c shares no room with b; each ack says the request was handled.
    let refused = c
        .emit_ack("rtc-offer", &[Value::from(b_peer), json!({})])
        .await;
    assert!(refused[0]["error"].is_string());
    c.emit_ack("no-such-event", &[]).await;
    c.emit_ack("rtc-answer", &[]).await;

    let m = server.metrics().await;
    for reason in ["not_in_your_rooms", "unknown_event", "missing_peer_id"] {
        let got = m.get("meshchat_refusals_total", &[("reason", reason)]);
        assert_eq!(got, 1, "{reason} in\n{m:?}");
    }
}

/// Ordinary traffic (joins, relays, refusals) counts no rate-limited event and no flood.
#[tokio::test]
async fn ordinary_traffic_counts_no_rate_limit_and_no_flood() {
    let server = Server::start().await;
    let (a, mut b, mut c, b_peer) = two_rooms(&server).await;
    for _ in 0..3 {
        a.emit("rtc-offer", &[Value::from(b_peer.clone()), json!({})]);
        b.expect_event("rtc-offer").await;
    }
    a.emit("ice-candidate", &[Value::from(b_peer.clone()), json!("")]);
    b.expect_event("ice-candidate").await;
    c.emit_ack("rtc-offer", &[Value::from(b_peer), json!({})])
        .await;
    c.emit_ack("no-such-event", &[]).await;
    c.emit_ack("rtc-answer", &[]).await;
    let m = server.metrics().await;
    assert_eq!(m.get("meshchat_rate_limited_total", &[]), 0, "{m:?}");
    assert_eq!(m.get("meshchat_floods_total", &[]), 0, "{m:?}");
}

/// A server with a tight signaling rate where `a` sent 200 candidates to `b` at once and
/// was dropped for flooding; returns once `b` has heard that `a` left.
async fn after_a_flood() -> Server {
    let server = server_with_a_tight_signal_rate().await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    flood(&a, &b_peer);
    b.until_event("user-disconnected").await;
    server
}

/// Events dropped by a rate limit are counted, and as refusals for that reason.
#[tokio::test]
async fn rate_limited_events_are_counted() {
    let server = after_a_flood().await;
    let m = server.metrics().await;
    let limited = m.get("meshchat_rate_limited_total", &[]);
    assert!(limited >= 20, "{m:?}");
    assert_eq!(
        m.get("meshchat_refusals_total", &[("reason", "rate_limited")]),
        limited,
        "{m:?}"
    );
}

/// Events dropped by a rate limit do not count as relayed.
#[tokio::test]
async fn rate_limited_events_are_not_counted_as_relayed() {
    let server = after_a_flood().await;
    let m = server.metrics().await;
    let relayed = m.get("meshchat_relayed_total", &[("event", "ice-candidate")]);
    assert!((10..=15).contains(&relayed), "{m:?}");
}

/// A connection dropped for flooding is counted once.
#[tokio::test]
async fn a_flood_is_counted() {
    let server = after_a_flood().await;
    assert_eq!(server.metrics().await.get("meshchat_floods_total", &[]), 1);
}

/// A handshake refused for its Origin is counted by that reason.
#[tokio::test]
async fn handshakes_refused_for_their_origin_are_counted() {
    let server = Server::start().await;
    assert_eq!(
        Client::try_connect(server.addr, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let m = server.metrics().await;
    assert_eq!(
        m.get(
            "meshchat_connections_refused_total",
            &[("reason", "origin")]
        ),
        1,
        "{m:?}"
    );
}

/// A handshake refused because the server is full is counted by that reason.
#[tokio::test]
async fn handshakes_refused_for_a_full_server_are_counted() {
    let server = Server::start_with(config_with(|c| c.limits.max_connections = 1)).await;
    let _a = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(503)
    );
    let m = server.metrics().await;
    assert_eq!(
        m.get(
            "meshchat_connections_refused_total",
            &[("reason", "server_full")]
        ),
        1,
        "{m:?}"
    );
}

/// A handshake refused for the client's connection rate is counted by that reason.
#[tokio::test]
async fn handshakes_refused_for_the_connection_rate_are_counted() {
    let server = Server::start_with(config_with(|c| {
        c.limits.connect_rate = 1;
        c.limits.connect_burst = 1;
    }))
    .await;
    let _a = Client::connect(server.addr).await;
    assert_eq!(
        Client::try_connect(server.addr, None).await.err(),
        Some(429)
    );
    let m = server.metrics().await;
    assert_eq!(
        m.get(
            "meshchat_connections_refused_total",
            &[("reason", "connect_rate")]
        ),
        1,
        "{m:?}"
    );
}

/// A server where `b` stopped reading while `a` sent it 100 candidates; returns once `a`
/// has heard that `b` was dropped.
async fn after_relays_to_a_client_that_never_reads() -> Server {
    let (server, mut a, _b_peer) = relays_to_a_client_that_never_reads().await;
    a.until_event("user-disconnected").await;
    server
}

/// Emits that fail because a client stopped reading are counted under their event, and
/// only there.
#[tokio::test]
async fn failed_emits_are_counted_by_event() {
    let server = after_relays_to_a_client_that_never_reads().await;
    let m = server.metrics().await;
    let failed = m.get("meshchat_failed_emits_total", &[("event", "ice-candidate")]);
    assert!(failed >= 1, "{m:?}");
    assert_eq!(m.sum("meshchat_failed_emits_total"), failed, "{m:?}");
}

/// Each relay that could not be delivered counts as an `undeliverable` refusal.
#[tokio::test]
async fn undeliverable_relays_are_counted_as_refusals() {
    let server = after_relays_to_a_client_that_never_reads().await;
    let m = server.metrics().await;
    assert_eq!(
        m.get("meshchat_refusals_total", &[("reason", "undeliverable")]),
        m.get("meshchat_failed_emits_total", &[("event", "ice-candidate")]),
        "{m:?}"
    );
}

/// A server whose metrics need the bearer token `s3cret-token`.
async fn server_with_a_metrics_token() -> Server {
    Server::start_with(config_with(|c| {
        c.ops.metrics_token = Some("s3cret-token".parse().unwrap());
    }))
    .await
}

/// With METRICS_TOKEN set, a request without the right bearer token gets 401 and no
/// metrics.
#[tokio::test]
async fn without_the_metrics_token_metrics_are_refused() {
    let server = server_with_a_metrics_token().await;
    for auth in [None, Some("Bearer wrong"), Some("s3cret-token")] {
        let mut request = http().get(server.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{auth:?}");
        assert!(
            !response.text().await.unwrap().contains("meshchat_"),
            "{auth:?}"
        );
    }
}

/// With METRICS_TOKEN set, the right bearer token gets the metrics, whatever the request's
/// Origin: the Socket.IO Origin gate does not apply to `/metrics`.
#[tokio::test]
async fn the_metrics_token_gets_the_metrics_whatever_the_origin() {
    let server = server_with_a_metrics_token().await;
    let response = http()
        .get(server.url("/metrics"))
        .header("authorization", "Bearer s3cret-token")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let m = Metrics::parse(&response.text().await.unwrap());
    assert_eq!(m.get("meshchat_connected_sockets", &[]), 0);
}

/// Every TURN credential handed out (one per `GET /api/rtc-config`) is counted.
#[tokio::test]
async fn turn_credentials_issued_are_counted() {
    let server = Server::start_with(config_with(|c| {
        c.ice.turn_secret = Some("s".parse().unwrap());
        c.ice.turn_urls = vec!["turn:turn.example:3478".into()];
    }))
    .await;
    let issued = |m: Metrics| m.get("meshchat_turn_credentials_total", &[]);
    assert_eq!(issued(server.metrics().await), 0);
    for _ in 0..2 {
        let config = http()
            .get(server.url("/api/rtc-config"))
            .send()
            .await
            .unwrap();
        assert_eq!(config.status(), 200);
        let config: Value = serde_json::from_str(&config.text().await.unwrap()).unwrap();
        assert!(config["iceServers"][0]["username"].is_string(), "{config}");
    }
    assert_eq!(issued(server.metrics().await), 2);
}

/// The test harness's `/metrics` reader finds a sample by name and labels in any order,
/// and a label set must match exactly.
#[test]
fn the_metrics_reader_finds_samples_by_name_and_labels() {
    let page = "# TYPE x counter\n\
        x_total 3\n\
        y{a=\"1\",b=\"q\\\"}\"} 4\n\
        y{b=\"z\",a=\"1\"} 5\n\
        # EOF\n";
    let m = Metrics::parse(page);
    assert_eq!(m.value("x_total", &[]), Some(3));
    assert_eq!(m.value("x", &[]), None);
    assert_eq!(m.get("y", &[("a", "1"), ("b", "q\"}")]), 4);
    assert_eq!(m.get("y", &[("a", "1"), ("b", "z")]), 5);
    assert_eq!(m.value("y", &[("a", "1")]), None);
    assert_eq!(m.sum("y"), 9);
}

/// Clients that open the namespace and hang up at once, racing the server's CONNECT ack,
/// leave `meshchat_connected_sockets` at zero once they are gone: a socket counts only
/// once its ack is out, and every counted one is uncounted when it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_hang_up_during_the_connect_ack_leave_no_count() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::start_with(config_with(|c| c.limits.connect_rate = 0)).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    for _ in 0..10 {
        let attempts = (0..50).map(|i| {
            let url = url.clone();
            async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                let open = ws.next().await.unwrap().unwrap();
                assert!(open.to_text().unwrap().starts_with('0'), "{open:?}");
                ws.send(Message::text("40")).await.unwrap();
                // Half hang up with a close frame, half just drop the TCP connection.
                if i % 2 == 0 {
                    let _ = ws.close(None).await;
                }
            }
        });
        common::within(
            "connect and hang up",
            futures_util::future::join_all(attempts),
        )
        .await;
    }
    server
        .metrics_when("no socket counted", |m| {
            m.get("meshchat_connected_sockets", &[]) == 0
        })
        .await;
}
