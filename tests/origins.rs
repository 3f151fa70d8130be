//! What a browser page may do: which origins may open Socket.IO connections, and the
//! security headers on every response.

mod common;

use common::{Client, POLLING, Server, config_with, http};

/// A Socket.IO handshake with `origin`, over websocket or long-polling: its HTTP status.
async fn handshake_status(server: &Server, websocket: bool, origin: &str) -> u16 {
    if websocket {
        match Client::try_connect(server.addr, Some(origin)).await {
            Ok(_) => 101,
            Err(status) => status,
        }
    } else {
        let response = http()
            .get(server.url(POLLING))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

/// A server that allows one extra origin, `https://chat.example.com`.
async fn server_allowing_one_origin() -> Server {
    Server::start_with(config_with(|c| {
        c.limits.allowed_origins = vec!["https://chat.example.com".into()]
    }))
    .await
}

/// A foreign origin may not open a Socket.IO connection, on either transport.
#[tokio::test]
async fn a_foreign_origin_is_refused_on_both_transports() {
    let server = server_allowing_one_origin().await;
    for websocket in [true, false] {
        assert_eq!(
            handshake_status(&server, websocket, "https://evil.example").await,
            403,
            "websocket: {websocket}"
        );
    }
}

/// Asserts that a handshake from `origin` succeeds on both transports.
async fn assert_origin_may_connect(server: &Server, origin: &str) {
    for (websocket, ok) in [(true, 101), (false, 200)] {
        assert_eq!(
            handshake_status(server, websocket, origin).await,
            ok,
            "{origin}, websocket: {websocket}"
        );
    }
}

/// Origins listed in ALLOWED_ORIGINS may connect, on either transport.
#[tokio::test]
async fn a_listed_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, "https://chat.example.com").await;
}

/// The page's own origin may connect, on either transport.
#[tokio::test]
async fn the_pages_own_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, &format!("http://{}", server.addr)).await;
}

/// Localhost origins (a dev server on another port) may connect, on either transport.
#[tokio::test]
async fn a_localhost_origin_may_connect() {
    let server = server_allowing_one_origin().await;
    assert_origin_may_connect(&server, "http://localhost:5173").await;
}

/// Every response carries the security headers; the CSP allows only our own origin.
#[tokio::test]
async fn pages_carry_security_headers() {
    let server = Server::start().await;
    for path in ["/", "/healthz"] {
        let res = http().get(server.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains('*') && !csp.contains("unsafe"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}
