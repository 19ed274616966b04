//! The patched behaviour of the vendored tiny_http (`vendor/tiny_http/PATCHES.md`) that
//! the capability modules do not already test, against the real `wsp_server`: a burst
//! of connections all served (patch 1), a client reset before it was accepted (8),
//! requests still coming on open connections after the stop (9), requests of one
//! connection handled one after the other (10), head time-outs however a head began (11),
//! TLS refusing garbage with an alert and timing out heads (12), and an accept loop that
//! outlives injected accept errors (15, on tiny_http itself).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use tiny_http::HEADER_TIMEOUT;

use crate::faults::{hold_request, Gate, Thaw};
use crate::server_tls::{https, https_caller, raw_tls, tls_server};
use crate::support::tls::Pki;
use crate::support::*;

/// A whole request for `/status`, kept alive.
const STATUS: &[u8] = b"GET /status HTTP/1.1\r\nHost: wsp\r\n\r\n";
/// The start of a request head that never ends.
const PARTIAL: &[u8] = b"GET /status HTTP/1.1\r\nHost: wsp\r\n";
/// The status line of a 200.
const OK: &str = "HTTP/1.1 200 OK\r\n";
/// How soon something that needs no waiting must have happened, on a loaded machine.
const FAST: Duration = Duration::from_secs(5);
/// How late after `HEADER_TIMEOUT` a head cut short may be answered 408.
const CUT_MARGIN: Duration = Duration::from_secs(10);

/// A connection to `addr` whose reads give up after `READY`.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READY)).expect("read time-out");
    stream
}

/// Reads one line (a status line) from `stream`.
fn read_line(stream: &TcpStream) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

/// Reads `reader` until the peer closes (an end or a reset), returning what came and
/// when it closed; a read time-out fails the test.
fn read_until_closed(mut reader: impl Read) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (received, Instant::now()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (received, Instant::now()),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return (received, Instant::now()),
            Err(e) => panic!("not closed by the server: {e}, after {received:?}"),
        }
    }
}

/// Asserts that `answer` is the 408 of a head cut short, which came `lived` after the
/// head started, not before `HEADER_TIMEOUT` nor long after.
fn assert_cut(what: &str, answer: &[u8], lived: Duration) {
    let answer = String::from_utf8_lossy(answer);
    let text = format!(
        "request head not received within {} s\n",
        HEADER_TIMEOUT.as_secs()
    );
    assert!(
        answer.starts_with("HTTP/1.1 408 ") && answer.ends_with(&text),
        "{what}: {answer:?}"
    );
    let earliest = HEADER_TIMEOUT - Duration::from_secs(1);
    assert!(
        (earliest..HEADER_TIMEOUT + CUT_MARGIN).contains(&lived),
        "{what}: cut after {lived:?}"
    );
}

/// Connections each burst opens, all kept open until every one is answered.
const BURST: usize = 48;
/// Bursts in a row, each meeting the threads the last one left waiting.
const BURSTS: usize = 3;

/// Patch 1: upstream's thread pool could queue two connections accepted back to back
/// for one waiting thread; the second then waited until some connection closed. Every
/// connection of a burst, all held open, must be answered.
#[test]
fn a_burst_of_connections_held_open_is_served_whole() {
    let server = Server::start(&[]);
    for burst in 1..=BURSTS {
        let streams: Vec<TcpStream> = (0..BURST).map(|_| connect(server.addr)).collect();
        for stream in &streams {
            (&*stream).write_all(STATUS).expect("send");
        }
        let deadline = Instant::now() + READY;
        for (i, stream) in streams.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read time-out");
            let line = read_line(stream).map_err(|e| e.to_string());
            assert_eq!(
                line.as_deref(),
                Ok(OK),
                "burst {burst}, connection {i} of {BURST}: not answered within {READY:?}"
            );
        }
    }
}

/// An upstream that reports, in order, each request's arrival and the start of its
/// answer, and answers `/slow` only after `SLOW`: a server that relayed the next request
/// of the connection before this one was done would show it arriving meanwhile.
struct Recorder {
    addr: SocketAddr,
    events: Receiver<String>,
}

/// How long the recorder holds `/slow` before answering.
const SLOW: Duration = Duration::from_millis(300);

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = listener.local_addr().expect("recorder address");
        let (sender, events) = unbounded();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let sender = sender.clone();
                thread::spawn(move || serve_recorded(stream, &sender));
            }
        });
        Recorder { addr, events }
    }

    /// The next `count` events, waiting at most `READY` for each.
    fn events(&self, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| self.events.recv_timeout(READY).expect("an event"))
            .collect()
    }
}

