//! Faults the pair must ride through without losing a request or hanging: a client
//! killed or frozen, the server restarted, an internal API that hangs, a caller that goes
//! away mid-download, and graceful shutdown of either side on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use crate::support::*;

/// A server and two clients `a` and `b`, each keeping `idle` connections, all
/// registered (the server logs each registration at debug level).
fn fully_pooled_clients(server_flags: &[&str], idle: &str) -> (TestApi, Server, Proc, Proc) {
    let upstream = upstream();
    let mut flags = vec!["--log-level", "debug"];
    flags.extend_from_slice(server_flags);
    let server = Server::start(&flags);
    let start = |id: &str| start_client(&server, &["--id", id, "--pool-idle-size", idle]);
    let (a, b) = (start("a"), start("b"));
    let wanted: usize = idle.parse().expect("pool size");
    for id in ["a", "b"] {
        let registered = poll(READY, || {
            (registrations(&server, id) >= wanted).then_some(())
        });
        assert!(registered.is_some(), "client {id} never registered {idle}");
    }
    wait_relay_ready(&server, &upstream);
    (upstream, server, a, b)
}

/// How many connections client `id` registered so far, from the server's debug log.
fn registrations(server: &Server, id: &str) -> usize {
    let needle = format!("client {id} registered a connection");
    server.proc.log.lock().matches(&needle).count()
}

/// How many connections all clients registered so far.
fn all_registrations(server: &Server) -> usize {
    server
        .proc
        .log
        .lock()
        .matches("registered a connection")
        .count()
}

/// How many of client `id`'s connections the server found dead so far.
fn dead_connections(server: &Server, id: &str) -> usize {
    let needle = format!("client {id}: connection dead");
    server.proc.log.lock().matches(&needle).count()
}

#[test]
fn a_killed_client_costs_no_request() {
    const REQUESTS: usize = 200;
    const CALLERS: usize = 4;
    let (upstream, server, mut a, _b) = fully_pooled_clients(&[], "4");
    a.child.kill().expect("kill client a");
    a.child.wait().expect("reap client a");
    // Half GETs, half POSTs with a body: a body can never be replayed, so the POSTs pass
    // only if no request is ever sent on a dead connection.
    let failures = Arc::new(parking_lot::Mutex::new(Vec::new()));
    thread::scope(|scope| {
        for caller in 0..CALLERS {
            let (server, upstream, failures) = (&server, &upstream, failures.clone());
            scope.spawn(move || {
                for i in 0..REQUESTS / CALLERS {
                    let body = format!("caller {caller} request {i}");
                    let reply = if i % 2 == 0 {
                        let url = format!("http://{}/hello", upstream.addr());
                        relay(server, "GET", &url, &[], None)
                    } else {
                        let url = format!("http://{}/post", upstream.addr());
                        relay(server, "POST", &url, &[], Some(body.as_bytes()))
                    };
                    let expected = if i % 2 == 0 { "hello world" } else { &body };
                    if reply.status != 200 || reply.text() != expected {
                        failures
                            .lock()
                            .push(format!("{} {}", reply.status, reply.text()));
                    }
                }
            });
        }
    });
    let failures = failures.lock();
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} failed after client a was killed: {failures:?}",
        failures.len()
    );
}

#[test]
fn a_frozen_client_is_found_out_and_comes_back_when_thawed() {
    let flags = [
        "--ping-interval",
        "200",
        "--ping-timeout",
        "1000",
        "--request-timeout",
        "10000",
    ];
    let (upstream, server, a, b) = fully_pooled_clients(&flags, "3");
    let threads_before = thread_count(server.proc.pid());
    signal(a.pid(), "STOP");
    let _thaw = Thaw(a.pid());
    let found = poll(READY, || {
        (dead_connections(&server, "a") >= 3).then_some(())
    });
    assert!(
        found.is_some(),
        "frozen client a's connections never declared dead; server log:\n{}",
        server.proc.log.lock()
    );
    // None of the requests may go to the frozen client: they would take the 10 s
    // request time-out and answer 504.
    let url = format!("http://{}/hello", upstream.addr());
    for i in 0..30 {
        let reply = relay(&server, "GET", &url, &[], None);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    let freed = poll(READY, || {
        (thread_count(server.proc.pid()) <= threads_before).then_some(())
    });
    assert!(
        freed.is_some(),
        "server threads {} > {threads_before} before the freeze",
        thread_count(server.proc.pid())
    );

    let registered = registrations(&server, "a");
    signal(a.pid(), "CONT");
    let back = poll(READY, || {
        (registrations(&server, "a") > registered).then_some(())
    });
    assert!(
        back.is_some(),
        "client a never registered again after SIGCONT"
    );
    // With b gone, only a can answer.
    drop(b);
    let served = poll(READY, || {
        (relay(&server, "GET", &url, &[], None).status == 200).then_some(())
    });
    assert!(served.is_some(), "the thawed client never served");
}

/// Resumes a stopped process when dropped, so a failing test leaves nothing frozen.
pub(crate) struct Thaw(pub(crate) u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .args(["-c", &format!("kill -CONT {} 2>/dev/null", self.0)])
            .status();
    }
}

