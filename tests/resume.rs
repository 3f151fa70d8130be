//! Resume: a client that was handed a token in a create/join ack and presents it in the
//! `CONNECT` auth after its transport dropped gets its peer id and rooms back, with nobody
//! told it left; bad tokens are refused and the client is a new peer; clients that never
//! asked for an ack keep the prompt leave.

mod common;

use std::time::Duration;

use common::{Client, Server, config_with, within};
use serde_json::{Value, json};

/// A server whose resume grace window is `grace_ms`.
async fn server_with_grace(grace_ms: u64) -> Server {
    Server::start_with(config_with(|c| c.resume.resume_grace_ms = grace_ms)).await
}

/// `a` creates a room asking for an ack, `b` joins it without one. Returns the room, a's
/// peer id and resume token, and b's peer id.
async fn room_of(a: &mut Client, b: &mut Client) -> (String, String, String, String) {
    let ack = a.emit_ack("create-room", &[]).await;
    let room = ack[0]["roomId"].as_str().unwrap().to_owned();
    let a_peer = ack[0]["peerId"].as_str().unwrap().to_owned();
    let token = ack[0]["resume"]
        .as_str()
        .expect("the ack carries a resume token")
        .to_owned();
    a.expect_event("room-created").await;
    b.emit("join-room", &[Value::from(room.clone())]);
    let b_peer = a.expect_event("new-user-joined").await[0]
        .as_str()
        .unwrap()
        .to_owned();
    (room, a_peer, token, b_peer)
}

/// The `resume-refused` reason a client presenting `token` is told.
async fn refused(server: &Server, token: &str) -> (Client, String) {
    let mut c = Client::connect_with_auth(server.addr, json!({ "resume": token })).await;
    let body = c.expect_event("resume-refused").await;
    let reason = body[0]["reason"].as_str().unwrap().to_owned();
    assert!(body[0]["error"].is_string(), "{body:?}");
    (c, reason)
}

/// After its transport drops, a client presenting its token gets its peer id and room back;
/// the other member hears neither a leave nor a join, and relays work both ways after.
#[tokio::test]
async fn a_resumed_client_keeps_its_peer_id_and_room_unnoticed() {
    let server = server_with_grace(500).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (room, a_peer, token, b_peer) = room_of(&mut a, &mut b).await;
    a.kill_transport();

    let mut a = Client::connect_with_auth(server.addr, json!({ "resume": token })).await;
    let resumed = a.expect_event("resumed").await;
    assert_eq!(resumed[0]["peerId"], Value::from(a_peer.clone()));
    assert_eq!(resumed[0]["rooms"], json!([room]));
    let fresh = resumed[0]["resume"].as_str().expect("a fresh token");

    // Past the grace window: the old connection's hold ended without a word.
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.emit(
        "rtc-offer",
        &[Value::from(a_peer.clone()), json!({"sdp": "to a"})],
    );
    assert_eq!(
        a.expect_event("rtc-offer").await,
        [Value::from(b_peer.clone()), json!({"sdp": "to a"})]
    );
    a.emit("rtc-answer", &[Value::from(b_peer), json!({"sdp": "to b"})]);
    // b's first event since a dropped is this answer: no user-disconnected, no join.
    assert_eq!(
        b.expect_event("rtc-answer").await,
        [Value::from(a_peer.clone()), json!({"sdp": "to b"})]
    );

    // The fresh token works for the next drop as well.
    a.kill_transport();
    let mut a = Client::connect_with_auth(server.addr, json!({ "resume": fresh })).await;
    assert_eq!(
        a.expect_event("resumed").await[0]["peerId"],
        Value::from(a_peer)
    );
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.get("meshchat_resumes_total", &[("outcome", "resumed")]),
        2
    );
}

