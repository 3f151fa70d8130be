//! A lean Engine.IO v4 long-polling client that never upgrades, for the idle scenario's
//! polling figure: one keep-alive HTTP/1.1 connection per client, its requests in turn.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::client::{Target, WAIT};

/// Engine.IO's separator between the packets of one polling payload.
const SEPARATOR: char = '\u{1e}';

/// One polling client, connected to the default namespace.
pub struct Poller {
    send: SendRequest<Full<Bytes>>,
    host: String,
    /// The polling path with this session's id.
    path: String,
}

impl Poller {
    /// Opens a session and the default namespace; fails on a refusal or after [`WAIT`].
    pub async fn connect(target: &Target) -> Result<Self> {
        tokio::time::timeout(WAIT, Self::try_connect(target))
            .await
            .map_err(|_| anyhow!("polling connect timed out"))?
    }

    async fn try_connect(target: &Target) -> Result<Self> {
        let (stream, addr, _) = target.tcp().await?;
        let (send, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .context("http handshake")?;
        tokio::spawn(conn);
        let mut poller = Self {
            send,
            host: addr.to_string(),
            path: "/socket.io/?EIO=4&transport=polling".into(),
        };
        let open = poller.get().await?;
        let sid = open
            .strip_prefix('0')
            .and_then(|json| serde_json::from_str::<Value>(json).ok())
            .and_then(|v| v.get("sid")?.as_str().map(str::to_owned))
            .ok_or_else(|| anyhow!("expected the Engine.IO open packet, got {open:?}"))?;
        poller.path.push_str("&sid=");
        poller.path.push_str(&sid);
        poller.post("40").await?;
        let ack = poller
            .expect(1, |p| p.starts_with('4').then(|| p.to_owned()))
            .await?
            .remove(0);
        if !ack.starts_with("40") {
            bail!("namespace connect refused: {ack:?}");
        }
        Ok(poller)
    }

    async fn request(&mut self, method: Method, body: &str) -> Result<String> {
        let req = Request::builder()
            .method(method)
            .uri(&self.path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))?;
        let res = self.send.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        Ok(text)
    }

    /// The next payload: waits until the server has packets (at most one ping interval).
    pub async fn get(&mut self) -> Result<String> {
        self.request(Method::GET, "").await
    }

    pub async fn post(&mut self, packet: &str) -> Result<()> {
        self.request(Method::POST, packet).await.map(drop)
    }

    /// Waits for `n` packets for which `wanted` returns a value, answering pings on the
    /// way, and returns those values.
    async fn expect<T>(
        &mut self,
        n: usize,
        mut wanted: impl FnMut(&str) -> Option<T>,
    ) -> Result<Vec<T>> {
        let wait = async {
            let mut found = Vec::with_capacity(n);
            while found.len() < n {
                let payload = self.get().await?;
                for packet in payload.split(SEPARATOR) {
                    if packet == "2" {
                        self.post("3").await?;
                    } else if let Some(value) = wanted(packet) {
                        found.push(value);
                    }
                }
            }
            Ok(found)
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .map_err(|_| anyhow!("timed out waiting on a polling client"))?
    }

    /// Answers heartbeats until the session ends; `on_ping` runs after each pong.
    pub async fn hold(mut self, mut on_ping: impl FnMut()) {
        loop {
            let Ok(payload) = self.get().await else {
                return;
            };
            for packet in payload.split(SEPARATOR) {
                if packet == "2" {
                    if self.post("3").await.is_err() {
                        return;
                    }
                    on_ping();
                } else if packet == "1" {
                    return; // closed by the server
                }
            }
        }
    }
}

/// Connects `size` polling clients into one new room: the creator learns the room id, the
/// others join it, and the creator sees every join announced.
pub async fn form_room(target: &Target, size: usize) -> Result<Vec<Poller>> {
    let mut creator = Poller::connect(target).await?;
    creator.post(r#"42["create-room"]"#).await?;
    let room = creator
        .expect(1, |p| {
            let args = p.strip_prefix(r#"42["room-created","#)?;
            Some(args.trim_end_matches(']').trim_matches('"').to_owned())
        })
        .await?
        .remove(0);
    let mut members = vec![];
    for _ in 1..size {
        let mut joiner = Poller::connect(target).await?;
        joiner.post(&format!(r#"42["join-room","{room}"]"#)).await?;
        members.push(joiner);
    }
    creator
        .expect(size - 1, |p| {
            p.starts_with(r#"42["new-user-joined","#).then_some(())
        })
        .await?;
    members.insert(0, creator);
    Ok(members)
}