#[test]
fn clients_come_back_fast_and_never_hammer_a_down_server() {
    const DOWN: Duration = Duration::from_secs(3);
    let upstream = upstream();
    let first = Server::start(&[]);
    let client = start_client(&first, &["--pool-idle-size", "4"]);
    wait_relay_ready(&first, &upstream);
    let port = first.addr.port();
    drop(first);

    // While the server is down, a listener on its port that hangs up at once counts
    // the client's attempts.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the server's port");
    listener.set_nonblocking(true).expect("non-blocking");
    let ticks_before = cpu_ticks(client.pid());
    let started = Instant::now();
    let mut attempts = 0;
    while started.elapsed() < DOWN {
        match listener.accept() {
            Ok((stream, _)) => {
                attempts += 1;
                drop(stream);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    let cpu = cpu_ticks(client.pid()) - ticks_before;
    drop(listener);
    println!("while down for {DOWN:?}: {attempts} attempts, {cpu} CPU ticks");
    assert!(attempts >= 1, "the client never tried to reconnect");
    assert!(
        attempts <= 3 * DOWN.as_secs() as usize + 2,
        "{attempts} connection attempts in {DOWN:?}: hammering"
    );
    assert!(cpu <= 30, "{cpu} CPU ticks in {DOWN:?}: busy-looping");

    let second = Server::start(&["--port", &port.to_string()]);
    let back = Instant::now();
    wait_relay_ready(&second, &upstream);
    let took = back.elapsed();
    println!("serving again {took:?} after the server was back");
    // The back-off is capped at 1 s; the margin is for a loaded machine.
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} to serve again"
    );
}

#[test]
fn a_hanging_internal_api_gets_504_from_the_client_and_the_connection_is_reused() {
    let stack = Stack::start(
        &["--log-level", "debug"],
        &[
            "--request-timeout",
            "500",
            "--pool-idle-size",
            "1",
            "--pool-max-size",
            "1",
        ],
    );
    let registered = all_registrations(&stack.server);
    let reply = stack.relay("GET", "/sleep?ms=5000", &[], None);
    assert_eq!(reply.status, 504, "{}", reply.text());
    let text = reply.text();
    for words in ["wsp client", "internal API", "500 ms", "/sleep"] {
        assert!(text.contains(words), "{text:?} lacks {words:?}");
    }
    // The one connection the client may have served the 504 and serves on.
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    let now = all_registrations(&stack.server);
    assert_eq!(now, registered, "the connection was not reused");
}

#[test]
fn a_silent_client_gets_504_from_the_server_and_others_go_on() {
    let stack = Stack::start(&["--request-timeout", "500"], &["--pool-idle-size", "2"]);
    let reply = stack.relay("GET", "/sleep?ms=3000", &[], None);
    assert_eq!(reply.status, 504, "{}", reply.text());
    let text = reply.text();
    for words in ["wsp server", "no answer from client", "500 ms"] {
        assert!(text.contains(words), "{text:?} lacks {words:?}");
    }
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
}

#[test]
fn a_caller_gone_mid_download_leaks_nothing() {
    let stack = Stack::start(&[], &["--pool-idle-size", "2"]);
    let (server, client) = (stack.server.proc.pid(), stack.client.pid());
    // Warm up: the upstream connection pool and threads settle.
    for _ in 0..3 {
        assert_eq!(stack.relay("GET", "/bytes?n=100000", &[], None).status, 200);
    }
    let before = [
        fd_count(server),
        fd_count(client),
        thread_count(server) as usize,
        thread_count(client) as usize,
    ];

    let mut caller = TcpStream::connect(stack.server.addr).expect("connect");
    let destination = stack.url("/bytes?n=1073741824");
    write!(
        caller,
        "GET /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: {destination}\r\n\r\n"
    )
    .expect("send request");
    let mut buf = vec![0u8; 1 << 20];
    caller.read_exact(&mut buf).expect("first MiB");
    drop(caller);

    let settled = poll(READY, || {
        let now = [
            fd_count(server),
            fd_count(client),
            thread_count(server) as usize,
            thread_count(client) as usize,
        ];
        now.iter().zip(&before).all(|(n, b)| n <= b).then_some(now)
    });
    assert!(
        settled.is_some(),
        "fds/threads (server fds, client fds, server threads, client threads) {:?} \
         never back to {before:?}",
        [
            fd_count(server),
            fd_count(client),
            thread_count(server) as usize,
            thread_count(client) as usize,
        ]
    );
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn with_every_connection_busy_the_caller_gets_526_within_the_wait() {
    let stack = Stack::start(
        &["--timeout", "300"],
        &["--pool-idle-size", "1", "--pool-max-size", "1"],
    );
    let slow = thread::scope(|scope| {
        let slow = scope.spawn(|| stack.relay("GET", "/sleep?ms=3000", &[], None));
        // Once the one connection is busy, a request waits 300 ms and is refused.
        let refused = poll(READY, || {
            let reply = stack.relay("GET", "/hello", &[], None);
            (reply.status == 526).then_some(reply)
        });
        let refused = refused.expect("never refused while the connection was busy");
        assert_eq!(refused.text(), "Unable to get a proxy connection\n");
        slow.join().expect("slow request")
    });
    assert_eq!(slow.status, 200);
}

#[test]
fn busy_status_503_comes_with_retry_after() {
    let server = Server::start(&["--busy-status", "503"]);
    let reply = get(
        &server.request_url(),
        &[("X-PROXY-DESTINATION", "http://x/")],
    );
    assert_eq!(reply.status, 503);
    assert_eq!(reply.text(), "No proxy available\n");
    assert_eq!(reply.header("retry-after"), Some("1"));
}

/// An upstream that holds one request until released: the test knows when a request is
/// in flight without sleeping.
pub(crate) struct Gate {
    addr: std::net::SocketAddr,
    pub(crate) arrived: Receiver<()>,
    pub(crate) release: Sender<()>,
}

impl Gate {
    pub(crate) fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind gate");
        let addr = listener.local_addr().expect("gate address");
        let (arrived_tx, arrived) = bounded(1);
        let (release, release_rx) = bounded::<()>(1);
        thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = arrived_tx.send(());
            let _ = release_rx.recv_timeout(READY);
            let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
        });
        Gate {
            addr,
            arrived,
            release,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/held", self.addr)
    }
}

