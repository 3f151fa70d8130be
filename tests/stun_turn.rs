//! The built-in STUN server and TURN relay over real UDP on loopback: Binding requests
//! answered with the sender's address, junk never answered, and the relay checked with
//! coturn's own client `turnutils_uclient`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use common::uclient::{self, free_port};
use common::{Server, within};
use meshchat::Config;
use meshchat::turn::{TurnIssuer, credential};
use tokio::net::UdpSocket;

const SECRET: &str = "embedded-test-secret";
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// A server whose STUN (and, with `turn`, TURN) port is a free one on loopback.
async fn server(turn: bool, tweak: impl FnOnce(&mut Config)) -> (Server, u16) {
    let port = free_port();
    let mut config = common::config_with(|c| {
        c.ice.stun_port = port;
        c.ice.udp_host = Some("127.0.0.1".into());
    });
    if turn {
        config.ice.turn_secret = Some(SECRET.parse().unwrap());
        config.ice.turn_embedded = true;
    }
    tweak(&mut config);
    (Server::start_with(config).await, port)
}

/// A Binding request (RFC 8489 section 6): type 0x0001, no attributes.
fn binding_request(transaction: [u8; 12]) -> Vec<u8> {
    let mut packet = vec![0x00, 0x01, 0x00, 0x00];
    packet.extend_from_slice(&MAGIC_COOKIE);
    packet.extend_from_slice(&transaction);
    packet
}