/// Serves the GET requests of one connection, reporting to `events`.
fn serve_recorded(stream: TcpStream, events: &Sender<String>) {
    let mut reader = BufReader::new(&stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let _ = events.send(format!("arrived {path}"));
        if path == "/slow" {
            thread::sleep(SLOW);
        }
        // Reported before writing: the next request cannot arrive before this answer.
        let _ = events.send(format!("answering {path}"));
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
            path.len()
        );
        if (&stream).write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Patch 10: the requests of one connection are handled on its thread, one after the
/// other: pipelined, the second is relayed only once the first is answered, though the
/// client's two connections could relay both at once.
#[test]
fn pipelined_requests_are_handled_one_after_the_other() {
    let stack = Stack::start(&[], &["--pool-idle-size", "2"]);
    let recorder = Recorder::start();
    let request = |path: &str| {
        format!(
            "GET /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: http://{}{path}\r\n\r\n",
            recorder.addr
        )
    };
    let stream = connect(stack.server.addr);
    let pipeline = request("/slow") + &request("/fast");
    (&stream).write_all(pipeline.as_bytes()).expect("send");
    let mut reader = BufReader::new(&stream);
    let answers: Vec<String> = (0..2).map(|_| read_reply(&mut reader).text()).collect();
    assert_eq!(answers, ["/slow", "/fast"]);
    let expected = [
        "arrived /slow",
        "answering /slow",
        "arrived /fast",
        "answering /fast",
    ];
    assert_eq!(recorder.events(4), expected);
}

/// Patch 9: the stop closes the listener, and the requests still coming on connections
/// already open are received and answered (503, as wsp turns them away), while the one
/// in flight finishes.
#[test]
fn after_the_stop_requests_on_open_connections_are_answered_503() {
    let mut stack = Stack::start(&[], &["--pool-idle-size", "2"]);
    let open = connect(stack.server.addr);
    let mut reader = BufReader::new(&open);
    (&open).write_all(STATUS).expect("send");
    assert_eq!(read_reply(&mut reader).status, 200);
    let gate = Gate::start();
    let held = thread::scope(|scope| {
        let held = hold_request(scope, &stack.server, &gate);
        signal(stack.server.proc.pid(), "TERM");
        let addr = stack.server.addr;
        let closed = poll(READY, || TcpStream::connect(addr).is_err().then_some(()));
        assert!(closed.is_some(), "the server still accepts after SIGTERM");
        (&open).write_all(STATUS).expect("send after the stop");
        let late = read_reply(&mut reader);
        assert_eq!(
            (late.status, late.text().as_str()),
            (503, "wsp server is shutting down\n")
        );
        assert_eq!(late.header("retry-after"), Some("1"));
        let _ = gate.release.send(());
        held.join().expect("held request")
    });
    assert_eq!((held.status, held.text().as_str()), (200, "done"));
    assert_eq!(stack.server.proc.wait_exit(READY), Some(0));
}

/// Makes closing `stream` reset the connection (`SO_LINGER` 0) instead of ending it.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket `stream` owns, with a valid struct and its size.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// Connections reset before the server accepts them.
const RESET_CONNECTIONS: usize = 8;

/// Patch 8: a client that sent its request and reset the connection before the server
/// accepted it (the server is stopped meanwhile) leaves a connection whose peer address
/// cannot be read, though its head can; upstream panicked on it.
#[test]
fn clients_reset_before_being_accepted_cause_no_panic() {
    let server = Server::start(&[]);
    let pid = server.proc.pid();
    let baseline = fd_count(pid);
    let thaw = Thaw(pid);
    signal(pid, "STOP");
    for _ in 0..RESET_CONNECTIONS {
        let stream = connect(server.addr);
        (&stream).write_all(STATUS).expect("send");
        reset_on_close(&stream);
    }
    drop(thaw);
    // Every reset connection accepted, read and let go (or a panic logged).
    let panicked = || server.proc.log.lock().contains("panicked");
    let settled = poll(READY, || {
        (panicked() || fd_count(pid) <= baseline).then_some(())
    });
    assert!(!panicked(), "{}", server.proc.log.lock());
    assert!(
        settled.is_some(),
        "{} descriptors open, {baseline} before",
        fd_count(pid)
    );
    let status = get(&format!("http://{}/status", server.addr), &[]);
    assert_eq!((status.status, status.text().as_str()), (200, "ok"));
    assert!(!panicked(), "{}", server.proc.log.lock());
}

/// Patches 11 and 6: a head must come whole within `HEADER_TIMEOUT` of its first byte,
/// also when it follows a head that came whole (for which no time-out was set), in the
/// same packet or later; and a kept-alive connection that sends nothing more waits for
/// `KEEP_ALIVE_TIMEOUT` (60 s), not the head's.
#[test]
fn heads_cut_short_after_whole_ones_are_timed_out() {
    let server = Server::start(&[]);
    // First, so that it has been idle longest when looked at.
    let idle = connect(server.addr);
    (&idle).write_all(STATUS).expect("send");
    assert_eq!(read_reply(&mut BufReader::new(&idle)).status, 200);

    let cut = thread::scope(|scope| {
        let same_packet = scope.spawn(|| {
            let stream = connect(server.addr);
            (&stream)
                .write_all(&[STATUS, PARTIAL].concat())
                .expect("send");
            let started = Instant::now();
            let mut reader = BufReader::new(&stream);
            assert_eq!(read_reply(&mut reader).status, 200);
            let (answer, closed) = read_until_closed(reader);
            (answer, closed - started)
        });
        let later = scope.spawn(|| {
            let stream = connect(server.addr);
            (&stream).write_all(STATUS).expect("send");
            assert_eq!(read_reply(&mut BufReader::new(&stream)).status, 200);
            (&stream).write_all(PARTIAL).expect("send partial head");
            let started = Instant::now();
            let (answer, closed) = read_until_closed(&stream);
            (answer, closed - started)
        });
        [same_packet, later].map(|t| t.join().expect("cut connection"))
    });
    let [(same, same_lived), (later, later_lived)] = cut;
    assert_cut("in the packet of a whole head", &same, same_lived);
    assert_cut("after a whole request", &later, later_lived);

    (&idle)
        .write_all(STATUS)
        .expect("send on the idle connection");
    let line = read_line(&idle).map_err(|e| e.to_string());
    assert_eq!(line.as_deref(), Ok(OK), "the idle connection was not kept");
}

/// Silent TCP connections to the TLS server: handshakes that never start.
const SILENT_TLS: usize = 4;

/// Patch 12: what is not TLS is answered with a TLS alert and the connection closed at
/// once; handshakes are made on the connections' threads, so connections that never
/// start theirs hold up no one.
#[test]
fn a_tls_server_answers_garbage_with_an_alert_and_waits_on_no_handshake() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let silent: Vec<TcpStream> = (0..SILENT_TLS).map(|_| connect(server.addr)).collect();

    let garbage = connect(server.addr);
    let started = Instant::now();
    (&garbage).write_all(STATUS).expect("send");
    let (answer, closed) = read_until_closed(&garbage);
    assert!(
        closed - started < FAST,
        "closed after {:?}",
        closed - started
    );
    // A TLS record: content type 21 (alert), protocol version 3.x.
    assert!(answer.starts_with(&[0x15, 0x03]), "{answer:?}");

    let started = Instant::now();
    let status = https_caller(&pki)
        .get(https(&server, "/status"))
        .call()
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(200));
    assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());
    drop(silent);
}

