//! The meshchat binary: read the config, set up logging, bind, serve until a signal.

use clap::Parser;
use meshchat::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::io::Result<()> {
    let config = Config::parse();
    init_tracing(config.ops.log_format);
    runtime(config.ops.worker_threads)?.block_on(async {
        let listener = listen(config.listen.addr())?;
        meshchat::run(listener, config, shutdown_signal()).await
    })
}

/// Connections the kernel accepts for us before we take them: tokio's default of 1,024
/// overflows when thousands of clients of a node that died reconnect at once (the reconnect
/// storm benchmark counted overflows), and each one then waits for a TCP retry, 1 s and up.
/// Linux caps it at `net.core.somaxconn` (4,096 by default).
const BACKLOG: u32 = 4096;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's and tokio's own bind do, so that a restart does not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// One worker: tokio's single-threaded scheduler, which runs a task woken by another
/// after the tasks already waiting (the multi-threaded one runs it next, in its LIFO
/// slot), so a target's writer sends several relays in one write where it would send one.
/// Measured on one CPU at 20,000 relays/s: 0.58 writes per relay instead of 1.0, and
/// 20% less CPU (docs/architecture.md, "Threads").
fn runtime(workers: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build()
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves on Ctrl-C or SIGTERM (what container platforms send to stop a process). The
/// SIGTERM handler is installed now, not when the future is first polled: the server says
/// "listening" before it polls it, and a SIGTERM in between would kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Ok(mut sig) => {
                    sig.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown signal received");
    }
}
