//! The hub in memory: connections over socket pairs in this process, no server.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::protocol::{Role, WsConn};
use crate::server::metrics::ClientStats;

const LONG: Duration = Duration::from_secs(60);

/// A connection of client `id`, and the client's end of it (kept open by the caller).
fn connection(id: &str) -> (Connection, UnixStream) {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    let ws = WsConn::new(tiny_http::UpgradedStream::Unix(ours), Role::Server);
    let slot = tiny_http::ConnectionSlot::default();
    let conn = Connection::new(ws, slot, id.into(), Arc::new(ClientStats::default()));
    (conn, theirs)
}

/// A hub with `counts[i].1` idle connections of client `counts[i].0`.
fn hub(counts: &[(&str, usize)]) -> (Hub, Vec<UnixStream>) {
    let hub = Hub::new(LONG, None);
    let mut peers = Vec::new();
    for &(id, n) in counts {
        for _ in 0..n {
            let (conn, peer) = connection(id);
            hub.add(conn, n);
            peers.push(peer);
        }
    }
    (hub, peers)
}

/// (idle, busy) of client `id`; `None` when it is not pooled.
fn counts(hub: &Hub, id: &str) -> Option<(usize, usize)> {
    let clients = hub.clients();
    let pooled = clients.iter().find(|p| &*p.id == id)?;
    Some((pooled.idle, pooled.busy))
}

fn any() -> Choice<'static> {
    Choice {
        only: None,
        avoid: None,
        streams: false,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(50)
}

#[test]
fn a_lease_is_busy_until_released_and_gone_when_dropped() {
    let (hub, _peers) = hub(&[("a", 2)]);
    assert_eq!(counts(&hub, "a"), Some((2, 0)));
    let lease = hub.acquire(soon(), any()).expect("a lease");
    assert_eq!(counts(&hub, "a"), Some((1, 1)));
    lease.release();
    assert_eq!(counts(&hub, "a"), Some((2, 0)));
    let first = hub.acquire(soon(), any()).expect("a lease");
    let second = hub.acquire(soon(), any()).expect("another");
    drop(first);
    assert_eq!(
        counts(&hub, "a"),
        Some((0, 1)),
        "a dropped lease is forgotten"
    );
    drop(second);
    hub.clean_up(LONG);
    assert_eq!(
        counts(&hub, "a"),
        None,
        "a client with nothing left is forgotten"
    );
}

#[test]
fn with_every_connection_busy_a_request_waits_for_the_next_released() {
    let (hub, _peers) = hub(&[("a", 1)]);
    let held = hub.acquire(soon(), any()).expect("the one connection");
    assert_eq!(
        hub.acquire(soon(), any()).err(),
        Some(AcquireError::Timeout),
        "nothing released before the deadline"
    );
    thread::scope(|s| {
        let waiter = s.spawn(|| hub.acquire(Instant::now() + LONG, any()).is_ok());
        // The waiter is queued once the hub holds it; release then hands the connection
        // straight to it.
        while hub.state.lock().waiters.is_empty() {
            thread::yield_now();
        }
        held.release();
        assert!(
            waiter.join().expect("waiter"),
            "the waiter got the connection"
        );
    });
    assert!(hub.state.lock().waiters.is_empty());
}

#[test]
fn a_pinned_request_takes_only_its_client() {
    let (hub, _peers) = hub(&[("a", 1), ("b", 1)]);
    let only_b = Choice {
        only: Some("b"),
        avoid: None,
        streams: false,
    };
    let mut lease = hub.acquire(soon(), only_b).expect("b's connection");
    assert_eq!(&*lease.conn().client_id, "b");
    assert_eq!(
        hub.acquire(soon(), only_b).err(),
        Some(AcquireError::Timeout),
        "a's idle connection is not b's"
    );
    let only_c = Choice {
        only: Some("c"),
        avoid: None,
        streams: false,
    };
    assert_eq!(
        hub.acquire(soon(), only_c).err(),
        Some(AcquireError::UnknownClient)
    );
    let empty = Hub::new(LONG, None);
    assert_eq!(
        empty.acquire(soon(), any()).err(),
        Some(AcquireError::NoClient)
    );
}

#[test]
fn an_avoided_client_is_used_only_when_no_other_has_a_connection() {
    let (hub, _peers) = hub(&[("a", 1), ("b", 1)]);
    let avoid_a = Choice {
        only: None,
        avoid: Some("a"),
        streams: false,
    };
    let mut first = hub.acquire(soon(), avoid_a).expect("a connection");
    assert_eq!(&*first.conn().client_id, "b");
    let mut second = hub
        .acquire(soon(), avoid_a)
        .expect("a's, as no other is left");
    assert_eq!(&*second.conn().client_id, "a");
}

#[test]
fn connections_taken_by_token_come_back_and_the_rest_stay_findable() {
    let (hub, _peers) = hub(&[("a", 3), ("b", 2)]);
    let tokens: Vec<u64> = hub.state.lock().idle_at.keys().copied().collect();
    assert_eq!(tokens.len(), 5);
    // Take them out in an order that moves others around (swap_remove), then back.
    let mut taken: Vec<Connection> = tokens
        .iter()
        .rev()
        .map(|&t| hub.take_idle_by_token(t).expect("idle"))
        .collect();
    assert_eq!(counts(&hub, "a"), Some((0, 3)));
    assert!(hub.take_idle_by_token(tokens[0]).is_none(), "taken already");
    for conn in taken.drain(..) {
        hub.put_back(conn);
    }
    assert_eq!(counts(&hub, "a"), Some((3, 0)));
    assert_eq!(counts(&hub, "b"), Some((2, 0)));
    let state = hub.state.lock();
    for (token, (client, i)) in &state.idle_at {
        let pool = &state.clients[client];
        assert_eq!(
            pool.idle[*i].token, *token,
            "idle_at points at the connection"
        );
    }
}

