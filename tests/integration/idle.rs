//! Idle WebSockets on the server: nobody reads them between requests but the idle
//! watcher, which must answer a client's ping at once, let go of a connection its client
//! closed at once, and hold one descriptor per connection. Pings from the server are put
//! off (`--ping-interval 60000`), so that only the watcher can have acted.

use std::net::Shutdown;
use std::time::Duration;

use serde_json::Value;

use crate::support::rawpeer::{Msg, RawWs, CLOSE, PING, PONG};
use crate::support::{fd_count, get, poll, Server};

/// No ping round from the server while a test runs.
const QUIET: [&str; 4] = ["--ping-interval", "60000", "--ping-timeout", "120000"];

/// The idle count `/status.json` shows for client `id` (0 when it is not pooled).
fn idle_count(server: &Server, id: &str) -> u64 {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let status: Value = serde_json::from_slice(&reply.body).expect("JSON status");
    let clients = status["clients"].as_array().cloned().unwrap_or_default();
    let row = clients.iter().find(|c| c["id"] == id);
    row.and_then(|c| c["idle"].as_u64()).unwrap_or(0)
}

/// Waits (up to `within`) until client `id` has `n` idle connections.
fn wait_idle(server: &Server, id: &str, n: u64, within: Duration) -> bool {
    poll(within, || (idle_count(server, id) == n).then_some(())).is_some()
}

/// Registers `n` raw connections of client `id` and waits until all are idle.
fn register(server: &Server, id: &str, n: usize) -> Vec<RawWs> {
    let peers: Vec<RawWs> = (0..n)
        .map(|_| RawWs::register_with(server, &format!("{id}_{n}")))
        .collect();
    assert!(
        wait_idle(server, id, n as u64, Duration::from_secs(20)),
        "{n} connections never showed as idle"
    );
    peers
}

#[test]
fn a_ping_on_an_idle_connection_is_answered_at_once() {
    let server = Server::start(&QUIET);
    let mut peers = register(&server, "pinger", 3);
    let peer = &mut peers[1];
    peer.stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("time-out");
    for payload in [&b"are you there"[..], b"", b"again"] {
        peer.send(PING, true, payload).expect("send ping");
        let frame = peer
            .read_frame()
            .unwrap_or_else(|e| panic!("no pong within 1 s: {e}"))
            .expect("connection ended instead of a pong");
        assert_eq!((frame.opcode, frame.payload.as_slice()), (PONG, payload));
    }
    // Still pooled and usable: the pings did not make the connection look busy or dead.
    assert!(wait_idle(&server, "pinger", 3, Duration::from_secs(2)));
}

#[test]
fn a_connection_closed_while_idle_leaves_the_pool_at_once() {
    let server = Server::start(&QUIET);
    let mut peers = register(&server, "leaver", 3);
    // One ends with a close frame (answered with one), one just goes away.
    let mut closing = peers.remove(0);
    closing
        .send(CLOSE, true, &1000u16.to_be_bytes())
        .expect("send close");
    closing
        .stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("time-out");
    match closing.read_until_end(Duration::from_secs(2)) {
        Some((_, Msg::Close(..) | Msg::Gone)) => {}
        other => panic!("the server kept a closed connection open: {other:?}"),
    }
    assert!(
        wait_idle(&server, "leaver", 2, Duration::from_secs(2)),
        "a connection closed with a close frame is still counted after 2 s"
    );
    let gone = peers.remove(0);
    gone.stream.shutdown(Shutdown::Both).expect("shutdown");
    drop(gone);
    assert!(
        wait_idle(&server, "leaver", 1, Duration::from_secs(2)),
        "a connection whose client went away is still counted after 2 s"
    );
}

#[test]
fn a_registered_websocket_holds_one_descriptor() {
    let server = Server::start(&QUIET);
    let _first = register(&server, "counted", 10);
    // Settled: the status requests' connections are closed.
    let settled = |n: usize| {
        poll(Duration::from_secs(10), || {
            let a = fd_count(server.proc.pid());
            std::thread::sleep(Duration::from_millis(100));
            (a == fd_count(server.proc.pid())).then_some(a)
        })
        .unwrap_or_else(|| panic!("fd count never settled with {n} registered"))
    };
    let before = settled(10);
    let _more = register(&server, "counted-too", 20);
    let after = settled(30);
    // One per WebSocket; a status connection the server still holds may add one.
    assert!(
        (20..=21).contains(&(after - before)),
        "20 more WebSockets took {} descriptors",
        after - before
    );
}