/// Starts a request through `server` to the gate and waits until it is in flight.
pub(crate) fn hold_request<'s>(
    scope: &'s thread::Scope<'s, '_>,
    server: &'s Server,
    gate: &Gate,
) -> thread::ScopedJoinHandle<'s, Reply> {
    let url = gate.url();
    let held = scope.spawn(move || relay(server, "GET", &url, &[], None));
    gate.arrived
        .recv_timeout(READY)
        .expect("the request never reached the upstream");
    held
}

#[test]
fn sigterm_on_the_server_finishes_in_flight_requests_and_exits_0() {
    let mut stack = Stack::start(&[], &["--pool-idle-size", "2"]);
    let gate = Gate::start();
    let reply = thread::scope(|scope| {
        let held = hold_request(scope, &stack.server, &gate);
        signal(stack.server.proc.pid(), "TERM");
        let closed = poll(READY, || {
            TcpStream::connect(stack.server.addr).is_err().then_some(())
        });
        assert!(closed.is_some(), "the server still accepts after SIGTERM");
        let _ = gate.release.send(());
        held.join().expect("held request")
    });
    assert_eq!((reply.status, reply.text().as_str()), (200, "done"));
    assert_eq!(stack.server.proc.wait_exit(READY), Some(0));
}

#[test]
fn sigterm_on_the_server_closes_idle_websockets_with_a_close_frame() {
    let mut server = Server::start(&["--log-level", "debug"]);
    let mut peer = register_peer(&server, "peer_1");
    server.proc.wait_log("client peer registered a connection");
    signal(server.proc.pid(), "TERM");
    peer.get_ref()
        .set_read_timeout(Some(READY))
        .expect("read timeout");
    let close = loop {
        match peer.read().expect("a close frame") {
            Message::Close(frame) => break frame,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let code = close.map(|f| f.code);
    assert_eq!(code, Some(CloseCode::Away));
    assert_eq!(server.proc.wait_exit(READY), Some(0));
}

#[test]
fn sigterm_on_the_client_finishes_in_flight_requests_and_exits_0() {
    let mut stack = Stack::start(&[], &["--pool-idle-size", "2", "--log-level", "debug"]);
    let gate = Gate::start();
    let reply = thread::scope(|scope| {
        let held = hold_request(scope, &stack.server, &gate);
        signal(stack.client.pid(), "TERM");
        stack.client.wait_log("SIGTERM");
        assert!(
            stack
                .client
                .child
                .try_wait()
                .expect("client status")
                .is_none(),
            "the client exited with a request in flight"
        );
        let _ = gate.release.send(());
        held.join().expect("held request")
    });
    assert_eq!((reply.status, reply.text().as_str()), (200, "done"));
    assert_eq!(stack.client.wait_exit(READY), Some(0));
    // Its idle connections were closed, so the server has none left.
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "No proxy available\n");
}
