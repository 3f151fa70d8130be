//! ICE servers for the web client: the operator's `ICE_SERVERS` list, checked at startup,
//! and `GET /api/rtc-config`, which hands the page its `RTCConfiguration` with fresh TURN
//! credentials (see [`crate::turn`]).

use std::fmt;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};

use crate::config::{Config, IceTransportPolicy};
use crate::turn::{self, TurnIssuer};

/// Where the page fetches its `RTCConfiguration`.
pub const RTC_CONFIG_PATH: &str = "/api/rtc-config";

/// One entry of `RTCConfiguration.iceServers`, as the browser API defines it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Urls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `urls` is one URL or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let urls: &[String] = match self {
            Self::One(url) => std::slice::from_ref(url),
            Self::Many(urls) => urls,
        };
        urls.iter().map(String::as_str)
    }
}

// Credentials stay out of logs and `--help`-style dumps of the config.
impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("credential", &self.credential.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The operator's ICE servers: the value of `ICE_SERVERS` / `--ice-servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServers(pub Vec<IceServer>);

/// Parses and checks `ICE_SERVERS`: a JSON list of `RTCIceServer` objects, each with
/// `urls` (`stun:`, `turn:` or `turns:` URLs) and, for TURN, `username` and `credential`.
/// Used as the clap value parser, so a bad value stops the server at startup with this
/// message.
pub fn parse_ice_servers(text: &str) -> Result<IceServers, String> {
    let servers: Vec<IceServer> = serde_json::from_str(text).map_err(|e| {
        format!(
            "expected a JSON list of ICE servers like \
             [{{\"urls\":\"stun:stun.example.com:3478\"}}]: {e}"
        )
    })?;
    for (i, server) in servers.iter().enumerate() {
        check_server(server).map_err(|e| format!("ICE server {i}: {e}"))?;
    }
    Ok(IceServers(servers))
}

fn check_server(server: &IceServer) -> Result<(), String> {
    if server.urls.iter().next().is_none() {
        return Err("`urls` is empty".into());
    }
    for url in server.urls.iter() {
        let scheme = url.split(':').next().unwrap_or_default();
        let rest = &url[scheme.len()..];
        match scheme {
            "stun" | "stuns" => {}
            "turn" | "turns" => {
                if server.username.is_none() || server.credential.is_none() {
                    return Err(format!(
                        "{url}: a TURN server needs `username` and `credential`"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "{url}: the URL must start with stun:, stuns:, turn: or turns:"
                ));
            }
        }
        if rest.len() <= 1 {
            return Err(format!("{url}: no host"));
        }
    }
    Ok(())
}

impl std::str::FromStr for IceServers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_ice_servers(s)
    }
}

impl From<turn::IceServer> for IceServer {
    fn from(minted: turn::IceServer) -> Self {
        Self {
            urls: Urls::Many(minted.urls),
            username: Some(minted.username),
            credential: Some(minted.credential),
        }
    }
}

/// The body of `GET /api/rtc-config`: what the page passes to `new RTCPeerConnection()`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcConfiguration {
    pub ice_servers: Vec<IceServer>,
    pub ice_transport_policy: IceTransportPolicy,
}

/// What the page's configuration is made of.
#[derive(Debug, Clone)]
pub struct RtcSettings {
    /// `ICE_SERVERS`, handed out as they are.
    pub servers: IceServers,
    /// Mints TURN credentials for each page (`TURN_SECRET`), if configured.
    pub turn: Option<Arc<TurnIssuer>>,
    pub policy: IceTransportPolicy,
}

impl RtcSettings {
    pub fn new(config: &Config, turn: Option<Arc<TurnIssuer>>) -> Self {
        Self {
            servers: config.ice_servers.clone(),
            turn,
            policy: config.ice_transport_policy,
        }
    }
}

/// Builds the page's configuration. Called per request: every page gets TURN credentials
/// of its own, valid from now.
pub fn rtc_configuration(settings: &RtcSettings) -> RtcConfiguration {
    let mut ice_servers = settings.servers.0.clone();
    ice_servers.extend(settings.turn.as_ref().map(|turn| turn.mint().into()));
    RtcConfiguration {
        ice_servers,
        ice_transport_policy: settings.policy,
    }
}

/// `GET /api/rtc-config`.
pub fn router(settings: RtcSettings) -> Router {
    Router::new()
        .route(RTC_CONFIG_PATH, get(rtc_config))
        .with_state(Arc::new(settings))
}

async fn rtc_config(State(settings): State<Arc<RtcSettings>>) -> Response {
    let mut response = Json(rtc_configuration(&settings)).into_response();
    // Credentials may be short-lived, and the page must see a changed list on reload.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::Value;

    #[test]
    fn empty_list_is_the_default_and_valid() {
        assert_eq!(parse_ice_servers("[]"), Ok(IceServers::default()));
    }

    fn settings(args: &[&str]) -> RtcSettings {
        let config = Config::parse_from(std::iter::once("meshchat").chain(args.iter().copied()));
        RtcSettings::new(&config, TurnIssuer::from_config(&config).map(Arc::new))
    }

    #[test]
    fn stun_and_turn_entries_round_trip_unchanged() {
        let text = r#"[{"urls":"stun:stun.l.google.com:19302"},
            {"urls":["turn:turn.example.com:3478?transport=udp","turns:turn.example.com:443"],
             "username":"u","credential":"p"}]"#;
        let body =
            serde_json::to_value(rtc_configuration(&settings(&["--ice-servers", text]))).unwrap();
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
        let a = serde_json::to_value(rtc_configuration(&s)).unwrap();
        let b = serde_json::to_value(rtc_configuration(&s)).unwrap();
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
    }

    #[test]
    fn bad_values_get_a_message_that_says_what_is_wrong() {
        for (text, says) in [
            ("stun:stun.example.com", "expected a JSON list"),
            (r#"{"urls":"stun:a"}"#, "expected a JSON list"),
            (r#"[{"url":"stun:a"}]"#, "expected a JSON list"),
            (r#"[{"urls":[]}]"#, "ICE server 0: `urls` is empty"),
            (
                r#"[{"urls":"stun:a"},{"urls":"http://a"}]"#,
                "ICE server 1: http://a",
            ),
            (
                r#"[{"urls":"turn:a:3478"}]"#,
                "needs `username` and `credential`",
            ),
            (r#"[{"urls":"stun:"}]"#, "no host"),
            (
                r#"[{"urls":"stun:a","username":5}]"#,
                "expected a JSON list",
            ),
        ] {
            let err = parse_ice_servers(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_credentials() {
        let servers =
            parse_ice_servers(r#"[{"urls":"turn:a","username":"alice","credential":"s3cret"}]"#)
                .unwrap();
        let shown = format!("{servers:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
