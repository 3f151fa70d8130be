//! Checks on every Socket.IO HTTP request before the Engine.IO layer sees it (the Origin
//! allow-list, the connection cap and the per-IP connection rate), and the per-IP rate of
//! `GET /api/rtc-config`, which hands out TURN credentials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use super::engineio::EngineIo;
use super::rtc_config;
use crate::config::LimitsConfig;
use crate::limits::ConnectLimiter;
use crate::metrics::Metrics;

/// The gate's settings and counters. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    /// `ALLOWED_ORIGINS`, trimmed and lowercased once.
    allowed_origins: Arc<[String]>,
    any_origin: bool,
    /// `TRUST_PROXY` and `MAX_CONNECTIONS` are read per request.
    config: Arc<LimitsConfig>,
    connect: ConnectLimiter,
    /// RTC configurations per client IP: each mints TURN credentials.
    rtc_config: ConnectLimiter,
    metrics: Arc<Metrics>,
}

impl Gate {
    pub(crate) fn new(config: &LimitsConfig, metrics: Arc<Metrics>) -> Self {
        let origins: Vec<String> = config
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            any_origin: origins.iter().any(|o| o == "*"),
            allowed_origins: origins.into(),
            connect: ConnectLimiter::new(config),
            rtc_config: ConnectLimiter::new(config),
            config: Arc::new(config.clone()),
            metrics,
        }
    }

    /// Whether a request with these headers may talk to Socket.IO. Browsers always send
    /// Origin on websocket and cross-origin requests; other clients send none and are not
    /// a cross-site risk.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        if self.any_origin || self.allowed_origins.contains(&origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
        else {
            return false;
        };
        // Same origin: the page was served by this host (the scheme may differ behind a
        // TLS-terminating proxy).
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        let hostname = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.split(':').next().unwrap_or(""),
        };
        matches!(hostname, "localhost" | "127.0.0.1" | "::1")
    }

    fn refused(&self, reason: &'static str) {
        self.metrics.connection_refused(reason);
    }

    fn peer_ip(&self, req: &Request) -> Option<IpAddr> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        self.client_ip(req.headers(), peer)
    }

    /// The client's IP: the peer address, or the proxy's header when trusted.
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if self.config.trust_proxy {
            let header_ip = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    // The right-most entry was added by our own proxy; earlier ones come
                    // from the client and can be forged.
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|v| v.trim().parse().ok())
            };
            if let Some(ip) = header_ip("fly-client-ip").or_else(|| header_ip("x-forwarded-for")) {
                return Some(ip);
            }
        }
        peer
    }
}

/// Axum middleware: refuses Socket.IO requests from foreign origins, new sessions over
/// the connection cap or the caller's connection rate, and RTC configurations over the
/// caller's rate.
pub(crate) async fn admit(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == rtc_config::PATH {
        if let Some(ip) = gate.peer_ip(&req)
            && let Err(wait) = gate.rtc_config.check(ip)
        {
            debug!(%ip, "rtc-config rate exceeded");
            gate.refused("rtc_config_rate");
            return too_many(wait, "too many requests");
        }
        return next.run(req).await;
    }
    let handshake = match EngineIo::of(req.uri()) {
        EngineIo::Other => return next.run(req).await,
        kind => kind == EngineIo::Handshake,
    };
    if !gate.origin_allowed(req.headers()) {
        debug!(origin = ?req.headers().get(header::ORIGIN), "origin refused");
        gate.refused("origin");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    // Only a handshake (no session id yet) opens a new connection.
    if handshake {
        let connected = usize::try_from(gate.metrics.connected.get()).unwrap_or(0);
        if connected >= gate.config.max_connections {
            debug!("connection cap reached");
            gate.refused("server_full");
            return (StatusCode::SERVICE_UNAVAILABLE, "server full").into_response();
        }
        if let Some(ip) = gate.peer_ip(&req)
            && let Err(wait) = gate.connect.check(ip)
        {
            debug!(%ip, "connection rate exceeded");
            gate.refused("connect_rate");
            return too_many(wait, "too many connections");
        }
    }
    next.run(req).await
}

/// 429, with `Retry-After` in whole seconds (at least 1) from the bucket's wait.
fn too_many(wait: std::time::Duration, text: &'static str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let retry_after = HeaderValue::from(seconds.max(1));
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after)],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn gate(args: &[&str]) -> Gate {
        let config = crate::config::config_from(args).unwrap();
        Gate::new(&config.limits, Arc::default())
    }

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn origins_same_host_localhost_and_listed_pass_others_do_not() {
        let g = gate(&[
            "--allowed-origins",
            "https://chat.example.com,https://b.example",
        ]);
        let host = "meshchat.fly.dev";
        for ok in [
            None,
            Some("https://meshchat.fly.dev"),
            Some("http://localhost:5173"),
            Some("http://127.0.0.1:3000"),
            Some("http://[::1]:8080"),
            Some("https://chat.example.com"),
            Some("https://B.example"),
        ] {
            assert!(g.origin_allowed(&headers(ok, host)), "{ok:?} should pass");
        }
        for bad in [
            "https://evil.example",
            "https://meshchat.fly.dev.evil.example",
            "https://localhost.evil.example",
            "null",
            "file://",
        ] {
            assert!(
                !g.origin_allowed(&headers(Some(bad), host)),
                "{bad:?} should fail"
            );
        }
        assert!(
            gate(&["--allowed-origins", "*"]).origin_allowed(&headers(Some("https://x.y"), host))
        );
    }

    #[test]
    fn proxy_headers_count_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4"),
        );
        let peer = Some(IpAddr::from([10, 0, 0, 9]));
        assert_eq!(gate(&[]).client_ip(&h, peer), peer);
        let trusted = gate(&["--trust-proxy"]);
        assert_eq!(
            trusted.client_ip(&h, peer),
            Some(IpAddr::from([1, 2, 3, 4]))
        );
        h.insert("fly-client-ip", HeaderValue::from_static("5.6.7.8"));
        assert_eq!(
            trusted.client_ip(&h, peer),
            Some(IpAddr::from([5, 6, 7, 8]))
        );
    }
}
