//! Rate limits on callers (`--caller-rate`, `--caller-burst`) and the cap on requests in
//! flight per client (`--client-max-inflight`), gone over with real callers: a second
//! caller on another loopback address (127.0.0.2) must be unaffected by the first.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::config::ConfigFile;
use crate::support::{
    idle_connections, metric, poll, read_reply, start_client, upstream, Proc, Reply, Server,
    TestApi,
};

/// A server with `flags`, a client and the test API, ready, without a relayed request
/// (which would spend a token).
struct Limited {
    upstream: TestApi,
    server: Server,
    _client: Proc,
}

impl Limited {
    fn start(flags: &[&str]) -> Limited {
        let upstream = upstream();
        let server = Server::start(flags);
        let client = start_client(&server, &[]);
        let ready = poll(Duration::from_secs(20), || {
            (idle_connections(&server) > 0).then_some(())
        });
        assert!(ready.is_some(), "the client never registered");
        Limited {
            upstream,
            server,
            _client: client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.upstream.addr())
    }
}

/// `GET /request` for the test API's `/hello` from local address `from`.
fn hello_from(stack: &Limited, from: [u8; 4], headers: &str) -> Reply {
    let socket = socket2_connect(from, stack.server.addr);
    let mut writer = socket.try_clone().expect("clone");
    let head = format!(
        "GET /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: {}\r\n{headers}\
         Connection: close\r\n\r\n",
        stack.url("/hello")
    );
    writer.write_all(head.as_bytes()).expect("send");
    read_reply(&mut BufReader::new(socket))
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all ours).
fn socket2_connect(from: [u8; 4], to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    // std cannot bind before connecting: a raw socket, bound, then connected.
    // SAFETY: socket/bind/connect on a descriptor this function owns; on any failure the
    // descriptor is closed by the TcpStream it is wrapped in, or by close() here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let stream = TcpStream::from_raw_fd(fd);
        let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = addr(from, 0);
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind to {from:?}");
        let SocketAddr::V4(to) = to else {
            panic!("an IPv4 server")
        };
        let remote = addr(to.ip().octets(), to.port());
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect to {to}");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("time-out");
        stream
    }
}

#[test]
fn over_callerrate_a_caller_gets_429_while_another_is_unaffected() {
    // One request a minute, two at once: the third is over, and stays over for the test.
    let stack = Limited::start(&["--caller-rate", "0.0167", "--caller-burst", "2"]);
    let first = hello_from(&stack, [127, 0, 0, 1], "");
    assert_eq!(first.status, 200, "{}", first.text());
    let second = hello_from(&stack, [127, 0, 0, 1], "");
    assert_eq!(second.status, 200, "{}", second.text());
    let third = hello_from(&stack, [127, 0, 0, 1], "");
    assert_eq!(third.status, 429, "{}", third.text());
    let retry: u64 = third
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=61).contains(&retry), "Retry-After {retry}");
    assert!(third.text().contains("callerrate"), "{}", third.text());
    // Another address has its own bucket.
    let other = hello_from(&stack, [127, 0, 0, 2], "");
    assert_eq!(
        (other.status, other.text()),
        (200, "hello world".to_string())
    );
    assert_eq!(
        metric(&stack.server, "wsp_rate_limited_total{by=\"address\"}"),
        Some(1.0)
    );
}

#[test]
fn with_auth_each_identity_has_its_own_bucket_too() {
    let users = ConfigFile::new(
        "wsp_server.cfg",
        "auth:\n  tokens:\n    - token: alpha-token\n    - token: beta-token\n",
    );
    let server_flags = [
        "--config",
        users.path(),
        "--caller-rate",
        "0.0167",
        "--caller-burst",
        "1",
    ];
    let stack = Limited::start(&server_flags);
    let first = hello_from(
        &stack,
        [127, 0, 0, 1],
        "Authorization: Bearer alpha-token\r\n",
    );
    assert_eq!(first.status, 200, "{}", first.text());
    // alpha's one request is spent: from another address it is still refused, by identity.
    let alpha = hello_from(
        &stack,
        [127, 0, 0, 3],
        "Authorization: Bearer alpha-token\r\n",
    );
    assert_eq!(alpha.status, 429, "{}", alpha.text());
    assert!(
        alpha.text().contains("these credentials"),
        "{}",
        alpha.text()
    );
    // beta, from a fresh address, passes.
    let beta = hello_from(
        &stack,
        [127, 0, 0, 4],
        "Authorization: Bearer beta-token\r\n",
    );
    assert_eq!(beta.status, 200, "{}", beta.text());
    assert_eq!(
        metric(&stack.server, "wsp_rate_limited_total{by=\"identity\"}"),
        Some(1.0)
    );
}

/// An internal API that reports each request as it arrives and answers it only when told.
fn gate() -> (String, Receiver<String>, Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (arrived, arrivals) = channel();
    let (open, opens) = channel::<()>();
    let opens = Arc::new(Mutex::new(opens));
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let (arrived, opens) = (arrived.clone(), opens.clone());
            thread::spawn(move || {
                let mut reader = BufReader::new(socket.try_clone().expect("clone"));
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let _ = arrived.send(line.trim_end().to_string());
                let _ = opens.lock().expect("gate").recv();
                let mut socket = socket;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            });
        }
    });
    (addr, arrivals, open)
}

#[test]
fn clientmaxinflight_holds_a_request_until_one_in_flight_ends() {
    let stack = Limited::start(&["--client-max-inflight", "1", "--timeout", "20000"]);
    let (api, arrivals, open) = gate();
    let wait = Duration::from_secs(20);
    thread::scope(|s| {
        let first = s.spawn(|| {
            crate::support::relay(
                &stack.server,
                "GET",
                &format!("http://{api}/first"),
                &[],
                None,
            )
        });
        assert_eq!(
            arrivals.recv_timeout(wait).ok().as_deref(),
            Some("GET /first HTTP/1.1")
        );
        let second = s.spawn(|| {
            crate::support::relay(
                &stack.server,
                "GET",
                &format!("http://{api}/second"),
                &[],
                None,
            )
        });
        // The second is held at the server: passed over for the cap, it waits.
        let held = poll(wait, || {
            (metric(&stack.server, "wsp_client_inflight_capped_total")? >= 1.0).then_some(())
        });
        assert!(
            held.is_some(),
            "the second request was never held by the cap"
        );
        assert!(
            arrivals.try_recv().is_err(),
            "the second reached the API over the cap"
        );
        // The first ends: the second goes.
        open.send(()).expect("open");
        assert_eq!(first.join().expect("first").status, 200);
        assert_eq!(
            arrivals.recv_timeout(wait).ok().as_deref(),
            Some("GET /second HTTP/1.1")
        );
        open.send(()).expect("open");
        assert_eq!(second.join().expect("second").status, 200);
    });
}
