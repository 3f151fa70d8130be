//! The web client: the files of `public/`, embedded in the binary at build time, and the
//! vendored Socket.IO browser client at the paths where Node's Socket.IO server serves it.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Uri;
use memory_serve::CacheControl;
use tower::ServiceExt;

/// Where Node's Socket.IO server serves its browser client, and the vendored file for each.
const SOCKET_IO_CLIENT: [(&str, &str); 3] = [
    ("/socket.io/socket.io.js", "/vendor/socket.io.js"),
    ("/socket.io/socket.io.min.js", "/vendor/socket.io.min.js"),
    (
        "/socket.io/socket.io.esm.min.js",
        "/vendor/socket.io.esm.min.js",
    ),
];

/// Serves `public/` with ETags and compression; `/` is `index.html`.
pub(crate) fn router() -> Router {
    memory_serve::load!()
        .index_file(Some("/index.html"))
        // The modules import each other by plain path: a browser holding yesterday's
        // `mesh.js` beside today's `main.js` would break, so every load revalidates (a
        // cheap 304 while the ETag matches).
        .cache_control(CacheControl::NoCache)
        .html_cache_control(CacheControl::NoCache)
        .into_router()
}

/// Routes the [`SOCKET_IO_CLIENT`] paths of `app` to their files in `files` (from
/// [`router`]). Call it on an app that already has the Socket.IO layer: that layer takes
/// every request below `/socket.io/`, so these routes must sit outside it. Other paths,
/// Engine.IO's included, still reach the app's fallback through the layer.
pub(crate) fn route_socket_io_client(app: Router, files: Router) -> Router {
    SOCKET_IO_CLIENT.iter().fold(app, |app, &(from, to)| {
        let file = files
            .clone()
            .into_service::<Body>()
            .map_request(move |mut req: Request| {
                *req.uri_mut() = Uri::from_static(to);
                req
            });
        app.route_service(from, file)
    })
}

/// Whether `path` is one of the Socket.IO client files rather than an Engine.IO request.
pub(crate) fn is_socket_io_client(path: &str) -> bool {
    SOCKET_IO_CLIENT.iter().any(|(from, _)| *from == path)
}
