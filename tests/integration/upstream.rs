//! The client's connections to an internal API, seen from the internal API: a raw HTTP/1.1
//! server on a socket that reports every connection it accepts and every one that ends.
//! Back-to-back requests share one connection (a tunnel that opened a connection per
//! request would double the internal API's work); a connection left idle is closed after
//! a quiet spell, so that a burst of callers does not leave the client holding a
//! connection, and its buffers, per WebSocket until the server closes the WebSocket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{relay, start_client, Server};

/// What the internal API saw.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Opened(u32),
    Request(u32),
    Closed(u32),
}

/// Starts the internal API: keep-alive HTTP/1.1, `200 ok` to every request (bodies are
/// not expected). Returns its address and its events.
fn internal_api() -> (String, Receiver<Event>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (events, seen) = channel();
    thread::spawn(move || {
        for (n, socket) in (1..).zip(listener.incoming()) {
            let Ok(socket) = socket else { return };
            let events = events.clone();
            thread::spawn(move || serve(n, socket, &events));
        }
    });
    (addr, seen)
}

/// Serves connection `n` until the client closes it.
fn serve(n: u32, socket: TcpStream, events: &Sender<Event>) {
    let _ = events.send(Event::Opened(n));
    let mut writer = socket.try_clone().expect("clone");
    let mut reader = BufReader::new(socket);
    loop {
        let mut head_len = 0;
        let mut line = String::new();
        let ended = loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break true,
                Ok(_) if line == "\r\n" && head_len > 0 => break false,
                Ok(k) => head_len += k,
            }
        };
        if ended {
            // The end of the stream, not of a head: nothing more is coming.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            let _ = events.send(Event::Closed(n));
            return;
        }
        let _ = events.send(Event::Request(n));
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if writer.write_all(answer).is_err() {
            let _ = events.send(Event::Closed(n));
            return;
        }
    }
}

#[test]
fn back_to_back_requests_share_one_connection_closed_after_a_quiet_spell() {
    let (api, seen) = internal_api();
    let server = Server::start(&[]);
    let _client = start_client(&server, &["--pool-idle-size", "1"]);
    let url = format!("http://{api}/x");
    // The first request waits for the client's registration.
    let deadline = Instant::now() + Duration::from_secs(20);
    while relay(&server, "GET", &url, &[], None).status != 200 {
        assert!(Instant::now() < deadline, "the tunnel never relayed");
        thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..4 {
        let reply = relay(&server, "GET", &url, &[], None);
        assert_eq!((reply.status, reply.text()), (200, "ok".to_string()));
    }
    let events: Vec<Event> = seen.try_iter().collect();
    let opened: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Opened(n) => Some(*n),
            _ => None,
        })
        .collect();
    let requests = |n: u32| events.iter().filter(|e| **e == Event::Request(n)).count();
    let total: usize = opened.iter().map(|n| requests(*n)).sum();
    assert_eq!(total, 5, "{events:?}");
    // Each WebSocket has its own connection to the API (two at most here: the client
    // opens a second WebSocket while the first is busy), and reuses it.
    assert!(opened.len() <= 2, "five sequential requests, {events:?}");
    assert!(
        opened.iter().any(|n| requests(*n) >= 3),
        "no connection served back-to-back requests: {events:?}"
    );
    // Idle now: the client lets the connections go within seconds, without a request.
    let mut closed = Vec::new();
    while closed.len() < opened.len() {
        match seen.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Closed(n)) => closed.push(n),
            other => panic!("expected the client to close {opened:?}, got {other:?}"),
        }
    }
    closed.sort_unstable();
    assert_eq!(closed, opened);
    // And opens a new one for the next request.
    let reply = relay(&server, "GET", &url, &[], None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let next = opened.iter().max().copied().unwrap_or(0) + 1;
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(5)).ok(),
        Some(Event::Opened(next))
    );
}
