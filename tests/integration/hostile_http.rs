//! Hostile HTTP at the server's door, from raw sockets: request heads over tiny_http's
//! limits (431), line breaks that are not CRLF (400), other malformed heads, clients that
//! trickle their head one byte a second (slow-loris) or never finish it (408), a Content-Length
//! nobody can allocate, and pipelined requests that must keep their order. Registered
//! WebSockets must cost the server no thread. The limits are tiny_http's (vendored, see
//! `vendor/tiny_http/PATCHES.md`).

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{
    HEADER_TIMEOUT, MAX_HEADER_COUNT, MAX_HEADER_LINE_LEN, MAX_HEAD_LEN, MAX_REQUEST_LINE_LEN,
};

use crate::support::*;

/// Slow-loris connections opened at once.
const SLOW_CONNECTIONS: usize = 200;
/// How long after opening them every slow connection must be closed: the header time-out
/// and a wide margin for a loaded machine.
const SLOW_CUT_WITHIN: Duration = Duration::from_secs(HEADER_TIMEOUT.as_secs() + 10);
/// Threads above the server's baseline that still count as "back near the baseline":
/// the thread pool keeps a few idle threads for a while.
const THREAD_SLACK: u64 = 20;

/// A connection to `addr` whose reads give up after 20 s.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
}

/// Sends `request` on a new connection, reads one answer and checks that the server then
/// closed the connection.
fn refused(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = connect(addr);
    // The server may stop reading and close before taking all of an oversized head: what
    // it answered is still there to read.
    let _ = stream.write_all(request);
    let mut reader = BufReader::new(stream);
    let answer = read_reply(&mut reader);
    let mut rest = Vec::new();
    let end = reader.read_to_end(&mut rest);
    assert!(
        matches!(end, Ok(0)) || matches!(&end, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "connection not closed after {answer:?}: {end:?} {rest:?}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    answer
}

/// Asserts that `request` is answered `status` with exactly `text` and a closed connection,
/// and that the server goes on serving.
fn assert_refused(server: &Server, what: &str, request: &[u8], status: u16, text: &str) {
    let answer = refused(server.addr, request);
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (status, format!("{text}\n").as_str()),
        "{what}"
    );
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{what}: {answer:?}"
    );
    assert_status_ok(server, what);
}

/// `/status` answers `ok`: the server still serves.
fn assert_status_ok(server: &Server, after: &str) {
    let reply = get(&format!("http://{}/status", server.addr), &[]);
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "ok"),
        "after {after}"
    );
}

