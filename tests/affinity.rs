//! Session affinity on fly.io: the headers that keep a Socket.IO session's requests on the
//! machine that holds it, over real HTTP against the real app.

mod common;

use clap::Parser;
use common::Server;
use meshchat::Config;
use serde_json::Value;

async fn on_machine(id: &str) -> Server {
    Server::start_with(Config::parse_from(["meshchat", "--fly-machine-id", id])).await
}

/// Opens a long-polling session; returns its URL (with `sid`) and the handshake response.
async fn handshake(server: &Server, cookie: Option<&str>) -> (String, reqwest::Response) {
    let base = server.url("/socket.io/?EIO=4&transport=polling");
    let mut request = reqwest::Client::new().get(&base);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    (base, response)
}

async fn session(server: &Server) -> String {
    let (base, response) = handshake(server, None).await;
    let text = response.text().await.unwrap();
    let open: Value = serde_json::from_str(&text[1..]).unwrap();
    format!("{base}&sid={}", open["sid"].as_str().unwrap())
}

/// A handshake pins the browser to this machine with a cookie only Socket.IO sees.
#[tokio::test]
async fn a_handshake_sets_the_machine_cookie() {
    let server = on_machine("m1").await;
    let (_, response) = handshake(&server, None).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        "meshchat_machine=m1; Path=/socket.io; HttpOnly; Secure; SameSite=Lax"
    );

    // A websocket-only client's handshake is the upgrade itself.
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (_ws, response) = tokio::time::timeout(common::WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 101);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("meshchat_machine=m1;")
    );
}

/// A session's request that reached another machine is replayed to the one that holds
/// it, and not acted on here; a replayed request is served, never replayed again.
#[tokio::test]
async fn a_session_request_on_the_wrong_machine_is_replayed_to_its_own() {
    let server = on_machine("m1").await;
    let url = session(&server).await;
    let http = reqwest::Client::new();

    let here = http
        .get(&url)
        .header("cookie", "meshchat_machine=m1")
        .send()
        .await
        .unwrap();
    assert_eq!(here.status(), 200);
    assert!(here.headers().get("fly-replay").is_none());

    let elsewhere = http
        .post(&url)
        .header("cookie", "theme=dark; meshchat_machine=m2")
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 409);
    assert_eq!(elsewhere.headers()["fly-replay"], "instance=m2");
    assert!(elsewhere.headers().get("set-cookie").is_none());

    let replayed = http
        .post(&url)
        .header("cookie", "meshchat_machine=m2")
        .header("fly-replay-src", "instance=m2;region=ams;t=1")
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    assert!(replayed.headers().get("fly-replay").is_none());

    // Only the replayed "40" reached Socket.IO: one namespace connect, acked once.
    let polled = http.get(&url).send().await.unwrap().text().await.unwrap();
    let packets: Vec<&str> = polled.split('\x1e').collect();
    assert_eq!(packets.len(), 1, "{polled}");
    assert!(packets[0].starts_with("40{"), "{polled}");
}

/// A new session from a browser pinned elsewhere prefers that machine, so all its tabs
/// share one machine and one cookie.
#[tokio::test]
async fn a_new_session_prefers_the_browsers_machine() {
    let server = on_machine("m1").await;
    let (_, response) = handshake(&server, Some("meshchat_machine=m2")).await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["fly-replay"], "prefer_instance=m2");
    // A malformed cookie is ignored: served here and re-pinned.
    let (_, response) = handshake(&server, Some("meshchat_machine=m2!")).await;
    assert_eq!(response.status(), 200);
    let (_, response) = handshake(&server, Some("meshchat_machine=a b")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("meshchat_machine=m1;")
    );
}

/// Off fly (no machine id), and on every other path, nothing changes.
#[tokio::test]
async fn nothing_changes_off_fly_or_outside_socket_io() {
    let server = Server::start().await;
    let (_, response) = handshake(&server, Some("meshchat_machine=m2")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("fly-replay").is_none());

    let server = on_machine("m1").await;
    for path in ["/healthz", "/metrics", "/"] {
        let response = reqwest::Client::new()
            .get(server.url(path))
            .header("cookie", "meshchat_machine=m2")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().get("fly-replay").is_none(), "{path}");
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
    }
}

/// A malformed machine id is refused at startup.
#[test]
fn a_malformed_machine_id_is_refused() {
    for bad in ["", "a b", "x;y", &"a".repeat(65)] {
        assert!(
            Config::try_parse_from(["meshchat", "--fly-machine-id", bad]).is_err(),
            "{bad:?}"
        );
    }
}
