//! Test harness: starts the real server through `meshchat::run` on 127.0.0.1:0, speaks
//! Engine.IO v4 / Socket.IO v5 over a real websocket with control over heartbeats and the
//! transport, and reads `GET /metrics` as a scraper would.
#![allow(dead_code)]

mod metrics;
pub mod uclient;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use meshchat::Config;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub use metrics::Metrics;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Fails the test if `future` takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// An HTTP client whose every request gives up after [`WAIT`].
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("an HTTP client with a timeout")
}

/// Waits until a redis-server started with its output piped says it is ready, then keeps
/// draining that output so the server never blocks on a full pipe.
pub async fn redis_ready(child: &mut tokio::process::Child) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    let ready = within("redis-server ready", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Ready to accept connections") {
                return true;
            }
        }
        false
    });
    assert!(ready.await, "redis-server exited before it was ready");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

/// The defaults, with the built-in STUN server off: tests run side by side, and port 3478
/// may be taken on the machine (by coturn, say). STUN tests give it a free port.
pub fn config() -> Config {
    let mut config = Config::defaults();
    config.ice.stun_port = 0;
    config
}

/// [`config`] with the settings `change` makes.
pub fn config_with(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = config();
    change(&mut config);
    config
}

/// A server running in this process, started exactly as the binary starts it.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(meshchat::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers a graceful shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap()
    }

    /// Scrapes `GET /metrics`, checking that the page is OpenMetrics text.
    /// Waits until `/readyz` answers 200 (a cluster node: Redis reached, subscribed).
    pub async fn ready(&self) {
        within("/readyz 200", async {
            loop {
                let status = http()
                    .get(self.url("/readyz"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if status.is_ok_and(|s| s == 200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    pub async fn metrics(&self) -> Metrics {
        let response = http().get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET /metrics");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let page = response.text().await.unwrap();
        assert!(page.ends_with("# EOF\n"), "{page}");
        Metrics::parse(&page)
    }

    /// Scrapes `/metrics` until `until` holds (the server updates some numbers after the
    /// event a client sees), failing the test after [`WAIT`].
    pub async fn metrics_when(&self, what: &str, until: impl Fn(&Metrics) -> bool) -> Metrics {
        let mut last = None;
        let reached = tokio::time::timeout(WAIT, async {
            loop {
                let metrics = self.metrics().await;
                if until(&metrics) {
                    return metrics;
                }
                last = Some(metrics);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        reached.unwrap_or_else(|_| panic!("metrics never showed {what}; last page:\n{last:?}"))
    }
}

/// Something the server sent to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Event(String, Vec<Value>),
    Ack(u64, Vec<Value>),
    Disconnect,
    Closed,
}

/// A Socket.IO client over a raw websocket.
pub struct Client {
    pub sid: String,
    out: mpsc::UnboundedSender<Message>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    pending: VecDeque<Incoming>,
    answer_pings: Arc<AtomicBool>,
    /// Every Socket.IO event frame received, as the text that came over the wire.
    pub raw_frames: Arc<std::sync::Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    next_ack: u64,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::try_connect(addr, None)
            .await
            .expect("websocket connect refused")
    }

    /// Connects with `auth` as the Socket.IO `CONNECT` payload (`{"resume": token}`, say).
    pub async fn connect_with_auth(addr: SocketAddr, auth: Value) -> Self {
        Self::open(addr, None, format!("40{auth}"))
            .await
            .expect("websocket connect refused")
    }

    /// Connects, sending `origin` as the Origin header; a refusal gives its HTTP status.
    pub async fn try_connect(addr: SocketAddr, origin: Option<&str>) -> Result<Self, u16> {
        Self::open(addr, origin, "40".to_owned()).await
    }

    /// Connects, sending `connect` as the Socket.IO `CONNECT` packet.
    async fn open(addr: SocketAddr, origin: Option<&str>, connect: String) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let connected = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("websocket connect timed out");
        let ws = match connected {
            Ok((ws, _)) => ws,
            Err(Error::Http(response)) => return Err(response.status().as_u16()),
            Err(other) => panic!("websocket connect failed: {other}"),
        };
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (sid_tx, sid_rx) = oneshot::channel();
        let answer_pings = Arc::new(AtomicBool::new(true));
        let raw_frames = Arc::new(std::sync::Mutex::new(Vec::new()));
        let raw_log = raw_frames.clone();

        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let pong = out.clone();
        let answer = answer_pings.clone();
        let reader = tokio::spawn(async move {
            let mut sid_tx = Some(sid_tx);
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let text = text.as_str();
                match text.as_bytes().first() {
                    Some(b'0') => {
                        // Engine.IO open: now open the default namespace.
                        let _ = pong.send(Message::text(connect.clone()));
                    }
                    Some(b'2') if answer.load(Ordering::SeqCst) => {
                        let _ = pong.send(Message::text("3"));
                    }
                    Some(b'4') => {
                        if text.starts_with("42") {
                            raw_log.lock().unwrap().push(text.to_owned());
                        }
                        if let Some(item) = parse_socketio(&text[1..], &mut sid_tx) {
                            let _ = in_tx.send(item);
                        }
                    }
                    _ => {}
                }
            }
            let _ = in_tx.send(Incoming::Closed);
        });
        let sid = tokio::time::timeout(WAIT, sid_rx)
            .await
            .expect("no socket.io connect ack")
            .expect("connection closed before the connect ack");
        Ok(Self {
            sid,
            out,
            incoming,
            pending: VecDeque::new(),
            answer_pings,
            raw_frames,
            reader,
            writer,
            next_ack: 1,
        })
    }

    /// Sends an event without an ack callback.
    pub fn emit(&self, event: &str, args: &[Value]) {
        self.send_raw(&format!("42{}", packet_array(event, args)));
    }

    /// Sends an event with an ack callback and waits for the ack's arguments (events that
    /// arrive meanwhile are kept for `next`).
    pub async fn emit_ack(&mut self, event: &str, args: &[Value]) -> Vec<Value> {
        let id = self.emit_asking_ack(event, args);
        self.expect_ack(id).await
    }

    /// Sends an event with an ack callback and returns the ack id, without waiting.
    pub fn emit_asking_ack(&mut self, event: &str, args: &[Value]) -> u64 {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_raw(&format!("42{id}{}", packet_array(event, args)));
        id
    }

    /// Waits for the ack `id` and returns its arguments (events that arrive meanwhile are
    /// kept for `next`).
    pub async fn expect_ack(&mut self, id: u64) -> Vec<Value> {
        let mut held = VecDeque::new();
        let reply = loop {
            match self.next().await {
                Incoming::Ack(got, args) if got == id => break args,
                Incoming::Closed => panic!("connection closed while waiting for ack {id}"),
                other => held.push_back(other),
            }
        };
        // Whatever arrived before the ack is still to be seen, in order.
        held.append(&mut self.pending);
        self.pending = held;
        reply
    }

    /// Sends one Engine.IO text frame as it is.
    pub fn send_raw(&self, frame: &str) {
        let _ = self.out.send(Message::text(frame.to_owned()));
    }

    /// Sends one binary websocket frame.
    pub fn send_binary(&self, data: Vec<u8>) {
        let _ = self.out.send(Message::binary(data));
    }

    /// The next thing the server sends, failing the test after `WAIT`.
    pub async fn next(&mut self) -> Incoming {
        if let Some(item) = self.pending.pop_front() {
            return item;
        }
        tokio::time::timeout(WAIT, self.incoming.recv())
            .await
            .expect("timed out waiting for the server")
            .unwrap_or(Incoming::Closed)
    }

    /// The next event, skipping acks; fails if it is not `name`.
    pub async fn expect_event(&mut self, name: &str) -> Vec<Value> {
        loop {
            match self.next().await {
                Incoming::Event(got, args) => {
                    assert_eq!(got, name, "expected {name}, got {got} {args:?}");
                    return args;
                }
                Incoming::Ack(..) => continue,
                other => panic!("expected event {name}, got {other:?}"),
            }
        }
    }

    /// The next event, whatever its name, skipping acks.
    pub async fn expect_any(&mut self) -> (String, Vec<Value>) {
        loop {
            match self.next().await {
                Incoming::Event(name, args) => return (name, args),
                Incoming::Ack(..) => continue,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Waits for the event `name`, skipping acks; returns its arguments and every other
    /// event that came first, in order.
    pub async fn until_event(&mut self, name: &str) -> (Vec<Value>, Vec<(String, Vec<Value>)>) {
        let mut before = Vec::new();
        loop {
            match self.next().await {
                Incoming::Event(got, args) if got == name => return (args, before),
                Incoming::Event(got, args) => before.push((got, args)),
                Incoming::Ack(..) => continue,
                other => panic!("expected event {name}, got {other:?} after {before:?}"),
            }
        }
    }

    /// Waits until the server disconnects this client or closes its transport; returns
    /// what it sent before.
    pub async fn until_closed(&mut self) -> Vec<Incoming> {
        let mut before = Vec::new();
        loop {
            match self.next().await {
                Incoming::Disconnect | Incoming::Closed => return before,
                other => before.push(other),
            }
        }
    }

    /// Stops answering heartbeats while keeping the connection open.
    pub fn stop_answering_pings(&self) {
        self.answer_pings.store(false, Ordering::SeqCst);
    }

    /// Drops the TCP connection without any close handshake.
    pub fn kill_transport(self) {
        self.reader.abort();
        self.writer.abort();
    }

    /// A clean Socket.IO disconnect (what `socket.disconnect()` sends).
    pub fn disconnect(&self) {
        self.send_raw("41");
    }

    /// Creates a room and returns its id.
    pub async fn create_room(&mut self) -> String {
        self.emit("create-room", &[]);
        let args = self.expect_event("room-created").await;
        args[0].as_str().unwrap().to_owned()
    }
}

fn packet_array(event: &str, args: &[Value]) -> String {
    let mut all = vec![Value::from(event)];
    all.extend_from_slice(args);
    Value::Array(all).to_string()
}

/// Parses a Socket.IO packet (after the Engine.IO `4`).
fn parse_socketio(packet: &str, sid_tx: &mut Option<oneshot::Sender<String>>) -> Option<Incoming> {
    let kind = packet.as_bytes().first()?;
    let rest = &packet[1..];
    match kind {
        b'0' => {
            let body: Value = serde_json::from_str(rest).ok()?;
            if let Some(tx) = sid_tx.take() {
                let _ = tx.send(body["sid"].as_str()?.to_owned());
            }
            None
        }
        b'1' => Some(Incoming::Disconnect),
        b'2' => {
            let mut args: Vec<Value> = serde_json::from_str(rest).ok()?;
            let name = args.remove(0).as_str()?.to_owned();
            Some(Incoming::Event(name, args))
        }
        b'3' => {
            let split = rest.find('[')?;
            let id = rest[..split].parse().ok()?;
            Some(Incoming::Ack(
                id,
                serde_json::from_str(&rest[split..]).ok()?,
            ))
        }
        _ => None,
    }
}

/// Two cluster nodes, once ready, share a room: a client of `one` creates it, a client of
/// `two` joins and `one`'s member hears it, and an offer crosses from one to the other.
pub async fn share_a_room(one: &Server, two: &Server) {
    one.ready().await;
    two.ready().await;
    let mut a = Client::connect(one.addr).await;
    let mut b = Client::connect(two.addr).await;
    let room = a.create_room().await;
    b.emit("join-room", &[Value::from(room)]);
    let b_peer = a.expect_event("new-user-joined").await[0].clone();
    a.emit("rtc-offer", &[b_peer, serde_json::json!({"sdp": "x"})]);
    let offer = b.expect_event("rtc-offer").await;
    assert_eq!(offer[1], serde_json::json!({"sdp": "x"}));
}

/// Two clients in one room: `(first, second, room, first's peer id)`. The second client
/// learns nothing of the first's id until it receives a relay, so tests get it from the
/// first's side: the `new-user-joined` the first receives carries the second's id.
pub async fn pair(server: &Server) -> (Client, Client, String, String) {
    let mut a = Client::connect(server.addr).await;
    let b = Client::connect(server.addr).await;
    let room = a.create_room().await;
    b.emit("join-room", &[Value::from(room.clone())]);
    let b_peer = a.expect_event("new-user-joined").await[0]
        .as_str()
        .unwrap()
        .to_owned();
    (a, b, room, b_peer)
}

/// Where a long-polling client opens its Engine.IO session.
pub const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// The URL of the long-polling session that `open`, the body of a successful handshake to
/// [`POLLING`] on `server`, opened.
pub async fn polling_session(server: &Server, open: reqwest::Response) -> String {
    let open = open.text().await.unwrap();
    let open: Value = serde_json::from_str(&open[1..]).unwrap();
    format!(
        "{}&sid={}",
        server.url(POLLING),
        open["sid"].as_str().unwrap()
    )
}

/// Joins `room` as a long-polling client that then never polls again, so everything sent
/// to it piles up in its outgoing buffer. Returns its peer id, as announced to `member`.
pub async fn join_and_stop_reading(server: &Server, member: &mut Client, room: &str) -> Value {
    let http = http();
    let open = http.get(server.url(POLLING)).send().await.unwrap();
    let session = polling_session(server, open).await;
    http.post(&session).body("40").send().await.unwrap();
    http.get(&session).send().await.unwrap(); // the namespace connect ack
    http.post(&session)
        .body(format!(r#"42["join-room","{room}"]"#))
        .send()
        .await
        .unwrap();
    member.expect_event("new-user-joined").await[0].clone()
}

/// The peer id `from` is announced by, as `to` (a member of one of its rooms, known as
/// `to_peer`) sees it on a relay: an `rtc-offer` with the payload `{"probe": true}`.
pub async fn peer_id_seen_by(from: &Client, to: &mut Client, to_peer: &str) -> String {
    from.emit(
        "rtc-offer",
        &[Value::from(to_peer), serde_json::json!({"probe": true})],
    );
    let args = to.expect_event("rtc-offer").await;
    assert_eq!(args[1], serde_json::json!({"probe": true}));
    args[0].as_str().unwrap().to_owned()
}

/// A server with a small outgoing buffer and a fast heartbeat, and a room where `b` has
/// stopped reading while `a` sends it 100 candidates. Returns the server, `a` and b's peer
/// id.
pub async fn relays_to_a_client_that_never_reads() -> (Server, Client, Value) {
    let server = Server::start_with(config_with(|c| {
        c.listen.max_buffer = 16;
        c.listen.ping_interval_ms = 300;
        c.listen.ping_timeout_ms = 500;
    }))
    .await;
    let mut a = Client::connect(server.addr).await;
    let room = a.create_room().await;
    let b_peer = join_and_stop_reading(&server, &mut a, &room).await;
    for i in 0..100 {
        a.emit(
            "ice-candidate",
            &[b_peer.clone(), serde_json::json!({ "i": i })],
        );
    }
    (server, a, b_peer)
}

/// A server where a connection may signal 5 events a second in bursts of 10, and is
/// dropped as a flood once 20 more have been over the limit.
pub async fn server_with_a_tight_signal_rate() -> Server {
    Server::start_with(config_with(|c| {
        c.limits.signal_rate = 5;
        c.limits.signal_burst = 10;
        c.limits.flood_tolerance = 20;
    }))
    .await
}

/// Sends the peer `to` 200 ICE candidates from `from` at once: a flood on a
/// [`server_with_a_tight_signal_rate`].
pub fn flood(from: &Client, to: &str) {
    for i in 0..200 {
        from.emit(
            "ice-candidate",
            &[Value::from(to), serde_json::json!({ "i": i })],
        );
    }
}