/// A GET of `/status` with `headers` (each `Name: value`), as raw bytes.
fn status_request(headers: &[String]) -> Vec<u8> {
    let mut request = String::from("GET /status HTTP/1.1\r\nHost: wsp\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// The number of threads of process `pid`.
fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

#[test]
fn heads_over_the_limits_are_answered_431() {
    let server = Server::start(&[]);
    let long_target = format!("/status?{}", "a".repeat(9 * 1024));
    let long_line = format!("GET {long_target} HTTP/1.1\r\nHost: wsp\r\n\r\n");
    let line_text = format!("request line longer than {MAX_REQUEST_LINE_LEN} bytes");
    assert_refused(
        &server,
        "9 KiB request line",
        long_line.as_bytes(),
        431,
        &line_text,
    );

    let long_header = status_request(&[format!("X-Long: {}", "b".repeat(9 * 1024))]);
    let header_text = format!("header line longer than {MAX_HEADER_LINE_LEN} bytes");
    assert_refused(
        &server,
        "9 KiB header line",
        &long_header,
        431,
        &header_text,
    );

    // `Host` and 100 more.
    let many: Vec<String> = (0..MAX_HEADER_COUNT).map(|i| format!("X-{i}: v")).collect();
    let count_text = format!("more than {MAX_HEADER_COUNT} header fields");
    assert_refused(
        &server,
        "101 headers",
        &status_request(&many),
        431,
        &count_text,
    );

    // Ten lines of 7 KiB: each within its limit, 70 KiB in all.
    let big: Vec<String> = (0..10)
        .map(|i| format!("X-{i}: {}", "c".repeat(7 * 1024)))
        .collect();
    let head_text = format!("request head longer than {MAX_HEAD_LEN} bytes");
    assert_refused(
        &server,
        "70 KiB of headers",
        &status_request(&big),
        431,
        &head_text,
    );
}

#[test]
fn heads_at_the_limits_are_served() {
    let server = Server::start(&[]);
    let request_line_at = |len: usize| {
        let fixed = "GET /status? HTTP/1.1".len();
        format!("GET /status?{} HTTP/1.1", "a".repeat(len - fixed))
    };
    let line = request_line_at(MAX_REQUEST_LINE_LEN);
    assert_eq!(line.len(), MAX_REQUEST_LINE_LEN);
    let header = format!(
        "X-Long: {}",
        "b".repeat(MAX_HEADER_LINE_LEN - "X-Long: ".len())
    );
    // `Host`, the long one and the rest up to the limit.
    let mut headers: Vec<String> = (2..MAX_HEADER_COUNT).map(|i| format!("X-{i}: v")).collect();
    headers.push(header);
    let mut request = format!("{line}\r\n").into_bytes();
    request.extend_from_slice(&status_request(&headers)["GET /status HTTP/1.1\r\n".len()..]);
    assert!(request.len() < MAX_HEAD_LEN);

    let mut stream = connect(server.addr);
    stream.write_all(&request).expect("send");
    let answer = read_reply(&mut BufReader::new(stream));
    assert_eq!((answer.status, answer.text().as_str()), (200, "ok"));
}

#[test]
fn bare_cr_or_lf_in_a_header_is_answered_400() {
    let server = Server::start(&[]);
    let lf = b"GET /status HTTP/1.1\r\nHost: wsp\r\nX-Split: a\nInjected: b\r\n\r\n";
    let lf_text = "bare LF in header line: lines must end with CRLF";
    assert_refused(&server, "bare LF", lf, 400, lf_text);
    let cr = b"GET /status HTTP/1.1\r\nHost: wsp\r\nX-Split: a\rInjected: b\r\n\r\n";
    let cr_text = "bare CR in header line: lines must end with CRLF";
    assert_refused(&server, "bare CR", cr, 400, cr_text);
}

/// A request tiny_http parses but no HTTP stack would send on: refused before any client
/// sees it, and the connection stays usable.
#[test]
fn invalid_methods_and_control_characters_are_answered_400() {
    let stack = Stack::start(&[], &[]);
    let destination = stack.url("/hello");
    let cases = [
        ("GE(T", "X-Ok: 1", "method \"GE(T\" is not a token"),
        (
            "GET",
            "X-Bell: a\x07b",
            "header X-Bell has a value with control characters",
        ),
    ];
    for (method, header, why) in cases {
        let request = format!(
            "{method} /request HTTP/1.1\r\nHost: wsp\r\n{header}\r\n\
             X-PROXY-DESTINATION: {destination}\r\nContent-Length: 0\r\n\r\n"
        );
        let mut stream = connect(stack.server.addr);
        stream.write_all(request.as_bytes()).expect("send");
        let answer = read_reply(&mut BufReader::new(&stream));
        assert_eq!(answer.status, 400, "{method} {header:?}: {answer:?}");
        assert_eq!(answer.text(), format!("Bad request: invalid head: {why}\n"));
    }
    assert_eq!(stack.relay("GET", "/hello", &[], None).status, 200);
}

#[test]
fn other_malformed_heads_get_a_text_answer() {
    let server = Server::start(&[]);
    let cases: [(&str, &[u8], u16, &str); 5] = [
        (
            "no target",
            b"GET HTTP/1.1\r\nHost: wsp\r\n\r\n",
            400,
            "malformed request line: expected `METHOD /target HTTP/1.1`",
        ),
        (
            "no colon",
            b"GET /status HTTP/1.1\r\nHost wsp\r\n\r\n",
            400,
            "malformed header line: expected `Name: value`",
        ),
        (
            "not ASCII",
            "GET /status HTTP/1.1\r\nX-Name: é\r\n\r\n".as_bytes(),
            400,
            "header line is not ASCII",
        ),
        (
            "Expect",
            b"POST /status HTTP/1.1\r\nExpect: coffee\r\nContent-Length: 1\r\n\r\nx",
            417,
            "unsupported Expect header: only 100-continue is supported",
        ),
        (
            "HTTP/2.0",
            b"GET /status HTTP/2.0\r\nHost: wsp\r\n\r\n",
            505,
            "this server only supports HTTP versions 1.0 and 1.1",
        ),
    ];
    for (what, request, status, text) in cases {
        assert_refused(&server, what, request, status, text);
    }
}

#[test]
fn a_content_length_too_big_to_allocate_does_not_stop_the_server() {
    // No client registered: the request is refused without its body being read, and the
    // body's rest is thrown away when the request is dropped.
    let server = Server::start(&[]);
    let request = "POST /request HTTP/1.1\r\nHost: wsp\r\n\
                   X-PROXY-DESTINATION: http://127.0.0.1:1/\r\n\
                   Content-Length: 1000000000000000\r\n\r\nsome of the body";
    let mut stream = connect(server.addr);
    stream.write_all(request.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let answer = read_reply(&mut reader);
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (526, "No proxy available\n")
    );
    drop(reader);
    assert_status_ok(&server, "a refused request with a huge Content-Length");
    let mut server = server;
    assert_eq!(server.proc.child.try_wait().expect("wait"), None);
}

#[test]
fn pipelined_requests_and_their_bodies_keep_their_order() {
    let stack = Stack::start(&[], &[]);
    let post = stack.url("/post");
    // Bigger than the 1 KiB tiny_http reads with the head: read by the handler while
    // the next head waits its turn.
    let big = "x".repeat(5000);
    let pipeline = format!(
        "POST /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: {post}\r\n\
         Content-Length: {}\r\n\r\n{big}\
         GET /status HTTP/1.1\r\nHost: wsp\r\n\r\n\
         POST /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: {post}\r\n\
         Content-Length: 5\r\n\r\nsmall",
        big.len()
    );
    let mut stream = connect(stack.server.addr);
    stream.write_all(pipeline.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let answers: Vec<(u16, String)> = (0..3)
        .map(|_| read_reply(&mut reader))
        .map(|a| (a.status, a.text()))
        .collect();
    let expected = [(200, big), (200, "ok".into()), (200, "small".into())];
    assert_eq!(answers, expected);

    // The same connection serves one more request, and closes when asked.
    let last = b"GET /nowhere HTTP/1.1\r\nHost: wsp\r\nConnection: close\r\n\r\n";
    stream.write_all(last).expect("send");
    let answer = read_reply(&mut reader);
    assert_eq!(answer.status, 404);
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).expect("read to the end"), 0);
}

/// A slow-loris connection: sends its head one byte per tick, and notes how it ended.
struct Slow {
    stream: TcpStream,
    opened: Instant,
    sent: usize,
    received: Vec<u8>,
    /// When the server closed it.
    closed: Option<Instant>,
}

/// The head a slow connection trickles; it never ends.
const SLOW_HEAD: &[u8] = b"GET /status HTTP/1.1\r\nX-Slow: ";

impl Slow {
    fn open(addr: SocketAddr) -> Slow {
        let stream = TcpStream::connect(addr).expect("connect slow");
        stream.set_nonblocking(true).expect("non-blocking");
        Slow {
            stream,
            opened: Instant::now(),
            sent: 0,
            received: Vec::new(),
            closed: None,
        }
    }

    /// Reads what the server sent, notes whether it closed, else sends one more byte.
    fn tick(&mut self) {
        if self.closed.is_some() {
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return self.close(),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return self.close(),
            }
        }
        let byte = SLOW_HEAD.get(self.sent).copied().unwrap_or(b'a');
        match self.stream.write(&[byte]) {
            Ok(n) => self.sent += n,
            Err(_) => self.close(),
        }
    }

    fn close(&mut self) {
        self.closed = Some(Instant::now());
    }
}