/// Patches 12 and 6: over TLS as over TCP, a head cut short is answered 408 at
/// `HEADER_TIMEOUT` (counted from the accept, handshake included).
#[test]
fn a_tls_head_cut_short_is_answered_408() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let started = Instant::now();
    let mut tls = raw_tls(server.addr, &pki);
    tls.write_all(PARTIAL).expect("handshake and partial head");
    tls.flush().expect("flush");
    let (answer, closed) = read_until_closed(&mut tls);
    assert_cut("over TLS", &answer, closed - started);
}

/// Patch 15: accept errors are injected into a running tiny_http server (its listening
/// socket shut down, so that every `accept` fails with EINVAL), then taken away (the
/// socket listening again): the accept loop, which upstream ended at the first error,
/// serves again.
#[test]
fn the_accept_loop_survives_injected_accept_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let fd = listener.as_raw_fd();
    let same = listener
        .try_clone()
        .expect("a second handle on the listener");
    let handler: tiny_http::Handler = std::sync::Arc::new(|request: tiny_http::Request| {
        let _ = request.respond(tiny_http::Response::from_string("ok"));
    });
    let _server = tiny_http::Server::from_listener_with_handler(listener, None, handler, None)
        .expect("start tiny_http");
    let served = |addr: SocketAddr| {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(FAST)).ok()?;
        (&stream).write_all(STATUS).ok()?;
        read_line(&stream).ok()
    };
    let addr = same.local_addr().expect("address");
    assert_eq!(served(addr).as_deref(), Some(OK), "not serving at first");
    // SAFETY: shutdown(2) on the listening socket, which the server keeps open.
    assert_eq!(
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) },
        0,
        "shutdown"
    );
    let down = poll(FAST, || TcpStream::connect(addr).is_err().then_some(()));
    assert!(down.is_some(), "still accepting after the shutdown");
    // Listening again (on a new port: the shutdown released the ephemeral one), while
    // the accept loop backs off from its errors.
    // SAFETY: listen(2) on the same socket.
    assert_eq!(unsafe { libc::listen(fd, 128) }, 0, "listen again");
    let addr = same.local_addr().expect("address");
    let again = poll(READY, || served(addr));
    assert_eq!(
        again.as_deref(),
        Some(OK),
        "not serving once accept works again"
    );
}
