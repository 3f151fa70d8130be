//! Session affinity on fly.io: the headers that keep a Socket.IO session's requests on the
//! machine that holds it, over real HTTP against the real app.

mod common;

use clap::Parser;
use common::{POLLING, Server, WAIT, config_with, http, polling_session, within};
use meshchat::Config;

/// A server on the fly machine `id`.
async fn on_machine(id: &str) -> Server {
    Server::start_with(config_with(|c| c.ops.fly_machine_id = Some(id.into()))).await
}

/// A long-polling handshake, with `cookie` if given.
async fn handshake(server: &Server, cookie: Option<&str>) -> reqwest::Response {
    let mut request = http().get(server.url(POLLING));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// Opens a long-polling session; returns its URL.
async fn session(server: &Server) -> String {
    let response = handshake(server, None).await;
    polling_session(server, response).await
}

/// Posts the Socket.IO namespace connect (`40`) to a session with these headers.
async fn post_connect(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http().post(url).body("40");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Posts the namespace connect to a session pinned to machine `m2`, as fly's proxy replays
/// it here.
async fn post_connect_replayed_from_m2(url: &str) -> reqwest::Response {
    let headers = [
        ("cookie", "meshchat_machine=m2"),
        ("fly-replay-src", "instance=m2;region=ams;t=1"),
    ];
    post_connect(url, &headers).await
}

/// A long-polling handshake pins the browser to this machine with a cookie only
/// Socket.IO sees.
#[tokio::test]
async fn a_polling_handshake_sets_the_machine_cookie() {
    let server = on_machine("m1").await;
    let response = handshake(&server, None).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        "meshchat_machine=m1; Path=/socket.io; HttpOnly; Secure; SameSite=Lax"
    );
}

/// A websocket-only client's handshake is the upgrade itself, and it gets the cookie too.
#[tokio::test]
async fn a_websocket_handshake_sets_the_machine_cookie() {
    let server = on_machine("m1").await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (_ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
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

/// A session's request that carries this machine's cookie is served here.
#[tokio::test]
async fn a_session_request_pinned_here_is_served() {
    let server = on_machine("m1").await;
    let url = session(&server).await;
    let here = http()
        .get(&url)
        .header("cookie", "meshchat_machine=m1")
        .send()
        .await
        .unwrap();
    assert_eq!(here.status(), 200);
    assert!(here.headers().get("fly-replay").is_none());
}

/// A session's request pinned to another machine is answered with a replay to that
/// machine, and re-pins nothing.
#[tokio::test]
async fn a_session_request_pinned_elsewhere_is_replayed_to_its_machine() {
    let server = on_machine("m1").await;
    let url = session(&server).await;
    let elsewhere = post_connect(&url, &[("cookie", "theme=dark; meshchat_machine=m2")]).await;
    assert_eq!(elsewhere.status(), 409);
    assert_eq!(elsewhere.headers()["fly-replay"], "instance=m2");
    assert!(elsewhere.headers().get("set-cookie").is_none());
}

/// A request fly already replayed here is served, never replayed again.
#[tokio::test]
async fn a_replayed_request_is_served_and_not_replayed_again() {
    let server = on_machine("m1").await;
    let url = session(&server).await;
    let replayed = post_connect_replayed_from_m2(&url).await;
    assert_eq!(replayed.status(), 200);
    assert!(replayed.headers().get("fly-replay").is_none());
}

/// A request sent on to another machine is not acted on here: of two namespace connects,
/// the one replayed away and the one served, Socket.IO acks only one.
#[tokio::test]
async fn a_request_replayed_elsewhere_is_not_acted_on_here() {
    let server = on_machine("m1").await;
    let url = session(&server).await;
    let elsewhere = post_connect(&url, &[("cookie", "meshchat_machine=m2")]).await;
    assert_eq!(elsewhere.status(), 409);
    let replayed = post_connect_replayed_from_m2(&url).await;
    assert_eq!(replayed.status(), 200);

    // Poll until the connect ack comes: besides heartbeats (`2`), it is all there is.
    let packets = within("the connect ack", async {
        let mut packets = Vec::new();
        while packets.is_empty() {
            let polled = http().get(&url).send().await.unwrap().text().await.unwrap();
            packets.extend(
                polled
                    .split('\x1e')
                    .filter(|p| *p != "2")
                    .map(str::to_owned),
            );
        }
        packets
    })
    .await;
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert!(packets[0].starts_with("40{"), "{packets:?}");
}

/// A new session from a browser pinned elsewhere prefers that machine, so all its tabs
/// share one machine and one cookie.
#[tokio::test]
async fn a_new_session_prefers_the_browsers_machine() {
    let server = on_machine("m1").await;
    let response = handshake(&server, Some("meshchat_machine=m2")).await;
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()["fly-replay"], "prefer_instance=m2");
}

/// A malformed machine cookie is ignored: the session is served here and re-pinned.
#[tokio::test]
async fn a_malformed_machine_cookie_is_ignored_and_replaced() {
    let server = on_machine("m1").await;
    for cookie in ["meshchat_machine=m2!", "meshchat_machine=a b"] {
        let response = handshake(&server, Some(cookie)).await;
        assert_eq!(response.status(), 200, "{cookie}");
        assert!(
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("meshchat_machine=m1;"),
            "{cookie}"
        );
    }
}

/// Off fly (no machine id), a handshake sets no cookie and a pinned one is never
/// replayed.
#[tokio::test]
async fn off_fly_nothing_is_pinned_or_replayed() {
    let server = Server::start().await;
    let response = handshake(&server, Some("meshchat_machine=m2")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("fly-replay").is_none());
}

/// Outside Socket.IO, requests are never pinned or replayed.
#[tokio::test]
async fn paths_outside_socket_io_are_never_pinned_or_replayed() {
    let server = on_machine("m1").await;
    for path in ["/healthz", "/metrics", "/"] {
        let response = http()
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