/// Trickles every connection of `slow` one byte per second until the server has closed
/// them all or `within` has passed.
fn trickle(slow: &mut [Slow], within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && slow.iter().any(|s| s.closed.is_none()) {
        let tick = Instant::now();
        for connection in slow.iter_mut() {
            connection.tick();
        }
        thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
}

/// Reads `stream` to its end: what the server sent before closing.
fn read_until_closed(mut stream: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => received,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => received,
        Err(e) => panic!("not closed by the server: {e} after {received:?}"),
    }
}

#[test]
fn slow_loris_connections_are_cut_at_the_header_timeout() {
    let stack = Stack::start(&[], &[]);
    let pid = stack.server.proc.pid();
    let baseline = threads(pid);
    let timed_out = format!(
        "request head not received within {} s\n",
        HEADER_TIMEOUT.as_secs()
    );

    let mut slow: Vec<Slow> = (0..SLOW_CONNECTIONS)
        .map(|_| Slow::open(stack.server.addr))
        .collect();
    // One that starts its head and stops, one that sends nothing at all.
    let mut partial = connect(stack.server.addr);
    partial
        .write_all(b"GET /status HTTP/1.1\r\nHost: wsp\r\n")
        .expect("send partial head");
    let silent = connect(stack.server.addr);

    let (relayed, peak) = thread::scope(|scope| {
        let trickler = scope.spawn(|| trickle(&mut slow, SLOW_CUT_WITHIN));
        let mut relayed = 0;
        let mut peak = 0;
        while !trickler.is_finished() {
            let reply = stack.relay("GET", "/hello", &[], None);
            assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
            relayed += 1;
            peak = peak.max(threads(pid));
            thread::sleep(Duration::from_millis(100));
        }
        (relayed, peak)
    });

    let open = slow.iter().filter(|s| s.closed.is_none()).count();
    assert_eq!(
        open, 0,
        "slow connections still open after {SLOW_CUT_WITHIN:?}"
    );
    // Cut for the total time, not for a silence: not before the header time-out.
    let earliest = HEADER_TIMEOUT - Duration::from_secs(1);
    for s in &slow {
        let lived = s.closed.expect("closed") - s.opened;
        assert!(
            lived >= earliest,
            "a slow connection was cut after {lived:?}"
        );
        let received = String::from_utf8_lossy(&s.received);
        assert!(
            received.is_empty()
                || (received.starts_with("HTTP/1.1 408 ") && received.ends_with(&timed_out)),
            "a slow connection got {received:?}"
        );
    }
    let answered = slow.iter().filter(|s| !s.received.is_empty()).count();
    assert!(answered > 0, "no slow connection got its 408");
    assert!(
        peak > baseline + SLOW_CONNECTIONS as u64 / 2,
        "the slow connections never held threads (peak {peak}, baseline {baseline})"
    );
    assert!(
        relayed >= 5,
        "only {relayed} relays beside the slow connections"
    );

    let partial = String::from_utf8_lossy(&read_until_closed(partial)).into_owned();
    assert!(
        partial.starts_with("HTTP/1.1 408 ") && partial.ends_with(&timed_out),
        "{partial:?}"
    );
    assert_eq!(
        read_until_closed(silent),
        b"",
        "an idle connection closes silently"
    );

    let settled = poll(READY, || {
        let now = threads(pid);
        (now <= baseline + THREAD_SLACK).then_some(now)
    });
    assert!(
        settled.is_some(),
        "threads stayed at {} (baseline {baseline}, peak {peak})",
        threads(pid)
    );
    eprintln!(
        "slow-loris: threads baseline {baseline}, peak {peak}, after {settled:?}; {relayed} relays"
    );
}

