//! `GET /metrics` read after driving real traffic through the server.

mod common;

use clap::Parser;
use common::{Client, Metrics, Server, http, join_and_stop_reading, pair};
use meshchat::Config;
use serde_json::{Value, json};

/// The scraped page, checked to be in the OpenMetrics text format.
async fn scrape(server: &Server) -> String {
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/openmetrics-text"));
    let body = response.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of one series (name with its labels, exactly as exposed).
fn value(body: &str, series: &str) -> Option<u64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn get(body: &str, series: &str) -> u64 {
    value(body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

/// Sockets, rooms, room sizes, relays by event and refusals by reason match the traffic,
/// and the gauges go down when a client leaves.
#[tokio::test]
async fn traffic_shows_up_in_the_metrics() {
    let server = Server::start().await;
    let body = scrape(&server).await;
    assert_eq!(get(&body, "meshchat_connected_sockets"), 0);
    assert_eq!(get(&body, "meshchat_rooms"), 0);

    let (mut a, mut b, _room, b_peer) = pair(&server).await;
    let mut c = Client::connect(server.addr).await;
    c.create_room().await;
    for i in 0..2 {
        a.emit(
            "rtc-offer",
            &[Value::from(b_peer.clone()), json!({ "i": i })],
        );
        b.expect_event("rtc-offer").await;
    }
    a.emit("ice-candidate", &[Value::from(b_peer.clone()), json!("")]);
    b.expect_event("ice-candidate").await;
    // c shares no room with b; the ack says the request was handled.
    let refused = c
        .emit_ack("rtc-offer", &[Value::from(b_peer.clone()), json!({})])
        .await;
    assert!(refused[0]["error"].is_string());
    c.emit_ack("no-such-event", &[]).await;
    c.emit_ack("rtc-answer", &[]).await;

    let body = scrape(&server).await;
    for (series, want) in [
        ("meshchat_connected_sockets", 3),
        ("meshchat_rooms", 2),
        ("meshchat_rooms_by_size{members=\"1\"}", 1),
        ("meshchat_rooms_by_size{members=\"2\"}", 1),
        ("meshchat_rooms_by_size{members=\"3\"}", 0),
        ("meshchat_relayed_total{event=\"rtc-offer\"}", 2),
        ("meshchat_relayed_total{event=\"ice-candidate\"}", 1),
        ("meshchat_refusals_total{reason=\"not_in_your_rooms\"}", 1),
        ("meshchat_refusals_total{reason=\"unknown_event\"}", 1),
        ("meshchat_refusals_total{reason=\"missing_peer_id\"}", 1),
        ("meshchat_rate_limited_total", 0),
        ("meshchat_floods_total", 0),
    ] {
        assert_eq!(get(&body, series), want, "{series} in\n{body}");
    }
    assert_eq!(
        value(&body, "meshchat_relayed_total{event=\"rtc-answer\"}"),
        None
    );

    b.disconnect();
    a.expect_event("user-disconnected").await;
    let body = scrape(&server).await;
    assert_eq!(get(&body, "meshchat_connected_sockets"), 2);
    assert_eq!(get(&body, "meshchat_rooms_by_size{members=\"1\"}"), 2);
    assert_eq!(get(&body, "meshchat_rooms_by_size{members=\"2\"}"), 0);
}

/// Rate-limited events, floods and handshakes refused by the gate are counted.
#[tokio::test]
async fn rate_limits_floods_and_gate_refusals_are_counted() {
    let server = Server::start_with(Config {
        signal_rate: 5,
        signal_burst: 10,
        flood_tolerance: 20,
        ..Config::defaults()
    })
    .await;
    let (a, mut b, _room, b_peer) = pair(&server).await;
    for i in 0..200 {
        a.emit(
            "ice-candidate",
            &[Value::from(b_peer.clone()), json!({ "i": i })],
        );
    }
    loop {
        let (name, _) = b.expect_any().await;
        if name == "user-disconnected" {
            break;
        }
    }
    assert_eq!(
        Client::try_connect(server.addr, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );

    let body = scrape(&server).await;
    let limited = get(&body, "meshchat_rate_limited_total");
    assert!(limited >= 20, "{limited}");
    assert_eq!(
        get(&body, "meshchat_refusals_total{reason=\"rate_limited\"}"),
        limited
    );
    assert_eq!(get(&body, "meshchat_floods_total"), 1);
    assert_eq!(
        get(
            &body,
            "meshchat_connections_refused_total{reason=\"origin\"}"
        ),
        1
    );
    let relayed = get(&body, "meshchat_relayed_total{event=\"ice-candidate\"}");
    assert!((10..=15).contains(&relayed), "{relayed}");
}

/// Emits that fail because a client stopped reading are counted by event.
#[tokio::test]
async fn failed_emits_are_counted_by_event() {
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
        let (name, _) = a.expect_any().await;
        if name == "user-disconnected" {
            break;
        }
    }
    let body = scrape(&server).await;
    let failed = get(
        &body,
        "meshchat_failed_emits_total{event=\"ice-candidate\"}",
    );
    assert!(failed >= 1, "{body}");
    assert_eq!(
        failed,
        Metrics::parse(&body).sum("meshchat_failed_emits_total")
    );
    assert_eq!(
        get(&body, "meshchat_refusals_total{reason=\"undeliverable\"}"),
        failed
    );
}

/// With METRICS_TOKEN set, only requests bearing it get the metrics. The Origin gate of
/// Socket.IO does not apply to `/metrics`.
#[tokio::test]
async fn the_metrics_token_is_required_when_set() {
    let server = Server::start_with(Config::parse_from([
        "meshchat",
        "--metrics-token",
        "s3cret-token",
    ]))
    .await;
    let http = reqwest::Client::new();
    let url = server.url("/metrics");
    for auth in [None, Some("Bearer wrong"), Some("s3cret-token")] {
        let mut request = http.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert!(!response.text().await.unwrap().contains("meshchat_"));
    }
    let response = http
        .get(&url)
        .header("authorization", "Bearer s3cret-token")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("meshchat_connected_sockets 0")
    );
}

/// Every TURN credential handed out (one per `GET /api/rtc-config`) is counted.
#[tokio::test]
async fn turn_credentials_issued_are_counted() {
    let server = Server::start_with(Config::parse_from([
        "meshchat",
        "--turn-secret",
        "s",
        "--turn-urls",
        "turn:turn.example:3478",
    ]))
    .await;
    assert_eq!(
        get(&scrape(&server).await, "meshchat_turn_credentials_total"),
        0
    );
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
    assert_eq!(
        get(&scrape(&server).await, "meshchat_turn_credentials_total"),
        2
    );
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
