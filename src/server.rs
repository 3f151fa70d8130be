//! Wires the server together, on one node or as part of a cluster, and serves it until
//! shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, SocketIoBuilder, handler::ConnectHandler};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::cluster::{Cluster, ClusterAdapter};
use crate::config::{Config, IceTransportPolicy};
use crate::http;
use crate::membership::{Limits, Membership};
use crate::metrics::Metrics;
use crate::signaling::{self, Signaling};
use crate::turn::StunTurn;

/// Serves meshchat on `listener` until `shutdown` resolves, then disconnects every client
/// and waits for connections to close, for at most the configured shutdown timeout. With
/// `REDIS_URL` it joins the cluster in that Redis; it starts even while Redis is down, and
/// `/readyz` says when it can serve. The STUN server (and TURN relay) runs beside it on
/// `STUN_PORT`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let config = Arc::new(config);
    warn_about(&config);
    let metrics = Arc::new(Metrics::default());
    let stun = StunTurn::start(&config, metrics.clone()).await?;
    let served = run_signaling(listener, config, metrics, shutdown).await;
    if let Some(stun) = stun {
        stun.close().await;
    }
    served
}

async fn run_signaling(
    listener: TcpListener,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Limits::new(&config);
    let timeout = config.shutdown_timeout();
    let Some(url) = config.redis_url.as_deref() else {
        let membership = Membership::local(limits);
        let signaling = Signaling::new(config.clone(), membership.clone(), metrics.clone());
        let (layer, io) = socket_io(&config, signaling).build_layer();
        io.ns("/", signaling::on_connect.with(signaling::init_socket));
        let router = http::router(&config, &metrics, membership, layer, || true);
        return serve(listener, router, io, timeout, shutdown).await;
    };
    let cluster = Cluster::connect(&config, url)
        .map_err(|error| io::Error::other(format!("REDIS_URL: {error}")))?;
    let membership = cluster.membership(limits);
    let signaling = Signaling::new(config.clone(), membership.clone(), metrics.clone());
    let (layer, io) = socket_io(&config, signaling)
        .with_adapter::<ClusterAdapter>(cluster.adapter())
        .build_layer();
    // The driver's subscribe never fails (it subscribes again once Redis is back), so
    // neither does this; an error would mean a malformed namespace.
    if let Err(error) = io
        .ns("/", signaling::on_connect.with(signaling::init_socket))
        .await
    {
        warn!(?error, "socket.io namespace setup failed");
    }
    cluster.start_heartbeat(io.clone(), metrics.clone());
    info!(node = %cluster.node(), "cluster mode: redis adapter");
    let router = http::router(&config, &metrics, membership, layer, move || {
        cluster.is_ready()
    });
    serve(listener, router, io, timeout, shutdown).await
}

fn warn_about(config: &Config) {
    if config.ice_transport_policy == IceTransportPolicy::Relay && config.turn_secret.is_none() {
        warn!(
            "ICE_TRANSPORT_POLICY=relay without TURN_SECRET: only TURN servers of ICE_SERVERS can connect peers"
        );
    }
}

/// Bytes each websocket reads at a time (engineioxide's default: 4096).
const WS_READ_BUFFER: usize = 1024;

fn socket_io(config: &Config, signaling: Signaling) -> SocketIoBuilder {
    SocketIo::builder()
        .max_payload(config.max_payload)
        .ws_max_message_size(usize::try_from(config.max_payload).unwrap_or(usize::MAX))
        // Allocated per websocket up front and held while it is open; signaling messages
        // are mostly a few hundred bytes, and a larger one is read in several steps.
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_buffer_size(config.max_buffer)
        .ping_interval(config.ping_interval())
        .ping_timeout(config.ping_timeout())
        .with_state(signaling)
}

/// hyper's cap on a connection's read buffer, and so on a request head (its default is
/// ~400 KiB). With the default, a keep-alive connection's buffer grows from 8 to 16 KiB
/// when it cannot reuse its space in place, and an idle long-polling client keeps it all.
const HTTP1_MAX_BUFFER: usize = 8 * 1024;

/// Serves `router` until `shutdown`, then closes every Socket.IO session and gives open
/// connections `timeout` to finish.
async fn serve<A: Adapter>(
    listener: TcpListener,
    router: Router,
    io: SocketIo<A>,
    timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "listening");
    // HTTP/1.1 only, as before: browsers speak HTTP/2 only over TLS, which a proxy ends.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().max_buf_size(HTTP1_MAX_BUFFER);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    debug!(%error, "accept failed");
                    // Out of file descriptors and the like: give closing connections time.
                    if !is_connection_error(&error) {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Signaling messages are small and latency-bound. Without TCP_NODELAY, Nagle's
        // algorithm holds a write back until the peer acknowledges the previous one: the
        // benchmark showed relays waiting ~30 ms for the receiver's next packet.
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(req)
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    info!("shutting down: disconnecting clients");
    let closed = async move {
        io.close().await;
        graceful.shutdown().await;
    };
    if tokio::time::timeout(timeout, closed).await.is_err() {
        warn!(?timeout, "shutdown timed out, exiting anyway");
    } else {
        info!("stopped");
    }
    Ok(())
}

/// Errors of one connection that was already gone when accepted, not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