/// How many connections the server (started with `--log-level debug`) has registered.
fn registered(server: &Server) -> usize {
    server
        .proc
        .log
        .lock()
        .lines()
        .filter(|l| l.contains("registered a connection"))
        .count()
}

#[test]
fn registered_websockets_hold_no_server_thread() {
    const POOL: usize = 50;
    let upstream = upstream();
    let server = Server::start(&["--log-level", "debug"]);
    let pid = server.proc.pid();
    let baseline = threads(pid);
    let pool = POOL.to_string();
    let _client = start_client(&server, &["--pool-idle-size", &pool]);
    poll(READY, || (registered(&server) >= POOL).then_some(())).unwrap_or_else(|| {
        panic!(
            "only {} connections registered; log:\n{}",
            registered(&server),
            server.proc.log.lock()
        )
    });
    let settled = poll(READY, || {
        let now = threads(pid);
        (now <= baseline + THREAD_SLACK).then_some(now)
    });
    assert!(
        settled.is_some(),
        "{POOL} registered connections keep {} threads (baseline {baseline})",
        threads(pid)
    );
    eprintln!("{POOL} registered WebSockets: threads baseline {baseline}, after {settled:?}");
    // The connections are still there to relay.
    wait_relay_ready(&server, &upstream);
}

/// Takes `KEEP_ALIVE_TIMEOUT` (60 s): run with `cargo test --test integration -- --ignored`.
#[test]
#[ignore = "waits tiny_http's KEEP_ALIVE_TIMEOUT, 60 s"]
fn an_idle_keep_alive_connection_is_closed_silently() {
    let server = Server::start(&[]);
    let stream = connect(server.addr);
    stream
        .set_read_timeout(Some(tiny_http::KEEP_ALIVE_TIMEOUT * 2))
        .expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    (&stream)
        .write_all(&status_request(&[]))
        .expect("send request");
    let answer = read_reply(&mut reader);
    assert_eq!(answer.status, 200);
    let idle_since = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).expect("closed"), 0);
    let idle = idle_since.elapsed();
    assert!(
        idle >= tiny_http::KEEP_ALIVE_TIMEOUT - Duration::from_secs(1),
        "closed after {idle:?}"
    );
}

