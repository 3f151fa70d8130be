//! A lean Engine.IO v4 / Socket.IO v5 client over websocket, small enough per connection
//! that one process holds ~19,000 of them, and the room setup every scenario starts with.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Longest any single step of a setup (connect, an expected event) may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The server (or the nodes of a cluster) to load, and the local addresses to connect from.
#[derive(Debug, Clone)]
pub struct Target {
    /// Connections go to each in turn.
    servers: Arc<[(SocketAddr, String)]>,
    next_server: Arc<AtomicUsize>,
    sources: Arc<[IpAddr]>,
    next_source: Arc<AtomicUsize>,
}

impl Target {
    /// `sources` local addresses 127.0.0.2, 127.0.0.3, ... are used in turn when the
    /// server is on IPv4 loopback: one address has only ~28,000 ephemeral ports, and
    /// closed connections hold theirs in TIME_WAIT for a minute.
    pub fn new(addr: SocketAddr, sources: u8) -> Self {
        Self::spread(&[addr], sources)
    }

    /// Like [`Target::new`], with connections spread over `addrs` in turn: the nodes of a
    /// cluster, so that consecutive members of a room sit on different nodes.
    pub fn spread(addrs: &[SocketAddr], sources: u8) -> Self {
        let loopback = addrs.iter().all(|a| a.ip().is_loopback() && a.is_ipv4());
        let sources: Vec<IpAddr> = if loopback {
            (0..sources)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i.min(250))))
                .collect()
        } else {
            Vec::new()
        };
        let servers: Vec<(SocketAddr, String)> = addrs
            .iter()
            .map(|a| (*a, format!("ws://{a}/socket.io/?EIO=4&transport=websocket")))
            .collect();
        Self {
            servers: servers.into(),
            next_server: Arc::default(),
            sources: sources.into(),
            next_source: Arc::default(),
        }
    }

    /// Opens a websocket and the default namespace; fails on a refusal or after [`WAIT`].
    pub async fn connect(&self) -> Result<Ws> {
        tokio::time::timeout(WAIT, self.try_connect())
            .await
            .map_err(|_| anyhow!("connect timed out"))?
    }

    /// Opens a websocket to server number `server` (in the order given) and the default
    /// namespace, with `auth` as the payload of the Socket.IO `CONNECT`; fails on a refusal
    /// or after [`WAIT`].
    pub async fn connect_to(&self, server: usize, auth: Option<&Value>) -> Result<Ws> {
        tokio::time::timeout(WAIT, self.try_connect_to(server, auth))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
    }

    /// How many servers connections are spread over.
    pub fn servers(&self) -> usize {
        self.servers.len()
    }

    /// A TCP connection to the next server, from the next source address; returns the
    /// server's address and websocket URL too.
    pub async fn tcp(&self) -> Result<(TcpStream, SocketAddr, &str)> {
        let server = self.next_server.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.tcp_to(server).await
    }

    /// Like [`Target::tcp`], to server number `server`.
    async fn tcp_to(&self, server: usize) -> Result<(TcpStream, SocketAddr, &str)> {
        let socket = TcpSocket::new_v4()?;
        if !self.sources.is_empty() {
            let i = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            socket.bind(SocketAddr::new(self.sources[i], 0))?;
        }
        let (addr, url) = &self.servers[server % self.servers.len()];
        let stream = socket.connect(*addr).await.context("tcp connect")?;
        stream.set_nodelay(true)?;
        Ok((stream, *addr, url))
    }

    async fn try_connect(&self) -> Result<Ws> {
        let server = self.next_server.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.try_connect_to(server, None).await
    }

    async fn try_connect_to(&self, server: usize, auth: Option<&Value>) -> Result<Ws> {
        let (stream, _, url) = self.tcp_to(server).await?;
        // Small buffers: tungstenite's defaults (128 KiB each way) times 19,000 clients
        // would not fit; our frames are a few KiB at most.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .context("websocket handshake")?;
        match next_text(&mut ws).await? {
            Some(open) if open.starts_with('0') => {}
            other => bail!("expected the Engine.IO open packet, got {other:?}"),
        }
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        ws.send(Message::text(connect)).await?;
        match next_text(&mut ws).await? {
            Some(ack) if ack.starts_with("40") => Ok(ws),
            other => bail!("namespace connect refused: {other:?}"),
        }
    }
}

/// The next text frame that is not a heartbeat; answers pings on the way. `None` once
/// the connection is closed.
pub async fn next_text(ws: &mut Ws) -> Result<Option<String>> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                ws.send(Message::text("3")).await?;
            }
            Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Sends a Socket.IO event.
pub async fn emit(ws: &mut Ws, event: &str, args: &[Value]) -> Result<()> {
    let mut packet = vec![Value::from(event)];
    packet.extend_from_slice(args);
    ws.send(Message::text(format!("42{}", Value::Array(packet))))
        .await?;
    Ok(())
}

/// Waits for the event `name`, skipping any other, and returns its arguments.
pub async fn expect_event(ws: &mut Ws, name: &str) -> Result<Vec<Value>> {
    let wait = async {
        loop {
            let Some(text) = next_text(ws).await? else {
                bail!("connection closed while waiting for {name}");
            };
            let Some(body) = text.strip_prefix("42") else {
                continue;
            };
            if let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(body)
                && items.first().and_then(Value::as_str) == Some(name)
            {
                items.remove(0);
                return Ok(items);
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .map_err(|_| anyhow!("timed out waiting for {name}"))?
}

/// The first argument of an event, as a string.
pub fn first_str(args: &[Value]) -> Result<String> {
    args.first()
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("expected a string argument, got {args:?}"))
}

/// A connected room member and the id the server announces it by.
pub struct Member {
    pub ws: Ws,
    pub id: String,
}

/// Connects `size` clients into one new room and learns every member's announced id:
/// later members are announced to earlier ones by `new-user-joined`, and the creator,
/// whom nobody is told about, is learned from the sender id of one relay it makes.
/// Works whether the server announces peer ids (meshchat) or socket ids (the reference).
pub async fn form_room(target: &Target, size: usize) -> Result<(String, Vec<Member>)> {
    let mut creator = target.connect().await?;
    emit(&mut creator, "create-room", &[]).await?;
    let room = first_str(&expect_event(&mut creator, "room-created").await?)?;
    let mut wss = vec![creator];
    let mut ids = vec![String::new()];
    for _ in 1..size {
        let mut joiner = target.connect().await?;
        emit(&mut joiner, "join-room", &[Value::from(room.as_str())]).await?;
        let mut announced = None;
        for earlier in &mut wss {
            let id = first_str(&expect_event(earlier, "new-user-joined").await?)?;
            if announced.get_or_insert_with(|| id.clone()) != &id {
                bail!("members were told different ids for one joiner");
            }
        }
        wss.push(joiner);
        ids.extend(announced);
    }
    if size > 1 {
        let hello = serde_json::json!({ "candidate": "", "sdpMid": "0" });
        emit(
            &mut wss[0],
            "ice-candidate",
            &[Value::from(ids[1].as_str()), hello],
        )
        .await?;
        ids[0] = first_str(&expect_event(&mut wss[1], "ice-candidate").await?)?;
    }
    let members = wss
        .into_iter()
        .zip(ids)
        .map(|(ws, id)| Member { ws, id })
        .collect();
    Ok((room, members))
}
