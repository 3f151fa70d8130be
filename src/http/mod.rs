//! The HTTP side, beside Socket.IO: the gate in front of it, health and readiness,
//! `/metrics`, the page's RTC configuration, the web client, the headers every response
//! carries, and the connections a rolling restart drains.

mod affinity;
mod drain;
mod engineio;
mod gate;
mod metrics;
mod rtc_config;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::{Router, middleware, routing::get};
use hyper::upgrade::OnUpgrade;
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer, trace::TraceLayer,
};

use crate::config::Config;
use crate::membership::Membership;
use crate::metrics::Metrics;
use affinity::Affinity;
pub(crate) use drain::{Drain, Tracked};
use engineio::EngineIo;
use gate::Gate;

/// Every route, with Socket.IO at `/socket.io/`. `ready` answers `/readyz`, which also
/// fails from the moment `drain` begins.
pub(crate) fn router<A: Adapter>(
    config: &Config,
    metrics: &Arc<Metrics>,
    membership: Membership,
    socket_io: SocketIoLayer<A>,
    drain: &Drain,
    ready: impl Fn() -> bool + Clone + Send + Sync + 'static,
) -> Router {
    let draining = drain.clone();
    let readyz = move || {
        let ready = ready.clone();
        let draining = draining.clone();
        async move {
            if !draining.is_draining() && ready() {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
    };
    let files = web::router();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics::router(&config.ops, metrics.clone(), membership))
        .merge(rtc_config::router(&config.ice, metrics.clone()))
        .merge(files.clone())
        // One `layer` call per stack: axum boxes every route's future once per call, and a
        // pending long-polling GET holds all of those boxes for as long as it waits.
        .layer(
            ServiceBuilder::new()
                .layer(middleware::map_request(detach_from_read_buffer))
                .layer(socket_io),
        );
    let gate = Gate::new(&config.limits, metrics.clone());
    web::route_socket_io_client(app, files).layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::new())
            .layer(TraceLayer::new_for_http())
            // Every response: the page may load and connect only to its own origin, and
            // room links never leak through the Referer header.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ))
            // Outside the gate: a request for another machine is counted over there.
            .layer(middleware::from_fn_with_state(
                Affinity::new(config.ops.fly_machine_id.as_deref()),
                affinity::keep_on_machine,
            ))
            // Before the gate: a refused handshake costs no connection-rate token.
            .layer(middleware::from_fn_with_state(
                (drain.clone(), metrics.clone()),
                drain::follow_sessions,
            ))
            .layer(middleware::from_fn_with_state(gate, gate::admit)),
    )
}

/// The request headers a handshake keeps once the gate has read the rest: what Engine.IO
/// reads to answer a websocket handshake, and the connection headers. A browser sends a
/// kilobyte or two more (user agent, languages, cookies) that would be kept for the whole
/// session and never read.
const KEPT_HEADERS: [header::HeaderName; 7] = [
    header::HOST,
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// Gives a handshake's URI and the headers it keeps allocations of their own before
/// Engine.IO keeps them for the whole session: hyper parses them as views into its
/// connection read buffer (8 KiB and up), and one kept view pins all of it for as long as
/// the client stays. Requests of an existing session are not kept, so they are left as
/// they are.
async fn detach_from_read_buffer(req: Request) -> Request {
    if EngineIo::of(req.uri()) != EngineIo::Handshake {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    // Sized to what is kept: a HeaderMap rounds its capacity up to a power of two.
    let kept = KEPT_HEADERS
        .iter()
        .filter(|name| parts.headers.contains_key(*name))
        .count();
    let mut headers = HeaderMap::with_capacity(kept);
    for name in KEPT_HEADERS {
        for value in parts.headers.get_all(&name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name.clone(), value);
            }
        }
    }
    parts.headers = headers;
    // Of the extensions, Engine.IO needs the upgrade (a websocket handshake) and the hand-over
    // the client's address; the rest (axum's copy of the URI as it arrived, the route's
    // parameters) would be kept for the whole session and never read again.
    let upgrade = parts.extensions.remove::<OnUpgrade>();
    let client = parts.extensions.remove::<ConnectInfo<SocketAddr>>();
    // A new map: clearing the old one would keep its allocation.
    parts.extensions = Extensions::new();
    if let Some(upgrade) = upgrade {
        parts.extensions.insert(upgrade);
    }
    if let Some(client) = client {
        parts.extensions.insert(client);
    }
    Request::from_parts(parts, body)
}

/// Only our own origin, for everything; no plugins, no framing, no `<base>` tricks. Images
/// may also be `blob:`: the previews of files received from peers (files-ui.js).
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

async fn healthz() -> &'static str {
    "ok"
}
