//! The namespace connection: a client may send events as soon as it is told it is
//! connected.

mod common;

use common::{Client, Server};

/// Events sent right after the connect ack are handled, not lost to handlers that
/// socketioxide would register only when its spawned connect task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_after_the_connect_ack_is_handled() {
    let server = Server::start().await;
    let mut clients = Vec::new();
    for _ in 0..60 {
        let client = Client::connect(server.addr).await;
        client.emit("create-room", &[]);
        clients.push(client);
    }
    for client in &mut clients {
        let args = client.expect_event("room-created").await;
        assert!(
            args[0].is_string(),
            "room-created without a room id: {args:?}"
        );
    }
}
