//! `GET /api/rtc-config`: the page's `RTCConfiguration`: the built-in STUN server, the
//! operator's ICE servers, and fresh TURN credentials for every request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header, uri::Authority};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Serialize;

use crate::config::{IceConfig, IceTransportPolicy};
use crate::ice::IceServer;
use crate::metrics::Metrics;
use crate::turn::TurnIssuer;

/// Where the page fetches its `RTCConfiguration`.
pub(crate) const PATH: &str = "/api/rtc-config";

/// The body: what the page passes to `new RTCPeerConnection()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RtcConfiguration {
    ice_servers: Vec<IceServer>,
    ice_transport_policy: IceTransportPolicy,
}

/// What the configuration is made of.
#[derive(Debug)]
struct Settings {
    config: IceConfig,
    /// Mints TURN credentials (`TURN_SECRET`), if configured.
    turn: Option<TurnIssuer>,
    metrics: Arc<Metrics>,
}

/// The route.
pub(crate) fn router(config: &IceConfig, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(PATH, get(rtc_config))
        .with_state(Arc::new(Settings::new(config, metrics)))
}

impl Settings {
    fn new(config: &IceConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            turn: TurnIssuer::from_config(config),
            config: config.clone(),
            metrics,
        }
    }
}

/// The built-in STUN server at `host` (`ICE_HOST` overrides it), `ICE_SERVERS` as they
/// are, then TURN credentials valid from now.
fn configuration(settings: &Settings, host: Option<&str>) -> RtcConfiguration {
    let config = &settings.config;
    let host = config.ice_host.as_deref().or(host);
    let port = config.stun_port;
    let mut ice_servers = Vec::new();
    if let Some(host) = host.filter(|_| port != 0) {
        ice_servers.push(IceServer::stun(format!("stun:{host}:{port}")));
    }
    ice_servers.extend(config.ice_servers.0.iter().cloned());
    let turn_urls = if !config.turn_urls.is_empty() {
        config.turn_urls.clone()
    } else {
        host.filter(|_| config.turn_embedded && port != 0)
            .map(|host| vec![format!("turn:{host}:{port}?transport=udp")])
            .unwrap_or_default()
    };
    if let Some(turn) = settings.turn.as_ref().filter(|_| !turn_urls.is_empty()) {
        ice_servers.push(turn.mint(turn_urls));
        settings.metrics.turn_credentials.inc();
    }
    RtcConfiguration {
        ice_servers,
        ice_transport_policy: config.ice_transport_policy,
    }
}

/// The host the page was loaded from, as browsers will resolve it (IPv6 in brackets).
fn request_host(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::HOST)?.to_str().ok()?;
    let authority: Authority = value.parse().ok()?;
    Some(authority.host().to_owned())
}

async fn rtc_config(State(settings): State<Arc<Settings>>, headers: HeaderMap) -> Response {
    let host = request_host(&headers);
    let mut response = Json(configuration(&settings, host.as_deref())).into_response();
    // Credentials may be short-lived, and the page must see a changed list on reload.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn;
    use serde_json::Value;

    const HOST: Option<&str> = Some("chat.example");

    fn settings(args: &[&str]) -> Settings {
        let config = crate::config::config_from(args).unwrap();
        Settings::new(&config.ice, Arc::default())
    }

    #[test]
    fn stun_and_turn_entries_round_trip_unchanged() {
        let text = r#"[{"urls":"stun:stun.l.google.com:19302"},
            {"urls":["turn:turn.example.com:3478?transport=udp","turns:turn.example.com:443"],
             "username":"u","credential":"p"}]"#;
        let body = serde_json::to_value(configuration(
            &settings(&["--ice-servers", text, "--stun-port", "0"]),
            HOST,
        ))
        .unwrap();
        let expected: Value = serde_json::from_str(&format!(
            r#"{{"iceServers":{text},"iceTransportPolicy":"all"}}"#
        ))
        .unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn each_configuration_gets_its_own_turn_credentials_after_the_listed_servers() {
        let s = settings(&[
            "--ice-servers",
            r#"[{"urls":"stun:s.example:3478"}]"#,
            "--turn-secret",
            "s3cret",
            "--turn-urls",
            "turn:t.example:3478",
            "--ice-transport-policy",
            "relay",
            "--stun-port",
            "0",
        ]);
        let a = serde_json::to_value(configuration(&s, HOST)).unwrap();
        let b = serde_json::to_value(configuration(&s, HOST)).unwrap();
        assert_eq!(a["iceTransportPolicy"], "relay");
        assert_eq!(
            a["iceServers"][0],
            serde_json::json!({"urls": "stun:s.example:3478"})
        );
        let turn = &a["iceServers"][1];
        assert_eq!(turn["urls"], serde_json::json!(["turn:t.example:3478"]));
        let username = turn["username"].as_str().unwrap();
        assert_eq!(
            turn["credential"].as_str().unwrap(),
            turn::credential(b"s3cret", username)
        );
        assert_ne!(
            a["iceServers"][1]["username"],
            b["iceServers"][1]["username"]
        );
        assert_eq!(s.metrics.turn_credentials.get(), 2);
    }

    #[test]
    fn by_default_the_page_gets_the_built_in_stun_server_at_its_own_host() {
        let body = serde_json::to_value(configuration(&settings(&[]), HOST)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "iceServers": [{"urls": "stun:chat.example:3478"}],
                "iceTransportPolicy": "all"
            })
        );
        let off = configuration(&settings(&["--stun-port", "0"]), HOST);
        assert!(off.ice_servers.is_empty());
        let named = configuration(&settings(&["--ice-host", "stun.example"]), HOST);
        assert_eq!(
            named.ice_servers,
            [IceServer::stun("stun:stun.example:3478".into())]
        );
    }

    #[test]
    fn the_embedded_relay_gets_credentials_for_its_own_url() {
        let s = settings(&[
            "--turn-secret",
            "s",
            "--turn-embedded",
            "--stun-port",
            "3479",
        ]);
        let body = serde_json::to_value(configuration(&s, Some("[::1]"))).unwrap();
        assert_eq!(body["iceServers"][0]["urls"], "stun:[::1]:3479");
        assert_eq!(
            body["iceServers"][1]["urls"],
            serde_json::json!(["turn:[::1]:3479?transport=udp"])
        );
        assert!(body["iceServers"][1]["credential"].is_string());
    }

    #[test]
    fn the_host_comes_from_the_host_header_without_its_port() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            request_host(&headers)
        };
        assert_eq!(with("chat.example:3000").as_deref(), Some("chat.example"));
        assert_eq!(with("[::1]:3000").as_deref(), Some("[::1]"));
        assert_eq!(with("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(with("a b"), None);
        assert_eq!(request_host(&HeaderMap::new()), None);
    }
}
