//! Wires the server together, on one node or as part of a cluster, and serves it until
//! shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, SocketIoBuilder, handler::ConnectHandler};
use tokio::net::TcpListener;
use tracing::{debug, error, info, warn};

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
    let cluster = match Cluster::connect(&config, url).await {
        Ok(cluster) => cluster,
        Err(error) => {
            error!(%error, "cannot use redis");
            return Err(io::Error::other(error.to_string()));
        }
    };
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