/// The XOR-MAPPED-ADDRESS of a Binding success response to `transaction`, read by hand
/// so the test shares no code with the server.
fn mapped_address(response: &[u8], transaction: [u8; 12]) -> Option<SocketAddr> {
    if response.get(0..2)? != [0x01, 0x01] || response.get(4..8)? != MAGIC_COOKIE {
        return None;
    }
    if response.get(8..20)? != transaction {
        return None;
    }
    let mut at = 20;
    while at + 4 <= response.len() {
        let kind = u16::from_be_bytes([response[at], response[at + 1]]);
        let len = usize::from(u16::from_be_bytes([response[at + 2], response[at + 3]]));
        let value = response.get(at + 4..at + 4 + len)?;
        if kind == 0x0020 && value.get(1) == Some(&0x01) {
            let port = u16::from_be_bytes([value[2], value[3]]) ^ 0x2112;
            let ip: [u8; 4] = std::array::from_fn(|i| value[4 + i] ^ MAGIC_COOKIE[i]);
            return Some(SocketAddr::new(IpAddr::from(ip), port));
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// Mints credentials as `/api/rtc-config` does for the server's secret.
fn issuer() -> TurnIssuer {
    let config = common::config_with(|c| c.ice.turn_secret = Some(SECRET.parse().unwrap()));
    TurnIssuer::from_config(&config.ice).unwrap()
}

/// A `turnutils_uclient` run over UDP with credentials minted now.
async fn allocate_with_fresh_credentials(port: u16) -> uclient::Allocation {
    let creds = issuer().mint(vec![format!("turn:127.0.0.1:{port}")]);
    let (username, password) = (creds.username.unwrap(), creds.credential.unwrap());
    uclient::allocate(port, &username, &password, false).await
}

async fn client() -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap()
}

/// Sends a Binding request and returns the first datagram that comes back.
async fn bind(socket: &UdpSocket, port: u16, transaction: [u8; 12]) -> Vec<u8> {
    socket
        .send_to(&binding_request(transaction), (Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let mut buf = vec![0u8; 1500];
    let (n, _) = within("a STUN answer", socket.recv_from(&mut buf))
        .await
        .unwrap();
    buf.truncate(n);
    buf
}

/// A Binding request is answered with the address the request came from.
#[tokio::test]
async fn a_binding_request_gets_the_senders_address() {
    let (_server, port) = server(false, |_| {}).await;
    let socket = client().await;
    let transaction = *b"meshchat-tx1";
    let response = bind(&socket, port, transaction).await;
    assert_eq!(
        mapped_address(&response, transaction),
        Some(socket.local_addr().unwrap()),
        "{response:?}"
    );
}

/// Malformed, truncated and oversized datagrams get no answer, and the server keeps
/// answering: the first thing that comes back is the answer to the valid request sent
/// after them (loopback keeps the order, and the server handles datagrams in turn).
#[tokio::test]
async fn junk_gets_no_answer_and_breaks_nothing() {
    let (_server, port) = server(true, |_| {}).await;
    let socket = client().await;
    let valid = binding_request(*b"000000000000");
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        valid[..19].to_vec(),
        {
            let mut wrong_cookie = valid.clone();
            wrong_cookie[4] ^= 0xff;
            wrong_cookie
        },
        {
            let mut lying_length = valid.clone();
            lying_length[3] = 200;
            lying_length
        },
        {
            let mut attribute_past_the_end = valid.clone();
            attribute_past_the_end[3] = 8;
            attribute_past_the_end.extend_from_slice(&[0x00, 0x20, 0x00, 0xff, 1, 2, 3, 4]);
            attribute_past_the_end
        },
        vec![0x40; 1200],
        vec![0xff; 4000],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    // Every single-byte change of a valid request, and a spread of pseudo-random ones.
    for i in 0..valid.len() {
        let mut flipped = valid.clone();
        flipped[i] ^= 0x80;
        junk.push(flipped);
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..500 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = usize::try_from(seed % 64).unwrap();
        junk.push(
            seed.to_le_bytes()
                .iter()
                .cycle()
                .take(len)
                .copied()
                .collect(),
        );
    }
    let transaction = *b"after-junk!!";
    for packet in &junk {
        // Some flipped requests are still valid Binding requests (a flipped transaction id
        // bit, say); only those may be answered.
        socket
            .send_to(packet, (Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
    }
    socket
        .send_to(&binding_request(transaction), (Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, _) = within("an answer after the junk", socket.recv_from(&mut buf))
            .await
            .unwrap();
        let answer = &buf[..n];
        if mapped_address(answer, transaction).is_some() {
            break;
        }
        // Anything else must be the answer to a flipped request that is still a valid
        // Binding request: a success response whose transaction id we sent.
        let answered = junk.iter().any(|j| {
            j.len() == 20
                && j[..4] == valid[..4]
                && j[4..8] == MAGIC_COOKIE
                && answer.get(8..20) == Some(&j[8..20])
        });
        assert!(answered, "answered junk: {answer:?}");
    }
}

/// Credentials minted from the shared secret get two allocations from the embedded
/// relay, data flows between them, and `/metrics` counts the allocations and bytes.
#[tokio::test]
async fn minted_credentials_relay_data_and_the_metrics_count_it() {
    let (server, port) = server(true, |c| {
        c.ice.turn_public_ip = Some(Ipv4Addr::LOCALHOST.into())
    })
    .await;
    let run = allocate_with_fresh_credentials(port).await;
    assert!(run.relayed_everything(), "{}", run.text);
    let metrics = server
        .metrics_when("relayed bytes counted", |m| {
            m.get("meshchat_turn_relayed_bytes_total", &[]) > 0
        })
        .await;
    assert!(metrics.get("meshchat_turn_relayed_bytes_total", &[]) > 0);
    // The client ended; its allocations end when it refreshes no more, or are still
    // counted now: either way never more than the two it made.
    assert!(metrics.get("meshchat_turn_allocations", &[]) <= 2);
}

/// Expired credentials, a password from another secret, a pushed-back expiry and a
/// username that is not ours are all refused.
#[tokio::test]
async fn bad_credentials_are_refused() {
    let (server, port) = server(true, |c| {
        c.ice.turn_public_ip = Some(Ipv4Addr::LOCALHOST.into())
    })
    .await;
    let issuer = issuer();
    let urls = || vec![format!("turn:127.0.0.1:{port}")];
    let old = issuer.mint_at(urls(), SystemTime::now() - Duration::from_secs(86_400 + 60));
    let real = issuer.mint(urls());
    let (username, password) = (real.username.unwrap(), real.credential.unwrap());
    let (expiry, id) = username.split_once(':').unwrap();
    let pushed_back = format!("{}:{id}", expiry.parse::<u64>().unwrap() + 86_400);
    let cases = [
        ("expired", old.username.unwrap(), old.credential.unwrap()),
        (
            "another secret",
            username.clone(),
            credential(b"not-the-secret", &username),
        ),
        ("pushed-back expiry", pushed_back, password.clone()),
        ("not our username", "alice".to_owned(), password),
    ];
    for (case, username, password) in cases {
        let run = uclient::allocate(port, &username, &password, false).await;
        assert!(run.was_refused(), "{case}: {}", run.text);
    }
    let metrics = server.metrics().await;
    assert!(metrics.get("meshchat_turn_refusals_total", &[("reason", "expired")]) >= 1);
    assert!(
        metrics.get(
            "meshchat_turn_refusals_total",
            &[("reason", "bad_username")]
        ) >= 1
    );
    assert_eq!(metrics.get("meshchat_turn_allocations", &[]), 0);
}

/// One client address gets at most `TURN_ALLOCATIONS_PER_IP` relays at once.
#[tokio::test]
async fn allocations_past_the_per_ip_quota_are_refused() {
    let (server, port) = server(true, |c| {
        c.ice.turn_public_ip = Some(Ipv4Addr::LOCALHOST.into());
        c.ice.turn_allocations_per_ip = 1;
    })
    .await;
    // Client-to-client mode needs two allocations from this one address.
    let run = allocate_with_fresh_credentials(port).await;
    assert!(!run.relayed_everything(), "{}", run.text);
    let metrics = server.metrics().await;
    assert!(
        metrics.get("meshchat_turn_refusals_total", &[("reason", "ip_quota")]) >= 1,
        "{}",
        run.text
    );
}

/// Without `TURN_EMBEDDED` the port answers STUN only: even good credentials get no relay.
#[tokio::test]
async fn without_turn_embedded_no_relay_is_given() {
    let (_server, port) = server(false, |_| {}).await;
    let run = allocate_with_fresh_credentials(port).await;
    assert!(run.was_refused(), "{}", run.text);
}

/// Out of the box the page is told to use this STUN server, at the host it loaded from.
#[tokio::test]
async fn the_page_gets_the_built_in_stun_server_by_default() {
    let (server, port) = server(false, |_| {}).await;
    let text = common::http()
        .get(server.url("/api/rtc-config"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "iceServers": [{"urls": format!("stun:127.0.0.1:{port}")}],
            "iceTransportPolicy": "all"
        })
    );
}
