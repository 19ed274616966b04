//! Every refusal of PROTOCOL.md with its exact text: the server's 526 answers, the client's
//! 527 answers, a wrong secret key, `/status`, and the headers a proxy must drop or add.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

/// The Content-Type of every wsp error answer.
const ERROR_TYPE: &str = "text/plain; charset=utf-8";

/// Asserts that `reply` is wsp's 526 answer with `text`.
fn assert_526(reply: &Reply, text: &str) {
    assert_eq!(reply.status, 526, "expected 526 {text:?}, got {reply:?}");
    assert_eq!(reply.text(), format!("{text}\n"));
    assert_eq!(reply.header("content-type"), Some(ERROR_TYPE));
}

/// Asserts that `reply` is the client's 527 answer whose text mentions every one of `words`,
/// in the form of every wsp answer: plain text ending with a newline.
fn assert_527_mentions(reply: &Reply, words: &[&str]) {
    assert_eq!(reply.status, 527, "expected 527, got {reply:?}");
    assert_eq!(reply.header("content-type"), Some(ERROR_TYPE), "{reply:?}");
    let text = reply.text().to_ascii_lowercase();
    assert!(
        text.ends_with('\n'),
        "527 text {text:?} ends without a newline"
    );
    for word in words {
        assert!(text.contains(word), "527 text {text:?} lacks {word:?}");
    }
}

/// A port on 127.0.0.1 that nobody listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address").port()
}

#[test]
fn missing_destination_is_refused() {
    let server = Server::start(&[]);
    assert_526(
        &get(&server.request_url(), &[]),
        "Missing X-PROXY-DESTINATION header",
    );
}

#[test]
fn unparseable_destination_is_refused() {
    let server = Server::start(&[]);
    for destination in ["http://[::1", "not a url"] {
        let reply = relay(&server, "GET", destination, &[], None);
        assert_526(&reply, "Unable to parse X-PROXY-DESTINATION header");
    }
}

#[test]
fn no_client_means_no_proxy_available() {
    let upstream = upstream();
    let server = Server::start(&[]);
    let destination = format!("http://{}/hello", upstream.addr());
    assert_526(
        &relay(&server, "GET", &destination, &[], None),
        "No proxy available",
    );
}

#[test]
fn all_connections_busy_times_out() {
    let stack = Stack::start(
        &["--timeout", "200"],
        &["--pool-idle-size", "1", "--pool-max-size", "1"],
    );
    thread::scope(|scope| {
        let sleeper = scope.spawn(|| stack.relay("GET", "/sleep?ms=2000", &[], None));
        // Once the sleep holds the only connection, a second request waits `timeout`, fails.
        let (reply, waited) = poll(READY, || {
            let started = Instant::now();
            let reply = stack.relay("GET", "/hello", &[], None);
            (reply.status != 200).then(|| (reply, started.elapsed()))
        })
        .expect("the second request never found the connection busy");
        assert_526(&reply, "Unable to get a proxy connection");
        assert!(
            waited >= Duration::from_millis(150),
            "refused after {waited:?}, before the 200 ms timeout"
        );
        let slept = sleeper.join().expect("sleep request thread");
        assert_eq!((slept.status, slept.text().as_str()), (200, "slept 2000"));
    });
}

#[test]
fn refused_upstream_connection_is_527() {
    let stack = Stack::start(&[], &[]);
    let destination = format!("http://127.0.0.1:{}/x", closed_port());
    let reply = relay(&stack.server, "GET", &destination, &[], None);
    assert_527_mentions(&reply, &["refused"]);
    // The connection that answered 527 is still usable.
    assert_eq!(stack.relay("GET", "/hello", &[], None).status, 200);
}

/// wsp's own statuses are in no registry: their status lines still say whose error it
/// is, the server's (526, written by tiny_http) as the client's (527, relayed).
#[test]
fn wsp_statuses_have_reason_phrases() {
    let stack = Stack::start(&[], &[]);
    let status_line = |destination: &str| {
        let mut stream = std::net::TcpStream::connect(stack.server.addr).expect("connect");
        let request = format!(
            "GET /request HTTP/1.1\r\nHost: x\r\nX-PROXY-DESTINATION: {destination}\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
        stream.set_read_timeout(Some(READY)).expect("time-out");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut line).expect("read");
        line
    };
    assert_eq!(status_line("ftp://x/"), "HTTP/1.1 526 wsp Server Error\r\n");
    let closed = format!("http://127.0.0.1:{}/x", closed_port());
    assert_eq!(status_line(&closed), "HTTP/1.1 527 wsp Client Error\r\n");
}

