//! The floor of the relay benchmark: a bare tokio-tungstenite server that relays the same
//! frames as meshchat with no Socket.IO library, only string slicing. It speaks just enough
//! of the protocol for the load generator (open packet, namespace connect, create-room,
//! join-room, new-user-joined, relays between members of one room); nothing else.
//!
//! `raw-relay [ADDR]` (default 127.0.0.1:3000), one thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Default)]
struct State {
    next_id: u64,
    /// By client id: its room and the queue of its writer.
    clients: HashMap<String, (Option<String>, mpsc::UnboundedSender<Message>)>,
    /// By room id: its members.
    rooms: HashMap<String, Vec<String>>,
}

type Shared = Rc<RefCell<State>>;

fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("raw-relay listening on {addr}");
        let state = Shared::default();
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::task::spawn_local(client(stream, state.clone()));
        }
    })
}

async fn client(stream: TcpStream, state: Shared) {
    let _ = stream.set_nodelay(true);
    // tungstenite zeroes the free part of its read buffer before every read: with its
    // default of 128 KiB that memset was 89% of this relay's instructions at 1,000 msg/s
    // (callgrind), so it cost more per message than meshchat below saturation. 4 KiB still
    // takes several 1 KB frames per read when busy. The writer flushes once per batch.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut s = state.borrow_mut();
        s.next_id += 1;
        let id = format!("p{:09}", s.next_id);
        s.clients.insert(id.clone(), (None, tx.clone()));
        id
    };
    let open = format!(
        r#"0{{"sid":"{id}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    );
    let _ = tx.send(Message::text(open));
    let writer = tokio::task::spawn_local(async move {
        while let Some(msg) = rx.recv().await {
            if sink.feed(msg).await.is_err() {
                return;
            }
            while let Ok(msg) = rx.try_recv() {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        if let Message::Text(text) = msg {
            on_frame(&state, &id, &tx, text.as_str());
        }
    }
    writer.abort();
    leave(&state, &id);
}

fn on_frame(state: &Shared, id: &str, tx: &mpsc::UnboundedSender<Message>, frame: &str) {
    if frame == "40" {
        let _ = tx.send(Message::text(format!(r#"40{{"sid":"{id}"}}"#)));
        return;
    }
    let Some(rest) = frame.strip_prefix("42[\"") else {
        return;
    };
    let Some((event, rest)) = rest.split_once('"') else {
        return;
    };
    let mut s = state.borrow_mut();
    match event {
        "create-room" => {
            s.next_id += 1;
            let room = format!("r{:09}", s.next_id);
            s.rooms.insert(room.clone(), vec![id.to_owned()]);
            if let Some(c) = s.clients.get_mut(id) {
                c.0 = Some(room.clone());
            }
            let _ = tx.send(Message::text(format!(r#"42["room-created","{room}"]"#)));
        }
        "join-room" => {
            let Some(room) = rest
                .strip_prefix(",\"")
                .and_then(|r| r.split_once('"'))
                .map(|(r, _)| r.to_owned())
            else {
                return;
            };
            let announce = Message::text(format!(r#"42["new-user-joined","{id}"]"#));
            let members = s.rooms.entry(room.clone()).or_default().clone();
            for m in &members {
                if let Some((_, to)) = s.clients.get(m) {
                    let _ = to.send(announce.clone());
                }
            }
            s.rooms.entry(room.clone()).or_default().push(id.to_owned());
            if let Some(c) = s.clients.get_mut(id) {
                c.0 = Some(room);
            }
        }
        _ => {
            // A relay: 42["event","target",payload] goes to the target, if it shares the
            // sender's room, as 42["event","sender",payload].
            let Some((target, payload)) = rest.strip_prefix(",\"").and_then(|r| r.split_once('"'))
            else {
                return;
            };
            let room = s.clients.get(id).and_then(|c| c.0.as_ref());
            let Some((to_room, to)) = s.clients.get(target) else {
                return;
            };
            if room.is_none() || room != to_room.as_ref() {
                return;
            }
            let mut out = String::with_capacity(frame.len() + 8);
            out.push_str("42[\"");
            out.push_str(event);
            out.push_str("\",\"");
            out.push_str(id);
            out.push('"');
            out.push_str(payload);
            let _ = to.send(Message::text(out));
        }
    }
}

fn leave(state: &Shared, id: &str) {
    let mut s = state.borrow_mut();
    let Some((Some(room), _)) = s.clients.remove(id) else {
        return;
    };
    let gone = Message::text(format!(r#"42["user-disconnected","{id}"]"#));
    let members = s
        .rooms
        .get_mut(&room)
        .map(std::mem::take)
        .unwrap_or_default();
    let rest: Vec<String> = members.into_iter().filter(|m| m != id).collect();
    for m in &rest {
        if let Some((_, to)) = s.clients.get(m) {
            let _ = to.send(gone.clone());
        }
    }
    if rest.is_empty() {
        s.rooms.remove(&room);
    } else {
        s.rooms.insert(room, rest);
    }
}
