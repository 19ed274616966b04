//! `CONNECT` in proxy mode: a TCP stream opened by the client, with real peers (curl,
//! ureq's proxy support, raw sockets) and a TCP echo service as the destination. The
//! oracle is the direct path: what comes back through the stream is what went in.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::config::ConfigFile;
use crate::support::rawpeer::read_http_head;
use crate::support::tls::{Pki, TlsFront};
use crate::support::{
    echo_service, fd_count, get, go_style_client, idle_connections, poll, random_bytes, read_reply,
    thread_count, Server, Stack,
};

/// A client flag that allows CONNECT to any port of 127.0.0.1.
const ALLOW_LOOPBACK: [&str; 2] = ["--allow-connect", r"127\.0\.0\.1:\d+"];

/// Opens a CONNECT to `target` through `server` and reads the answer's head; returns
/// the socket (positioned after the head) and the head.
fn connect(server: &Server, target: &str, early: &[u8]) -> (TcpStream, String) {
    let mut socket = TcpStream::connect(server.addr).expect("connect to the server");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("time-out");
    let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    socket.write_all(head.as_bytes()).expect("send CONNECT");
    socket.write_all(early).expect("send early bytes");
    let head = read_http_head(&mut socket).expect("the answer's head");
    (socket, head)
}

/// Runs curl on `url` with `direct` options, then with `tunneled` ones (through the
/// proxy): both succeed with the same body, the test API's `hello world`.
fn same_through_the_proxy(direct: &[&str], tunneled: &[&str], url: &str) {
    let curl = |options: &[&str]| {
        let out = Command::new("curl")
            .arg("-sS")
            .args(options)
            .arg(url)
            .output()
            .expect("curl");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "curl {options:?} {url}: {stderr}");
        out.stdout
    };
    let (direct, tunneled) = (curl(direct), curl(tunneled));
    assert_eq!(tunneled, direct);
    assert_eq!(String::from_utf8_lossy(&tunneled), "hello world");
}

#[test]
fn curl_connects_through_a_client_that_allows_it_and_gets_what_it_gets_directly() {
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let url = stack.url("/hello");
    let proxy = format!("http://{}", stack.server.addr);
    same_through_the_proxy(&[], &["-p", "-x", &proxy], &url);
    let line = stack.server.proc.wait_log("stream ended");
    assert!(line.contains("CONNECT 127.0.0.1:"), "{line}");
}

#[test]
fn ureq_through_the_proxy_tunnels_every_request() {
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let proxy = ureq::Proxy::new(&format!("http://{}", stack.server.addr)).expect("proxy");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(Some(proxy))
        .build()
        .into();
    for _ in 0..3 {
        let mut response = agent.get(&stack.url("/hello")).call().expect("GET");
        let body = response.body_mut().read_to_string().expect("body");
        assert_eq!(body, "hello world");
    }
}

#[test]
fn connect_is_refused_by_a_client_without_a_connect_rule() {
    let stack = Stack::start(&[], &[]);
    let target = stack.upstream.addr().to_string();
    let (mut socket, head) = connect(&stack.server, &target, b"");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let mut rest = String::new();
    let _ = socket.read_to_string(&mut rest);
    assert!(rest.contains("--allow-connect"), "{rest}");
    // curl says the tunnel was refused.
    let proxy = format!("http://{}", stack.server.addr);
    let out = Command::new("curl")
        .args(["-sS", "-p", "-x", &proxy, &stack.url("/hello")])
        .output()
        .expect("curl");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403"), "{stderr}");
}

#[test]
fn a_destination_outside_the_rule_is_refused_and_a_closed_port_is_502() {
    let only_one = ["--allow-connect", r"127\.0\.0\.1:1"];
    let stack = Stack::start(&[], &only_one);
    let target = stack.upstream.addr().to_string();
    let (_, head) = connect(&stack.server, &target, b"");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // Allowed, but nothing listens on port 1.
    let (mut socket, head) = connect(&stack.server, "127.0.0.1:1", b"");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let mut rest = String::new();
    let _ = socket.read_to_string(&mut rest);
    assert!(rest.contains("cannot connect to 127.0.0.1:1"), "{rest}");
}

