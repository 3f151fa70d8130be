//! `GET /api/rtc-config`: the page's `RTCConfiguration`, with fresh TURN credentials for
//! every request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Serialize;

use crate::config::{Config, IceTransportPolicy};
use crate::ice::IceServer;
use crate::metrics::Metrics;
use crate::turn::TurnIssuer;

/// Where the page fetches its `RTCConfiguration`.
const PATH: &str = "/api/rtc-config";

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
    config: Arc<Config>,
    /// Mints TURN credentials (`TURN_SECRET`), if configured.
    turn: Option<TurnIssuer>,
    metrics: Arc<Metrics>,
}

/// The route.
pub(crate) fn router(config: Arc<Config>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(PATH, get(rtc_config))
        .with_state(Arc::new(Settings::new(config, metrics)))
}

impl Settings {
    fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        Self {
            turn: TurnIssuer::from_config(&config),
            config,
            metrics,
        }
    }
}

/// `ICE_SERVERS` as they are, then TURN credentials valid from now.
fn configuration(settings: &Settings) -> RtcConfiguration {
    let mut ice_servers = settings.config.ice_servers.0.clone();
    if let Some(turn) = &settings.turn {
        ice_servers.push(turn.mint());
        settings.metrics.turn_credentials.inc();
    }
    RtcConfiguration {
        ice_servers,
        ice_transport_policy: settings.config.ice_transport_policy,
    }
}

async fn rtc_config(State(settings): State<Arc<Settings>>) -> Response {
    let mut response = Json(configuration(&settings)).into_response();
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
    use clap::Parser;
    use serde_json::Value;

    fn settings(args: &[&str]) -> Settings {
        let config = Config::parse_from(std::iter::once("meshchat").chain(args.iter().copied()));
        Settings::new(Arc::new(config), Arc::default())
    }

    #[test]
    fn stun_and_turn_entries_round_trip_unchanged() {
        let text = r#"[{"urls":"stun:stun.l.google.com:19302"},
            {"urls":["turn:turn.example.com:3478?transport=udp","turns:turn.example.com:443"],
             "username":"u","credential":"p"}]"#;
        let body =
            serde_json::to_value(configuration(&settings(&["--ice-servers", text]))).unwrap();
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
        ]);
        let a = serde_json::to_value(configuration(&s)).unwrap();
        let b = serde_json::to_value(configuration(&s)).unwrap();
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
}
