//! Wires the server together, on one node or as part of a cluster, serves it until
//! shutdown, and then drains it: clients are handed over a few at a time.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, SocketIoBuilder, handler::ConnectHandler};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{debug, error, info, warn};

use crate::cluster::{Cluster, ClusterAdapter};
use crate::config::{Config, IceConfig, IceTransportPolicy, ListenConfig};
use crate::http::{self, Drain, Tracked};
use crate::membership::{Limits, Membership};
use crate::metrics::Metrics;
use crate::resume::Resume;
use crate::signaling::{self, Signaling};
use crate::trim;
use crate::turn::StunTurn;

/// Serves meshchat on `listener` until `shutdown` resolves, then drains: `/readyz` fails
/// and new sessions are refused at once, each client's transport is closed (so that it
/// reconnects, to another node if there is one) at its own moment over a few seconds, and
/// open connections are given the rest of the configured shutdown timeout to close. With
/// `REDIS_URL` it joins the cluster in that Redis; it starts even while Redis is down, and
/// `/readyz` says when it can serve. The STUN server (and TURN relay) runs beside it on
/// `STUN_PORT`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    warn_about(&config.ice);
    let metrics = Arc::new(Metrics::default());
    trim::start(metrics.clone());
    let stun = StunTurn::start(&config.ice, config.listen.host, metrics.clone()).await?;
    let served = run_signaling(listener, &config, metrics, shutdown).await;
    if let Some(stun) = stun {
        stun.close().await;
    }
    served
}

async fn run_signaling(
    listener: TcpListener,
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Limits::new(&config.limits);
    let listen = Arc::new(config.listen.clone());
    let drain = Drain::default();
    let Some(url) = config.cluster.redis_url.as_deref() else {
        let membership = Membership::local(limits);
        let signaling = Signaling::new(
            listen.clone(),
            &config.limits,
            membership.clone(),
            metrics.clone(),
            Resume::new(&config.resume, false),
            None,
        );
        let (layer, io) = socket_io(&listen, signaling).build_layer();
        io.ns("/", signaling::on_connect.with(signaling::init_socket));
        let router = http::router(config, &metrics, membership.clone(), layer, &drain, || true);
        let serving = Serving::new(&listen, drain, membership);
        return serve(listener, router, io, serving, shutdown).await;
    };
    let cluster = match Cluster::connect(&config.cluster, url).await {
        Ok(cluster) => cluster,
        Err(error) => {
            error!(%error, "cannot use redis");
            return Err(io::Error::other(error.to_string()));
        }
    };
    let membership = cluster.membership(limits);
    let resume = Resume::new(&config.resume, true);
    let signaling = Signaling::new(
        listen.clone(),
        &config.limits,
        membership.clone(),
        metrics.clone(),
        resume.clone(),
        Some(cluster.elsewhere()),
    );
    let (layer, io) = socket_io(&listen, signaling.clone())
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
    cluster.receive(io.clone(), signaling);
    cluster.start_heartbeat(io.clone(), metrics.clone(), resume);
    info!(node = %cluster.node(), "cluster mode: redis adapter");
    let router = http::router(
        config,
        &metrics,
        membership.clone(),
        layer,
        &drain,
        move || cluster.is_ready(),
    );
    let serving = Serving::new(&listen, drain, membership);
    serve(listener, router, io, serving, shutdown).await
}

fn warn_about(config: &IceConfig) {
    if config.ice_transport_policy == IceTransportPolicy::Relay && config.turn_secret.is_none() {
        warn!(
            "ICE_TRANSPORT_POLICY=relay without TURN_SECRET: only TURN servers of ICE_SERVERS can connect peers"
        );
    }
}

/// Bytes each websocket reads at a time (engineioxide's default: 4096).
const WS_READ_BUFFER: usize = 1024;

