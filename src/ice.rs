//! The ICE servers handed to browsers: the `RTCIceServer` type and `ICE_SERVERS`, checked
//! at startup.

use std::fmt;

use serde::{Deserialize, Serialize};

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

impl IceServer {
    /// A STUN server, which needs no credentials.
    pub fn stun(url: String) -> Self {
        Self {
            urls: Urls::One(url),
            username: None,
            credential: None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_the_default_and_valid() {
        assert_eq!(parse_ice_servers("[]"), Ok(IceServers::default()));
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
