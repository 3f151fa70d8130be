//! What a request is to Engine.IO, read once from its URI and asked by every layer in front
//! of it (the gate, the drain, machine affinity, the read-buffer copy).

use axum::http::Uri;

use super::web;

/// Where Engine.IO takes requests: every path that starts so, as its layer matches them.
const PATH: &str = "/socket.io";

/// The kinds of request, as Engine.IO itself tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineIo<'a> {
    /// Not for Engine.IO: another route, or a Socket.IO client file below its path.
    Other,
    /// No session id: opens a new session.
    Handshake,
    /// A request of session `sid` (the first `sid` of the query, as Engine.IO reads it; an
    /// empty one names no session, and Engine.IO refuses it).
    Session(&'a str),
}

impl<'a> EngineIo<'a> {
    pub(crate) fn of(uri: &'a Uri) -> Self {
        let path = uri.path();
        if !path.starts_with(PATH) || web::is_socket_io_client(path) {
            return Self::Other;
        }
        let query = uri.query().unwrap_or("");
        match query.split('&').find_map(|kv| kv.strip_prefix("sid=")) {
            Some(sid) => Self::Session(sid),
            None => Self::Handshake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_kind(uri: &str, expected: EngineIo<'_>) {
        let parsed: Uri = uri.parse().unwrap();
        assert_eq!(EngineIo::of(&parsed), expected, "{uri}");
    }

    #[test]
    fn only_a_sid_in_the_query_makes_a_session_request() {
        let session = EngineIo::Session("abc");
        assert_kind("/socket.io/?EIO=4&transport=polling&sid=abc", session);
        assert_kind("/socket.io/?sid=abc&EIO=4", session);
        assert_kind("/socket.io/?sid=&EIO=4", EngineIo::Session(""));
        for handshake in [
            "/socket.io/?EIO=4&transport=websocket",
            "/socket.io/",
            "/socket.io/?xsid=1",
        ] {
            assert_kind(handshake, EngineIo::Handshake);
        }
    }

    #[test]
    fn other_routes_and_the_client_files_are_not_engine_io() {
        for other in [
            "/?sid=abc",
            "/api/rtc-config",
            "/socket.io/socket.io.min.js",
            "/metrics",
        ] {
            assert_kind(other, EngineIo::Other);
        }
    }
}