#[test]
fn bytes_flow_both_ways_early_bytes_first_and_the_connection_serves_again() {
    let echo = echo_service();
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let idle_before = idle_connections(&stack.server);
    let (socket, head) = connect(&stack.server, &echo, b"early bytes ");
    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    // 8 MiB up while the echo comes down: both directions at once.
    let sent = random_bytes(8 << 20, 7);
    let mut writer = socket.try_clone().expect("clone");
    let upload = sent.clone();
    let up = thread::spawn(move || {
        writer.write_all(&upload).expect("upload");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = Vec::new();
    let mut reader = socket;
    reader.read_to_end(&mut back).expect("echo");
    up.join().expect("uploader");
    let mut expected = b"early bytes ".to_vec();
    expected.extend_from_slice(&sent);
    assert_eq!(back.len(), expected.len());
    assert!(back == expected, "the echo differs from what was sent");
    // Both ends done cleanly: the WebSocket is back in the pool and relays requests.
    let back_idle = poll(Duration::from_secs(10), || {
        (idle_connections(&stack.server) >= idle_before).then_some(())
    });
    assert!(
        back_idle.is_some(),
        "the stream's connection did not come back"
    );
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "hello world");
}

#[test]
fn a_go_style_client_alone_gets_a_501() {
    let server = Server::start(&[]);
    let _peer = go_style_client(&server);
    let (mut socket, head) = connect(&server, "127.0.0.1:9", b"");
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    let mut rest = String::new();
    let _ = socket.read_to_string(&mut rest);
    assert!(
        rest.contains("no connected client supports streams"),
        "{rest}"
    );
}

#[test]
fn a_caller_that_vanishes_frees_the_stream_on_both_sides() {
    let echo = echo_service();
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let (server_pid, client_pid) = (stack.server.proc.pid(), stack.client.pid());
    // A first stream, ended cleanly, so that what exists once per process exists.
    let (mut socket, _) = connect(&stack.server, &echo, b"x");
    socket.shutdown(Shutdown::Write).expect("half-close");
    let _ = socket.read_to_end(&mut Vec::new());
    let baseline = || {
        (
            fd_count(server_pid),
            thread_count(server_pid),
            fd_count(client_pid),
            thread_count(client_pid),
        )
    };
    thread::sleep(Duration::from_millis(300));
    let before = poll(Duration::from_secs(10), || {
        let a = baseline();
        thread::sleep(Duration::from_millis(200));
        (baseline() == a).then_some(a)
    })
    .expect("steady counts");
    for _ in 0..5 {
        let (mut socket, head) = connect(&stack.server, &echo, b"");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        socket.write_all(&[1u8; 1000]).expect("send");
        let mut some = [0u8; 100];
        socket.read_exact(&mut some).expect("echo");
        drop(socket);
    }
    let freed = poll(Duration::from_secs(20), || {
        let (sf, st, cf, ct) = baseline();
        (sf <= before.0 && st <= before.1 && cf <= before.2 && ct <= before.3).then_some(())
    });
    assert!(
        freed.is_some(),
        "before {before:?}, after {:?}: a stream left something behind",
        baseline()
    );
    // The aborted streams' connections were replaced: requests still go through.
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "hello world");
}

#[test]
fn a_silent_stream_is_cut_after_the_idle_time_out() {
    let echo = echo_service();
    let mut flags = ALLOW_LOOPBACK.to_vec();
    flags.extend(["--stream-idle-timeout", "500"]);
    let stack = Stack::start(&[], &flags);
    let (mut socket, head) = connect(&stack.server, &echo, b"");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Nothing sent: the stream ends by itself, well before the socket's 20 s time-out.
    let mut rest = Vec::new();
    let ended = socket.read_to_end(&mut rest);
    assert!(ended.is_ok() || rest.is_empty(), "{ended:?}");
    let line = stack.client.wait_log("streamidletimeout");
    assert!(line.contains("nothing either way"), "{line}");
}

#[test]
fn connect_with_no_client_at_all_is_answered_as_a_request_would_be() {
    let server = Server::start(&[]);
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("time-out");
    socket
        .write_all(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        .expect("send");
    let reply = read_reply(&mut std::io::BufReader::new(socket));
    // As for /request with no client: the busy status (526 by default, as Go's).
    assert_eq!(reply.status, 526, "{}", reply.text());
    assert_eq!(reply.text().trim_end(), "No proxy available");
}

#[test]
fn curl_reaches_an_https_api_through_connect_with_tls_end_to_end() {
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let pki = Pki::new();
    let front = TlsFront::start(&pki, stack.upstream.addr());
    let url = format!("https://127.0.0.1:{}/hello", front.addr.port());
    let proxy = format!("http://{}", stack.server.addr);
    let ca = ["--cacert", pki.ca_path()];
    same_through_the_proxy(&ca, &[ca[0], ca[1], "-x", &proxy], &url);
    // curl tunnels https:// through CONNECT whatever -p says.
    let line = stack.server.proc.wait_log("stream ended");
    assert!(
        line.contains(&format!("CONNECT 127.0.0.1:{}", front.addr.port())),
        "{line}"
    );
}

#[test]
fn past_maxstreams_a_stream_is_refused_until_one_ends_and_metrics_count_them() {
    let echo = echo_service();
    let mut flags = ALLOW_LOOPBACK.to_vec();
    flags.extend(["--max-streams", "1"]);
    let stack = Stack::start(&[], &flags);
    let (mut first, head) = connect(&stack.server, &echo, b"one");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut echoed = [0u8; 3];
    first.read_exact(&mut echoed).expect("echo");
    let (mut second, head) = connect(&stack.server, &echo, b"");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let mut text = String::new();
    let _ = second.read_to_string(&mut text);
    assert!(text.contains("(maxstreams)"), "{text}");
    first.shutdown(Shutdown::Write).expect("half-close");
    let _ = first.read_to_end(&mut Vec::new());
    // Ended: a place is free again (the client frees it as the stream ends).
    let third = poll(Duration::from_secs(10), || {
        let (mut socket, head) = connect(&stack.server, &echo, b"three");
        head.starts_with("HTTP/1.1 200").then(|| {
            let mut back = [0u8; 5];
            socket.read_exact(&mut back).expect("echo");
            socket.shutdown(Shutdown::Write).expect("half-close");
            let _ = socket.read_to_end(&mut Vec::new());
            back
        })
    });
    assert_eq!(third.as_ref().map(|b| &b[..]), Some(&b"three"[..]));
    let metrics = poll(Duration::from_secs(10), || {
        let text = get(&format!("http://{}/metrics", stack.server.addr), &[]).text();
        text.contains("wsp_streams_total{result=\"clean\"} 2")
            .then_some(text)
    })
    .expect("two clean streams counted");
    for line in [
        "wsp_streams_open 0",
        "wsp_stream_bytes_total{direction=\"up\"} 8",
        "wsp_stream_bytes_total{direction=\"down\"} 8",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

#[test]
fn an_internal_service_that_resets_ends_the_stream_and_frees_it() {
    // Accepts, reads a little, then resets the connection (SO_LINGER 0).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("address").to_string();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let mut some = [0u8; 4];
            let _ = socket.read_exact(&mut some);
            let sock = reset_on_close(socket);
            drop(sock);
        }
    });
    let stack = Stack::start(&[], &ALLOW_LOOPBACK);
    let (mut caller, head) = connect(&stack.server, &target, b"ping");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The reset ends the caller's connection too, and the server says why.
    let _ = caller.read_to_end(&mut Vec::new());
    let line = stack.server.proc.wait_log("stream aborted");
    assert!(line.contains(&format!("CONNECT {target}")), "{line}");
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "hello world");
}