#[test]
fn destinations_a_client_cannot_call_are_refused_by_the_server() {
    let stack = Stack::start(&[], &[]);
    let refused = [
        (
            "ftp://127.0.0.1/x",
            "X-PROXY-DESTINATION must be an http:// or https:// URL",
        ),
        ("/hello", "Unable to parse X-PROXY-DESTINATION header"),
        (
            "http://user:secret@127.0.0.1/x",
            "X-PROXY-DESTINATION must not contain user:password@",
        ),
    ];
    for (destination, text) in refused {
        assert_526(&relay(&stack.server, "GET", destination, &[], None), text);
    }
    assert_eq!(stack.relay("GET", "/hello", &[], None).status, 200);
}

#[test]
fn wrong_secret_key_never_registers() {
    let upstream = upstream();
    let server = Server::start(&[]);
    let target = server.register_url();
    let client = start_client_raw(&["--target", &target, "--secret-key", "wrong"]);
    let refusals = |client: &Proc| {
        let log = client.log.lock();
        log.lines()
            .filter(|l| l.contains("526") && l.contains("Invalid X-SECRET-KEY"))
            .count()
    };
    poll(READY, || (refusals(&client) >= 1).then_some(())).unwrap_or_else(|| {
        panic!("no refusal logged; log:\n{}", client.log.lock());
    });
    let destination = format!("http://{}/hello", upstream.addr());
    assert_526(
        &relay(&server, "GET", &destination, &[], None),
        "No proxy available",
    );
    // The client retries, and is refused again.
    poll(READY, || (refusals(&client) >= 2).then_some(())).unwrap_or_else(|| {
        panic!("no second refusal logged; log:\n{}", client.log.lock());
    });
    assert_526(
        &relay(&server, "GET", &destination, &[], None),
        "No proxy available",
    );
}

/// A raw HTTP/1.1 answer: status line, header lines and a body of `Content-Length` bytes.
struct RawReply {
    status_line: String,
    headers: Vec<String>,
    body: String,
}

/// Sends `request` as it is and reads one answer framed by `Content-Length`.
fn raw_exchange(addr: SocketAddr, request: &str) -> RawReply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        headers.push(line.to_string());
    }
    let length = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .expect("a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    RawReply {
        status_line,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[test]
fn register_with_wrong_key_is_not_upgraded() {
    let server = Server::start(&[]);
    let request = format!(
        "GET /register HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-SECRET-KEY: wrong\r\n\r\n",
        server.addr
    );
    let reply = raw_exchange(server.addr, &request);
    assert!(
        reply.status_line.starts_with("HTTP/1.1 526"),
        "{:?} {:?}",
        reply.status_line,
        reply.headers
    );
    assert_eq!(reply.body, "Invalid X-SECRET-KEY\n");
    assert!(
        !reply
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("sec-websocket-accept")),
        "a refused registration must not be upgraded: {:?}",
        reply.headers
    );
}

#[test]
fn status_answers_ok() {
    let server = Server::start(&[]);
    let reply = get(&format!("http://{}/status", server.addr), &[]);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
}

#[test]
fn hop_by_hop_headers_are_dropped_and_forwarding_added() {
    let stack = Stack::start(&[], &[]);
    let sent = [
        ("Connection", "X-Drop"),
        ("X-Drop", "1"),
        ("Keep-Alive", "5"),
        ("Proxy-Authorization", "x"),
        ("X-Kept", "yes"),
    ];
    let seen = Echo::parse(&stack.relay("GET", "/echo-headers", &sent, None));
    for dropped in ["x-drop", "keep-alive", "proxy-authorization"] {
        assert!(
            seen.values(dropped).is_empty(),
            "{dropped} reached the upstream: {:?}",
            seen.headers
        );
    }
    assert!(
        !seen
            .values("connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("x-drop")),
        "the caller's Connection header reached the upstream: {:?}",
        seen.headers
    );
    assert_eq!(seen.values("x-kept"), ["yes"]);
    assert_eq!(seen.values("x-forwarded-for"), ["127.0.0.1"]);
    let host = stack.upstream.addr().to_string();
    assert_eq!(seen.values("host"), [host.as_str()]);
}

#[test]
fn existing_forwarded_for_is_extended() {
    let stack = Stack::start(&[], &[]);
    let sent = [("X-Forwarded-For", "10.0.0.1")];
    let seen = Echo::parse(&stack.relay("GET", "/echo-headers", &sent, None));
    assert_eq!(seen.values("x-forwarded-for"), ["10.0.0.1, 127.0.0.1"]);
}
