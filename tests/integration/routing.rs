//! Choosing the client: `X-PROXY-CLIENT` pins a request to one client's pool, an unknown
//! id is refused with 526, the header never reaches the internal API, and without it the
//! least busy client serves.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use crate::support::*;

/// Requests sent one after the other in each test.
const REQUESTS: usize = 12;

/// Sends [`REQUESTS`] GETs of `path` with `headers`, each expecting 200, then waits until
/// `expected` has logged them all and returns what `other` logged meanwhile.
fn send_and_count(
    server: &Server,
    upstream: &TestApi,
    path: &str,
    headers: &[(&str, &str)],
    (expected, other): (&Proc, &Proc),
) -> usize {
    let destination = format!("http://{}{path}", upstream.addr());
    for i in 0..REQUESTS {
        let reply = relay(server, "GET", &destination, headers, None);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    poll(READY, || (expected.served(path) == REQUESTS).then_some(()))
        .unwrap_or_else(|| panic!("only {} of {REQUESTS} logged", expected.served(path)));
    other.served(path)
}

#[test]
fn the_named_client_serves_every_request() {
    let (upstream, server, a, b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let on_a = send_and_count(
        &server,
        &upstream,
        "/hello?to-b",
        &[("X-PROXY-CLIENT", "b")],
        (&b, &a),
    );
    assert_eq!(on_a, 0, "client a served requests pinned to b");
    let on_b = send_and_count(
        &server,
        &upstream,
        "/hello?to-a",
        &[("x-proxy-client", "a")],
        (&a, &b),
    );
    assert_eq!(on_b, 0, "client b served requests pinned to a");
}

#[test]
fn an_unknown_client_is_refused_with_526() {
    let stack = Stack::start(&[], &["--id", "known"]);
    let reply = stack.relay("GET", "/hello", &[("X-PROXY-CLIENT", "nobody")], None);
    assert_eq!(reply.status, 526, "{}", reply.text());
    assert_eq!(reply.text(), "No client \"nobody\" connected\n");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let reply = stack.relay("GET", "/hello", &[("X-PROXY-CLIENT", "known")], None);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn the_header_is_not_forwarded() {
    let stack = Stack::start(&[], &["--id", "c1"]);
    let reply = stack.relay(
        "GET",
        "/echo-headers",
        &[("X-PROXY-CLIENT", "c1"), ("X-Other", "kept")],
        None,
    );
    let echo = Echo::parse(&reply);
    assert_eq!(
        echo.values("x-proxy-client"),
        Vec::<&str>::new(),
        "{:?}",
        echo.headers
    );
    assert_eq!(echo.values("x-other"), ["kept"]);
}

#[test]
fn without_the_header_the_least_busy_client_serves() {
    let (upstream, server, a, b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let held = format!("http://{}/held", listener.local_addr().expect("address"));
    let request_url = server.request_url();
    // Client a relays one request that the upstream holds: a has one busy connection.
    let caller = thread::spawn(move || {
        let request = ureq::http::Request::builder()
            .uri(request_url)
            .header("X-PROXY-DESTINATION", held)
            .header("X-PROXY-CLIENT", "a")
            .body(())
            .expect("request");
        caller().run(request).map(|r| r.status().as_u16())
    });
    let (mut socket, _) = listener
        .accept()
        .expect("the held request reaches the upstream");
    read_head(&mut socket);
    let on_a = send_and_count(&server, &upstream, "/hello?least-busy", &[], (&b, &a));
    assert_eq!(on_a, 0, "the busy client a was chosen over the idle b");
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
        .expect("answer the held request");
    let status = caller.join().expect("caller thread");
    assert_eq!(status.ok(), Some(200));
}

#[test]
fn a_pinned_request_waits_for_its_own_client() {
    let upstream = upstream();
    let server = Server::start(&["--timeout", "10000"]);
    let a = start_client(&server, &["--id", "a", "--log-level", "debug"]);
    let one = ["--pool-idle-size", "1", "--pool-max-size", "1"];
    let b = start_client(
        &server,
        &[&["--id", "b", "--log-level", "debug"][..], &one].concat(),
    );
    wait_relay_ready(&server, &upstream);
    b.wait_log("connected to");
    // b's only connection is held busy by the upstream.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let held = format!("http://{}/held", listener.local_addr().expect("address"));
    let pinned = |destination: String| {
        let request_url = server.request_url();
        thread::spawn(move || {
            let request = ureq::http::Request::builder()
                .uri(request_url)
                .header("X-PROXY-DESTINATION", destination)
                .header("X-PROXY-CLIENT", "b")
                .body(())
                .expect("request");
            caller().run(request).map(|r| r.status().as_u16())
        })
    };
    let first = pinned(held);
    let (mut socket, _) = listener
        .accept()
        .expect("the held request reaches the upstream");
    read_head(&mut socket);
    // A second request for b waits; meanwhile a's connections go busy and idle again.
    let path = "/hello?waiting-for-b";
    let second = pinned(format!("http://{}{path}", upstream.addr()));
    let on_b = send_and_count(&server, &upstream, "/hello?meanwhile", &[], (&a, &b));
    assert_eq!(on_b, 0, "b's only connection is busy");
    assert!(
        !second.is_finished(),
        "the request pinned to b did not wait for b"
    );
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld")
        .expect("answer the held request");
    assert_eq!(first.join().expect("first caller").ok(), Some(200));
    assert_eq!(second.join().expect("second caller").ok(), Some(200));
    poll(READY, || (b.served(path) == 1).then_some(()))
        .unwrap_or_else(|| panic!("b never served the waiting request"));
    assert_eq!(a.served(path), 0, "a served a request pinned to b");
}

/// Reads a request head byte by byte (the held request has no body).
fn read_head(socket: &mut TcpStream) {
    socket.set_read_timeout(Some(READY)).expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("reading the held request: {other:?} after {head:?}"),
        }
    }
}