/// Makes closing `socket` send a reset, not a FIN.
fn reset_on_close(socket: TcpStream) -> TcpStream {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this function owns, with a valid linger struct.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    socket
}

#[test]
fn connect_rules_alone_decide_while_http_rules_still_guard_websockets() {
    let echo = echo_service();
    // The client's whitelist allows one URL that nothing calls: every HTTP request (a
    // WebSocket handshake among them) is refused, a CONNECT its connect rule allows is not.
    let config = ConfigFile::new(
        "wsp_client.cfg",
        "whitelist:\n - url: \"^http://only\\\\.this/\"\nconnect:\n - \"127\\\\.0\\\\.0\\\\.1:\\\\d+\"\n",
    );
    let upstream = crate::support::upstream();
    let server = Server::start(&[]);
    let _client = crate::support::start_client(&server, &["--config", config.path()]);
    let ready = poll(Duration::from_secs(20), || {
        (idle_connections(&server) > 0).then_some(())
    });
    assert!(ready.is_some(), "the client never registered");
    let (mut socket, head) = connect(&server, &echo, b"allowed");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut back = [0u8; 7];
    socket.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"allowed");
    let destination = format!("http://{}/hello", upstream.addr());
    let reply = crate::support::relay(&server, "GET", &destination, &[], None);
    assert_eq!(reply.status, 527, "{}", reply.text());
    assert!(
        reply.text().contains("wsp client whitelist"),
        "{}",
        reply.text()
    );
}

#[test]
fn the_servers_auth_and_rules_apply_to_streams() {
    let echo = echo_service();
    let token = ConfigFile::new("token", "s3cret-token\n");
    // The server refuses CONNECT to the echo service's port by rule, and wants a token.
    let port = echo.rsplit(':').next().unwrap_or_default().to_string();
    let rules = format!("blacklist:\n - method: \"^CONNECT$\"\n   url: \":{port}$\"\n");
    let config = ConfigFile::new("wsp_server.cfg", &rules);
    let server_flags = ["--config", config.path(), "--auth-token-file", token.path()];
    let upstream = crate::support::upstream();
    let server = Server::start(&server_flags);
    let _client = crate::support::start_client(&server, &ALLOW_LOOPBACK);
    let ready = poll(Duration::from_secs(20), || {
        (idle_connections(&server) > 0).then_some(())
    });
    assert!(ready.is_some(), "the client never registered");
    // No credentials: 407, for a CONNECT as for any proxy request.
    let (_, head) = connect(&server, &upstream.addr().to_string(), b"");
    assert!(head.starts_with("HTTP/1.1 407"), "{head}");
    // With them, the blacklist refuses the echo service, and lets the test API through.
    let with_token = |target: &str| {
        let mut socket = TcpStream::connect(server.addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("time-out");
        let head = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\
             Proxy-Authorization: Bearer s3cret-token\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).expect("send");
        let mut answer = [0u8; 12];
        socket.read_exact(&mut answer).expect("answer");
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert_eq!(with_token(&echo), "HTTP/1.1 526");
    assert_eq!(with_token(&upstream.addr().to_string()), "HTTP/1.1 200");
}
