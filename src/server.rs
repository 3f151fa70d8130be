//! The server: the axum app with the Socket.IO layer, and the run loop with graceful
//! shutdown.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::serve::ListenerExt;
use axum::{Router, middleware, routing::get};
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, SocketIoBuilder, handler::ConnectHandler, layer::SocketIoLayer};
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer, trace::TraceLayer,
};
use tracing::{debug, info, warn};

use crate::affinity::{self, Affinity};
use crate::cluster::{Cluster, ClusterAdapter, RedisFailure};
use crate::config::{Config, IceTransportPolicy};
use crate::gate::{self, Gate};
use crate::ice;
use crate::metrics;
use crate::signaling::{self, Shared};
use crate::web;

/// The whole app: HTTP routes, the web client and Socket.IO at `/socket.io/`.
/// Also returns the Socket.IO handle (to close it on shutdown) and the shared state.
pub fn app(config: &Config) -> (Router, SocketIo, Shared) {
    let shared = Shared::new(config);
    warn_about_config(config, &shared);
    let (layer, io) = socket_io(config, &shared).build_layer();
    io.ns("/", signaling::on_connect.with(signaling::prepare));
    let router = router(config, &shared, layer, || true);
    (router, io, shared)
}

/// [`app`] for one node of a cluster: the Socket.IO Redis adapter carries emits to the
/// other nodes and membership lives in Redis (see [`crate::cluster`]). Starts even while
/// Redis is down; `/readyz` says when it can serve.
pub async fn app_cluster(
    config: &Config,
    redis_url: &str,
) -> Result<(Router, SocketIo<ClusterAdapter>, Shared), RedisFailure> {
    let cluster = Cluster::connect(config, redis_url).await?;
    let shared = Shared::clustered(config, cluster.rooms.clone());
    warn_about_config(config, &shared);
    let adapter = socketioxide_redis::RedisAdapterCtr::new_with_driver(
        cluster.driver.clone(),
        Cluster::adapter_config(config),
    );
    let (layer, io) = socket_io(config, &shared)
        .with_adapter::<ClusterAdapter>(adapter)
        .build_layer();
    // The driver's subscribe never fails (it subscribes again once Redis is back), so
    // neither does this; an error would mean a malformed namespace.
    if let Err(error) = io
        .ns("/", signaling::on_connect.with(signaling::prepare))
        .await
    {
        warn!(?error, "socket.io namespace setup failed");
    }
    cluster.start_heartbeat(io.clone());
    info!(node = %cluster.node, "cluster mode: redis adapter");
    let router = router(config, &shared, layer, move || cluster.is_ready());
    Ok((router, io, shared))
}

fn warn_about_config(config: &Config, shared: &Shared) {
    if config.ice_transport_policy == IceTransportPolicy::Relay && shared.turn.is_none() {
        warn!(
            "ICE_TRANSPORT_POLICY=relay without TURN_SECRET: only TURN servers of ICE_SERVERS can connect peers"
        );
    }
}

fn socket_io(config: &Config, shared: &Shared) -> SocketIoBuilder {
    SocketIo::builder()
        .max_payload(config.max_payload)
        .ws_max_message_size(usize::try_from(config.max_payload).unwrap_or(usize::MAX))
        .max_buffer_size(config.max_buffer)
        .ping_interval(config.ping_interval())
        .ping_timeout(config.ping_timeout())
        .with_state(shared.clone())
}

fn router<A: Adapter>(
    config: &Config,
    shared: &Shared,
    layer: SocketIoLayer<A>,
    ready: impl Fn() -> bool + Clone + Send + Sync + 'static,
) -> Router {
    let gate = Gate::new(config, shared.stats.clone());
    let readyz = move || {
        let ready = ready.clone();
        async move {
            if ready() {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
    };
    let files = web::router();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics::router(config, shared))
        .merge(ice::router(ice::RtcSettings::new(
            config,
            shared.turn.clone(),
        )))
        .merge(files.clone())
        .layer(layer);
    web::route_socket_io_client(router, files)
        .layer(middleware::from_fn_with_state(gate, gate::check))
        // Outside the gate: a request for another machine is counted over there.
        .layer(middleware::from_fn_with_state(
            Affinity::new(config.fly_machine_id.as_deref()),
            affinity::check,
        ))
        // Every response: the page may load and connect only to its own origin, and room
        // links never leak through the Referer header.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
}

/// Only our own origin, for everything; no plugins, no framing, no `<base>` tricks.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

async fn healthz() -> &'static str {
    "ok"
}

/// Serves the app on `listener` until `shutdown` resolves, then disconnects every client
/// and waits for connections to close, for at most the configured shutdown timeout.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    match config.redis_url.as_deref() {
        None => {
            let (router, io, _shared) = app(&config);
            serve(listener, router, io, config.shutdown_timeout(), shutdown).await
        }
        Some(url) => {
            let (router, io, _shared) = app_cluster(&config, url)
                .await
                .map_err(|error| io::Error::other(format!("REDIS_URL: {error}")))?;
            serve(listener, router, io, config.shutdown_timeout(), shutdown).await
        }
    }
}

/// [`run`] for an app that is already built, so tests can keep its handles.
pub async fn serve<A: Adapter>(
    listener: TcpListener,
    router: Router,
    io: SocketIo<A>,
    timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "listening");

    // Signaling messages are small and latency-bound. Without TCP_NODELAY, Nagle's
    // algorithm holds a write back until the peer acknowledges the previous one: the
    // benchmark showed relays waiting ~30 ms for the receiver's next packet.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let (closing_tx, closing_rx) = tokio::sync::oneshot::channel::<()>();
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = closing_tx.send(());
        info!("shutting down: disconnecting clients");
        io.close().await;
    });
    let deadline = async move {
        // Only a dropped sender (the server ended first) makes this fail: then wait forever
        // and let the server's own result win the select.
        if closing_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        result = server => {
            info!("stopped");
            result
        }
        () = deadline => {
            warn!(?timeout, "shutdown timed out, exiting anyway");
            Ok(())
        }
    }
}