/// A forged or tampered token is refused as `resume_invalid`, and the client carries on as
/// a new peer.
#[tokio::test]
async fn a_forged_token_is_refused() {
    let server = server_with_grace(5_000).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (_room, a_peer, token, _b_peer) = room_of(&mut a, &mut b).await;
    let mut tampered = token.into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for forged in ["not-a-token", tampered.as_str()] {
        let (mut c, reason) = refused(&server, forged).await;
        assert_eq!(reason, "resume_invalid", "{forged}");
        let ack = c.emit_ack("create-room", &[]).await;
        assert_eq!(ack[0]["created"], true);
    }
    // Nobody in the room heard anything of it.
    b.emit("rtc-offer", &[Value::from(a_peer), json!({})]);
    assert_eq!(a.expect_event("rtc-offer").await[1], json!({}));
    let metrics = server.metrics().await;
    let refused = [("outcome", "resume_invalid")];
    assert_eq!(metrics.get("meshchat_resumes_total", &refused), 2);
    assert_eq!(metrics.sum("meshchat_resumes_total"), 2);
}

/// A genuine token past its expiry is refused as `resume_expired`.
#[tokio::test]
async fn an_expired_token_is_refused() {
    let server = Server::start_with(config_with(|c| {
        c.resume.resume_grace_ms = 30_000;
        c.resume.resume_ttl_secs = 1;
    }))
    .await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (_room, _a_peer, token, _b_peer) = room_of(&mut a, &mut b).await;
    a.kill_transport();
    // Expiry is in whole seconds: valid until the end of the second after the next.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (_c, reason) = refused(&server, &token).await;
    assert_eq!(reason, "resume_expired");
}

/// The token of a peer whose socket is still connected is refused as `resume_in_use`, and
/// the connected socket carries on undisturbed.
#[tokio::test]
async fn the_token_of_a_live_socket_is_refused() {
    let server = server_with_grace(5_000).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (_room, a_peer, token, b_peer) = room_of(&mut a, &mut b).await;
    let (_c, reason) = refused(&server, &token).await;
    assert_eq!(reason, "resume_in_use");
    b.emit("rtc-offer", &[Value::from(a_peer), json!({"still": "a"})]);
    assert_eq!(
        a.expect_event("rtc-offer").await,
        [Value::from(b_peer), json!({"still": "a"})]
    );
}

/// A client that does not come back within the grace window is announced as gone once; its
/// token is then refused as `resume_gone`.
#[tokio::test]
async fn a_client_that_does_not_return_is_announced_once_after_the_grace_window() {
    let server = server_with_grace(300).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (room, a_peer, token, _b_peer) = room_of(&mut a, &mut b).await;
    a.kill_transport();
    assert_eq!(
        b.expect_event("user-disconnected").await,
        [Value::from(a_peer)]
    );
    let (_c, reason) = refused(&server, &token).await;
    assert_eq!(reason, "resume_gone");
    // b hears nothing more of a: its next event is one it provokes now.
    let d = Client::connect(server.addr).await;
    d.emit("join-room", &[Value::from(room)]);
    b.expect_event("new-user-joined").await;
}

/// A reference-style client (no ack, no auth) still has its leave told at once, however
/// long the grace window; so does a client with a token that disconnects on purpose.
#[tokio::test]
async fn clients_without_a_token_or_that_say_goodbye_leave_at_once() {
    let server = server_with_grace(60_000).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    let (room, a_peer, _token, b_peer) = room_of(&mut a, &mut b).await;
    b.kill_transport();
    let told = tokio::time::timeout(Duration::from_secs(3), a.expect_event("user-disconnected"));
    assert_eq!(told.await.expect("a prompt leave"), [Value::from(b_peer)]);

    let mut c = Client::connect(server.addr).await;
    c.emit("join-room", &[Value::from(room)]);
    a.expect_event("new-user-joined").await;
    a.disconnect();
    let told = tokio::time::timeout(Duration::from_secs(3), c.expect_event("user-disconnected"));
    assert_eq!(told.await.expect("a prompt leave"), [Value::from(a_peer)]);
}

/// With `RESUME_GRACE_MS=0` acks carry no token and a token is refused as
/// `resume_unavailable`.
#[tokio::test]
async fn a_zero_grace_window_turns_resume_off() {
    let server = server_with_grace(0).await;
    let mut a = Client::connect(server.addr).await;
    let ack = a.emit_ack("create-room", &[]).await;
    assert!(ack[0].get("resume").is_none(), "{ack:?}");
    let (_c, reason) = within("refusal", refused(&server, "whatever")).await;
    assert_eq!(reason, "resume_unavailable");
}