/// The file descriptor limit the flooded server runs with: a few dozen connections.
const FLOOD_FD_LIMIT: u64 = 64;
/// Connections the flood opens and holds: well past what `FLOOD_FD_LIMIT` lets in.
const FLOOD_CONNECTIONS: usize = 80;

/// One burst of connections past the file descriptor limit must not leave the server
/// deaf: accepting fails (EMFILE) while they are open, and serves again once they close.
/// (Upstream tiny_http ended its accept loop at the first error, or panicked in it.)
#[test]
fn a_flood_past_the_fd_limit_leaves_the_server_serving_after_it() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsp_server"));
    command.args(["--port", "0", "--secret-key", SECRET]);
    let limit = libc::rlimit {
        rlim_cur: FLOOD_FD_LIMIT,
        rlim_max: FLOOD_FD_LIMIT,
    };
    // SAFETY: setrlimit(2) in the child between fork and exec, with a valid struct; it
    // allocates nothing and touches no lock.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let server = Server::from_proc(Proc::spawn_command(command));
    let flood: Vec<TcpStream> = (0..FLOOD_CONNECTIONS)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    server.proc.wait_log("Too many open files");
    drop(flood);
    let status = format!("http://{}/status", server.addr);
    poll(READY, || {
        let reply = caller().get(&status).call().ok()?;
        (reply.status() == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("deaf after the flood; log:\n{}", server.proc.log.lock()));
}

/// Past `--max-connections`, a new caller is told so (503, `Retry-After`, the connection
/// closed after) instead of the server running out of descriptors; registered WebSockets
/// count among the open connections; a slot freed is usable again.
#[test]
fn past_max_connections_a_caller_gets_503_until_one_closes() {
    let server = Server::start(&["--max-connections", "3"]);
    let _ws = crate::support::rawpeer::RawWs::register_with(&server, "capped_1");
    let held: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
    // The two held connections are accepted (and so counted) once one of them is served.
    let mut probe = held[1].try_clone().expect("clone");
    probe
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let reply = read_reply(&mut BufReader::new(&mut probe));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let refused = poll(READY, || {
        let mut extra = connect(server.addr);
        extra
            .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let reply = read_reply(&mut BufReader::new(&mut extra));
        (reply.status == 503).then_some(reply)
    })
    .expect("a fourth connection was never refused");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(
        refused.text().contains("maxconnections"),
        "{}",
        refused.text()
    );
    drop(held);
    let status = format!("http://{}/status", server.addr);
    poll(READY, || {
        let reply = caller().get(&status).call().ok()?;
        (reply.status() == 200).then_some(())
    })
    .expect("still refusing after two connections closed");
}