fn socket_io(config: &ListenConfig, signaling: Signaling) -> SocketIoBuilder {
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

/// What serving connections and shutting down work with.
struct Serving {
    drain: Drain,
    membership: Membership,
    /// `SHUTDOWN_TIMEOUT_SECS`.
    timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_MS`.
    idle: Duration,
}

/// Longest time over which clients are handed over: long enough that their reconnections
/// do not all land on the remaining nodes at once, short enough for any platform's grace.
const MOST_SPREAD: Duration = Duration::from_secs(5);

impl Serving {
    fn new(config: &ListenConfig, drain: Drain, membership: Membership) -> Self {
        Self {
            drain,
            membership,
            timeout: config.shutdown_timeout(),
            idle: config.http_idle_timeout(),
        }
    }

    /// How long the hand-over is spread over: half the shutdown timeout, at most
    /// [`MOST_SPREAD`], leaving the rest for the last disconnects and connections.
    fn spread(&self) -> Duration {
        (self.timeout / 2).min(MOST_SPREAD)
    }
}

/// hyper's cap on a connection's read buffer, and so on a request head (its default is
/// ~400 KiB). With the default, a keep-alive connection's buffer grows from 8 to 16 KiB
/// when it cannot reuse its space in place, and an idle long-polling client keeps it all.
const HTTP1_MAX_BUFFER: usize = 8 * 1024;

/// Serves `router` until `shutdown`, then drains (see [`run`]) and gives open connections
/// the rest of the shutdown timeout to finish.
async fn serve<A: Adapter>(
    listener: TcpListener,
    router: Router,
    io: SocketIo<A>,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "listening");
    let mut listener = serving.drain.listener(listener);
    // HTTP/1.1 only, as before: browsers speak HTTP/2 only over TLS, which a proxy ends.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    // hyper times a request head from when the connection starts waiting for it, so this
    // also ends keep-alive connections left idle: without it, each one a client never
    // closes (a long-polling client gone, an HTTP agent's pool) kept its task and buffers
    // for good, and a node's memory grew with every client it ever served.
    builder
        .http1()
        .max_buf_size(HTTP1_MAX_BUFFER)
        .timer(TokioTimer::new())
        .header_read_timeout(serving.idle);
    let graceful = GracefulShutdown::new();
    let accept = |(tcp, remote): (Tracked, SocketAddr)| {
        serve_connection(&builder, &graceful, &router, tcp, remote);
    };

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = Listener::accept(&mut listener) => accept(accepted),
            () = &mut shutdown => break,
        }
    }

    let timeout = serving.timeout;
    let deadline = Instant::now() + timeout;
    let spread = serving.spread();
    serving.drain.begin();
    serving.membership.begin_drain();
    // Bounded, so that the final close below always runs before the deadline.
    let bound = spread + (timeout - spread) / 2;
    let handed = tokio::time::timeout(bound, hand_over_all(&io, &serving.drain, spread));
    let mut handed = std::pin::pin!(handed);
    // Still accepting while clients are handed over, so that `/readyz` can say 503 and new
    // sessions are refused with a status rather than a closed port.
    loop {
        tokio::select! {
            accepted = Listener::accept(&mut listener) => accept(accepted),
            handed = &mut handed => {
                if handed.is_err() {
                    warn!(?bound, "hand-over unfinished, closing the rest at once");
                }
                break;
            }
        }
    }
    drop(listener);
    info!("shutting down: disconnecting clients");
    let closed = async {
        io.close().await;
        graceful.shutdown().await;
    };
    if tokio::time::timeout_at(deadline, closed).await.is_err() {
        warn!(?timeout, "shutdown timed out, exiting anyway");
    } else {
        info!("stopped");
    }
    Ok(())
}

/// Serves one accepted connection on its own task, watched by `graceful`.
fn serve_connection(
    builder: &Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    router: &Router,
    tcp: Tracked,
    remote: SocketAddr,
) {
    // Signaling messages are small and latency-bound. Without TCP_NODELAY, Nagle's
    // algorithm holds a write back until the peer acknowledges the previous one: the
    // benchmark showed relays waiting ~30 ms for the receiver's next packet.
    if let Err(error) = tcp.stream().set_nodelay(true) {
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

/// Hands every client of this node over, one at a time at even intervals over `spread`,
/// in no particular order; resolves once each has left its rooms.
async fn hand_over_all<A: Adapter>(io: &SocketIo<A>, drain: &Drain, spread: Duration) {
    let sockets = io.sockets();
    let count = sockets.len();
    info!(clients = count, ?spread, "draining: handing clients over");
    let step = spread / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let start = Instant::now();
    let handed = sockets.into_iter().enumerate().map(|(i, s)| {
        let at = start + step * u32::try_from(i).unwrap_or(u32::MAX);
        async move {
            tokio::time::sleep_until(at).await;
            let sid = s.id.to_string();
            let handshake = s
                .req_parts()
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            signaling::hand_over(s, || drain.cut(&sid, handshake)).await;
        }
    });
    futures_util::future::join_all(handed).await;
    info!(clients = count, "draining: every client handed over");
}
