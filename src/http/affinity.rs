//! Keeps every request of a Socket.IO session on the fly.io machine that holds it: a cookie
//! names the machine, and a request that reaches another one is handed back to fly's proxy
//! with a `fly-replay` header (why: docs/deploy.md, "fly.io").

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::engineio::EngineIo;
use crate::config::is_machine_id;

/// The cookie that names the machine holding the browser's sessions.
const COOKIE: &str = "meshchat_machine";
/// Response header: fly's proxy replays the request as it says.
const REPLAY: &str = "fly-replay";
/// Request header fly's proxy adds to a replayed request: never replay twice.
const REPLAYED: &str = "fly-replay-src";

/// This machine's id (`FLY_MACHINE_ID`, set by fly), or `None` off fly. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Affinity {
    machine: Option<Arc<str>>,
}

impl Affinity {
    pub(crate) fn new(machine: Option<&str>) -> Self {
        Self {
            machine: machine.filter(|m| is_machine_id(m)).map(Arc::from),
        }
    }
}

/// The machine named by the request's affinity cookie, if any.
fn pinned(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| is_machine_id(value))
}

/// Axum middleware for Engine.IO requests: replays a session's request to the machine
/// that holds it, steers a browser's new sessions to the machine of its others, and pins
/// sessions this machine opens.
pub(crate) async fn keep_on_machine(
    State(affinity): State<Affinity>,
    req: Request,
    next: Next,
) -> Response {
    let Some(me) = affinity.machine.as_deref() else {
        return next.run(req).await;
    };
    let session = match EngineIo::of(req.uri()) {
        EngineIo::Other => return next.run(req).await,
        kind => kind != EngineIo::Handshake,
    };
    if let Some(owner) = pinned(req.headers())
        && owner != me
        && !req.headers().contains_key(REPLAYED)
    {
        // A session lives only on its machine. A new one may go anywhere, but is better
        // kept with the browser's other tabs, which share the cookie.
        let target = if session {
            format!("instance={owner}")
        } else {
            format!("prefer_instance={owner}")
        };
        return (
            StatusCode::CONFLICT,
            [(REPLAY, target)],
            "this request belongs to another machine\n",
        )
            .into_response();
    }
    let mut response = next.run(req).await;
    let status = response.status();
    if !session && (status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS) {
        let cookie = format!("{COOKIE}={me}; Path=/socket.io; HttpOnly; Secure; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_machine_cookies_count() {
        let with = |cookie: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            pinned(&h).map(str::to_owned)
        };
        assert_eq!(with("meshchat_machine=3d8d1"), Some("3d8d1".into()));
        assert_eq!(
            with("a=b; meshchat_machine=e2865; c=d"),
            Some("e2865".into())
        );
        for bad in [
            "meshchat_machine=",
            "meshchat_machine=a b",
            "meshchat_machine=x,y",
            "meshchat_machine=\"abc\"",
            &format!("meshchat_machine={}", "a".repeat(65)),
            "other=abc",
        ] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert!(Affinity::new(Some("bad id")).machine.is_none());
    }
}
