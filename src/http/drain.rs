//! The connection side of a rolling restart: every TCP connection is tracked, so that once
//! draining each session's connections can be cut on their own, which clients treat as a
//! lost transport and reconnect from (elsewhere); new sessions are refused meanwhile.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::engineio::EngineIo;
use crate::metrics::Metrics;

/// Whether the node is draining, and every open connection. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    draining: AtomicBool,
    /// Open connections by peer address, which is unique among open connections.
    conns: Mutex<HashMap<SocketAddr, Arc<Conn>>>,
    /// While draining: the connections that carried each session's requests.
    by_session: Mutex<HashMap<Box<str>, Vec<Arc<Conn>>>>,
    /// Sessions already cut: a request of theirs that arrives later is refused, so that
    /// nothing the server still had queued for them reaches the client.
    cut: Mutex<HashSet<Box<str>>>,
}

/// One TCP connection.
#[derive(Debug, Default)]
struct Conn {
    cut: AtomicBool,
    /// Woken when the connection is cut, so that a pending read sees the end at once.
    reader: AtomicWaker,
    /// The Engine.IO session of the last request on this connection.
    session: Mutex<Option<Box<str>>>,
}

/// The locks below guard a few map operations each, never an await; a poisoned map is
/// still correct.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drain {
    /// Starts draining: new sessions are refused from now on.
    pub(crate) fn begin(&self) {
        if self.shared.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut by_session: HashMap<Box<str>, Vec<Arc<Conn>>> = HashMap::new();
        for conn in lock(&self.shared.conns).values() {
            if let Some(sid) = lock(&conn.session).clone() {
                by_session.entry(sid).or_default().push(conn.clone());
            }
        }
        *lock(&self.shared.by_session) = by_session;
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Cuts every connection of session `sid` (and the one its handshake came on): the
    /// client sees its transport close, as when a server goes away, and reconnects.
    /// Later requests of the session are refused.
    pub(crate) fn cut(&self, sid: &str, handshake: Option<SocketAddr>) {
        lock(&self.shared.cut).insert(sid.into());
        let mut conns = lock(&self.shared.by_session)
            .remove(sid)
            .unwrap_or_default();
        if let Some(conn) = handshake.and_then(|addr| lock(&self.shared.conns).get(&addr).cloned())
        {
            conns.push(conn);
        }
        for conn in conns {
            conn.cut.store(true, Ordering::Release);
            conn.reader.wake();
        }
    }

    /// Accepts connections from `listener`, tracking each.
    pub(crate) fn listener(&self, listener: TcpListener) -> Tracking {
        Tracking {
            inner: listener,
            drain: self.clone(),
        }
    }

    /// Notes that `addr`'s connection now carries session `sid`.
    fn follow(&self, addr: SocketAddr, sid: &str) {
        let Some(conn) = lock(&self.shared.conns).get(&addr).cloned() else {
            return;
        };
        let mut session = lock(&conn.session);
        if session.as_deref() == Some(sid) {
            return;
        }
        *session = Some(sid.into());
        drop(session);
        if self.is_draining() {
            lock(&self.shared.by_session)
                .entry(sid.into())
                .or_default()
                .push(conn);
        }
    }

    fn was_cut(&self, sid: &str) -> bool {
        lock(&self.shared.cut).contains(sid)
    }
}

/// The listener the server accepts on: a [`TcpListener`] whose connections the [`Drain`]
/// can cut.
#[derive(Debug)]
pub(crate) struct Tracking {
    inner: TcpListener,
    drain: Drain,
}

impl Listener for Tracking {
    type Io = Tracked;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Tracked, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let conn = Arc::new(Conn::default());
        lock(&self.drain.shared.conns).insert(addr, conn.clone());
        let tracked = Tracked {
            stream,
            conn,
            addr,
            drain: self.drain.clone(),
        };
        (tracked, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection: reads end and writes fail once it is cut.
#[derive(Debug)]
pub(crate) struct Tracked {
    stream: TcpStream,
    conn: Arc<Conn>,
    addr: SocketAddr,
    drain: Drain,
}

impl Tracked {
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn is_cut(&self) -> bool {
        self.conn.cut.load(Ordering::Acquire)
    }
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut: draining")
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut conns = lock(&self.drain.shared.conns);
        if conns
            .get(&self.addr)
            .is_some_and(|c| Arc::ptr_eq(c, &self.conn))
        {
            conns.remove(&self.addr);
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.conn.reader.register(cx.waker());
        if this.is_cut() {
            // The end of the stream: the HTTP or websocket layer above closes the
            // connection as if the client had.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Axum middleware: notes which connection carries which session, refuses new sessions
/// while draining, and requests of sessions already cut.
pub(crate) async fn follow_sessions(
    State((drain, metrics)): State<(Drain, Arc<Metrics>)>,
    req: Request,
    next: Next,
) -> Response {
    let sid = match EngineIo::of(req.uri()) {
        EngineIo::Other => return next.run(req).await,
        EngineIo::Session(sid) => sid,
        EngineIo::Handshake => {
            if drain.is_draining() {
                metrics.connection_refused("draining");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    "shutting down",
                )
                    .into_response();
            }
            return next.run(req).await;
        }
    };
    if drain.is_draining() && drain.was_cut(sid) {
        // What Engine.IO answers for a session it does not know: the client gives the
        // session up and reconnects.
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"code":1,"message":"Session ID unknown"}"#,
        )
            .into_response();
    }
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        drain.follow(*addr, sid);
    }
    next.run(req).await
}