#[test]
fn a_connection_closed_by_its_client_while_idle_is_never_lent() {
    let (hub, mut peers) = hub(&[("a", 2)]);
    // The client's end of the most recently added (first to be lent) goes away.
    drop(peers.pop());
    let mut lease = hub.acquire(soon(), any()).expect("the live one");
    assert!(lease.conn().check(LONG).is_ok());
    assert_eq!(
        counts(&hub, "a"),
        Some((0, 1)),
        "the closed one was dropped"
    );
}

/// A masked ping from the client's end, as RFC 6455 has clients send.
fn send_ping(peer: &mut UnixStream, payload: &[u8]) {
    use std::io::Write;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x89, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    peer.write_all(&frame).expect("send ping");
}

/// The next frame the server sent, as (opcode, payload); unmasked, short.
fn read_frame(peer: &mut UnixStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut head = [0u8; 2];
    peer.read_exact(&mut head)
        .expect("a frame within the time-out");
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    peer.read_exact(&mut payload).expect("payload");
    (head[0] & 0x0f, payload)
}

/// Stops the watcher when dropped, so that a failing assertion ends its thread too.
#[cfg(target_os = "linux")]
struct StopOnDrop<'a>(&'a Watcher);

#[cfg(target_os = "linux")]
impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Polls `check` every 10 ms for up to 5 s.
fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    check()
}

#[cfg(target_os = "linux")]
#[test]
fn the_watcher_answers_pings_on_connections_registered_or_released_by_a_request() {
    let watcher = Arc::new(Watcher::new().expect("epoll"));
    let hub = Hub::new(LONG, Some(watcher.clone()));
    let (conn, mut peer) = connection("w");
    hub.add(conn, 1);
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    thread::scope(|s| {
        s.spawn(|| watcher.run(&hub));
        let _stop = StopOnDrop(&watcher);
        // Armed at registration.
        send_ping(&mut peer, b"one");
        assert_eq!(read_frame(&mut peer), (0x0a, b"one".to_vec()));
        // Leased and released (the watcher may still hold it a moment after its pong):
        // armed once idle for ARM_AFTER.
        let later = Instant::now() + Duration::from_secs(5);
        hub.acquire(later, any()).expect("lease").release();
        send_ping(&mut peer, b"two");
        assert_eq!(read_frame(&mut peer), (0x0a, b"two".to_vec()));
        assert!(
            eventually(|| counts(&hub, "w") == Some((1, 0))),
            "not idle after the pings"
        );
        // Its client goes away: the connection leaves the pool without a request.
        drop(peer);
        assert!(
            eventually(|| counts(&hub, "w").is_none()),
            "a closed idle connection stayed pooled"
        );
    });
}

#[test]
fn a_stream_goes_only_to_a_client_that_announced_streams() {
    let hub = Hub::new(LONG, None);
    let (go, _go_peer) = connection("go");
    hub.add(go, 1);
    let stream = Choice {
        only: None,
        avoid: None,
        streams: true,
    };
    assert_eq!(
        hub.acquire(soon(), stream).err(),
        Some(AcquireError::NoStreams),
        "a Go client alone never gets a stream"
    );
    let (mut ours, _our_peer) = connection("ours");
    ours.streams = true;
    hub.add(ours, 1);
    for _ in 0..3 {
        let mut lease = hub.acquire(soon(), stream).expect("ours");
        assert_eq!(&*lease.conn().client_id, "ours");
        lease.release();
    }
    // Waiting for a stream's connection, the Go client's coming back is not taken.
    let held = hub.acquire(soon(), stream).expect("ours");
    let pinned_go = Choice {
        only: Some("go"),
        ..stream
    };
    assert_eq!(
        hub.acquire(soon(), pinned_go).err(),
        Some(AcquireError::NoStreams)
    );
    let mut go_lease = hub.acquire(soon(), any()).expect("go's");
    assert_eq!(&*go_lease.conn().client_id, "go");
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut lease = hub
                .acquire(Instant::now() + LONG, stream)
                .expect("ours again");
            lease.conn().client_id.clone()
        });
        while hub.state.lock().waiters.is_empty() {
            thread::yield_now();
        }
        go_lease.release();
        held.release();
        assert_eq!(&*waiter.join().expect("waiter"), "ours");
    });
}

#[test]
fn a_client_at_its_inflight_cap_is_passed_over_even_by_a_fresh_registration() {
    let hub = Hub::new(LONG, None).with_max_inflight(Some(1));
    let (a1, _p1) = connection("a");
    let (a2, _p2) = connection("a");
    hub.add(a1, 2);
    hub.add(a2, 2);
    let held = hub.acquire(soon(), any()).expect("the first");
    assert_eq!(
        hub.acquire(soon(), any()).err(),
        Some(AcquireError::Timeout),
        "an idle connection is there, but the client is at its cap"
    );
    assert!(hub.capped() >= 1);
    thread::scope(|s| {
        let waiter = s.spawn(|| hub.acquire(Instant::now() + LONG, any()).is_ok());
        while hub.state.lock().waiters.is_empty() {
            thread::yield_now();
        }
        // A connection registering now must not go to the waiter: the client is at its cap.
        let (a3, _p3) = connection("a");
        hub.add(a3, 2);
        assert_eq!(hub.state.lock().waiters.len(), 1, "the waiter still waits");
        // The first ends: now the waiter goes.
        held.release();
        assert!(waiter.join().expect("waiter"));
    });
}
