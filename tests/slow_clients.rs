//! Clients that would hold the server's resources: one that never reads what it is sent,
//! a connection left idle or sending its request head too slowly, and an oversized head.

mod common;

use common::{Server, config_with, relays_to_a_client_that_never_reads, within};
use serde_json::json;

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
