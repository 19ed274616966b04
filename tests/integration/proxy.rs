//! HTTP proxy mode: a request in absolute form (`GET http://api/hello HTTP/1.1`, what
//! `curl -x` sends) is relayed as `/request` relays one with that URL in
//! `X-PROXY-DESTINATION`: same rules, client choice, access log and metrics; auth with
//! 407 and `Proxy-Authorization`; other targets 400 (`CONNECT` is `connect.rs`'s).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use base64::Engine;

use crate::config::ConfigFile;
use crate::support::rawpeer::{Msg, RawWs, BINARY, TEXT};
use crate::support::*;

const TOKEN: &str = "it-proxy-token-91ab";
const USER: &str = "alice";
const PASSWORD: &str = "it-proxy-pw-e4";

/// A connection to the server, to write requests on by hand.
struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(server: &Server) -> Conn {
        Conn::to(server.addr)
    }

    fn to(addr: SocketAddr) -> Conn {
        let writer = TcpStream::connect(addr).expect("connect to the server");
        writer.set_read_timeout(Some(READY)).expect("read timeout");
        let reader = BufReader::new(writer.try_clone().expect("clone the socket"));
        Conn { writer, reader }
    }

    /// Sends `method target` with `Host` taken from the target, `headers` and `body`
    /// (with its `Content-Length`), and reads the answer.
    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let host = target.split('/').nth(2).unwrap_or("wsp");
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        self.writer.write_all(head.as_bytes()).expect("send head");
        self.writer.write_all(body).expect("send body");
        read_reply(&mut self.reader)
    }
}

/// One request in absolute form on a connection of its own.
fn proxied(server: &Server, method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    Conn::open(server).send(method, url, headers, b"")
}

/// The value of an unlabelled counter in `/metrics`.
fn counter(server: &Server, name: &str) -> u64 {
    let metrics = get(&format!("http://{}/metrics", server.addr), &[]).text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// `curl` with `args`, its output when it ran, or `None` when curl is not installed (CI
/// has it; the tests that use it then say so and skip that part).
fn curl(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("curl").args(args).output() {
        Ok(output) => Some(output),
        Err(e) => {
            eprintln!("curl not run ({e}): skipping the curl part");
            None
        }
    }
}

#[test]
fn get_and_post_in_absolute_form_are_relayed_logged_and_counted() {
    let stack = Stack::start(&[], &[]);
    let hello = proxied(&stack.server, "GET", &stack.url("/hello"), &[]);
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello world"));
    let body = random_bytes(1 << 20, 7);
    let before = counter(&stack.server, "wsp_request_bytes_total");
    let post = Conn::open(&stack.server).send("POST", &stack.url("/post"), &[], &body);
    assert_eq!(post.status, 200, "{}", post.text());
    assert!(post.body == body, "the echoed body differs");
    // The server counts the exchange once its last byte is written: the caller may read
    // that byte, and ask, a moment before.
    let counted = poll(Duration::from_secs(5), || {
        let after = counter(&stack.server, "wsp_request_bytes_total");
        (after - before == body.len() as u64).then_some(())
    });
    assert!(
        counted.is_some(),
        "request bytes not counted as {}",
        body.len()
    );
    let line = stack
        .server
        .proc
        .wait_log(&format!("POST {} 200", stack.url("/post")));
    assert!(line.contains(&format!("in={}", body.len())), "{line}");
}

#[test]
fn curl_x_reaches_the_internal_api() {
    let stack = Stack::start(&[], &[]);
    let proxy = format!("http://{}", stack.server.addr);
    let Some(out) = curl(&["-sS", "-x", &proxy, &stack.url("/hello")]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "hello world");
    // curl says `Proxy-Connection: Keep-Alive`: a hop-by-hop header, never forwarded.
    let Some(out) = curl(&["-sS", "-x", &proxy, &stack.url("/echo-headers")]) else {
        return;
    };
    let echo = String::from_utf8_lossy(&out.stdout);
    assert!(echo.contains("curl/"), "{echo}");
    assert!(!echo.to_ascii_lowercase().contains("proxy-"), "{echo}");
}

#[test]
fn server_and_client_rules_refuse_as_for_request() {
    let rules = |url: &str| format!("blacklist :\n - url : \"{url}\"\n");
    let server_config = ConfigFile::server(&rules("/fail$"));
    let upstream = upstream();
    let server = Server::start_raw(&["--config", server_config.path()]);
    let client_config = ConfigFile::client(&server, &rules("/header$"));
    let _client = start_client_raw(&["--config", client_config.path()]);
    wait_relay_ready(&server, &upstream);
    let url = |path: &str| format!("http://{}{path}", upstream.addr());
    for (path, status, side) in [("/fail", 526, "server"), ("/header", 527, "client")] {
        let through_proxy = proxied(&server, "GET", &url(path), &[]);
        let through_request = relay(&server, "GET", &url(path), &[], None);
        let text = format!(
            "Destination is forbidden: wsp {side} blacklist[0] matches GET {}\n",
            url(path)
        );
        assert_eq!(
            (through_proxy.status, through_proxy.text()),
            (status, text),
            "{path}"
        );
        assert_eq!(through_proxy.text(), through_request.text(), "{path}");
    }
    assert_eq!(proxied(&server, "GET", &url("/hello"), &[]).status, 200);
}

#[test]
fn x_proxy_client_pins_the_client_and_is_not_forwarded() {
    let (upstream, server, a, b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let url = format!("http://{}/hello?pinned", upstream.addr());
    const REQUESTS: usize = 6;
    for i in 0..REQUESTS {
        let reply = proxied(&server, "GET", &url, &[("X-PROXY-CLIENT", "b")]);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    poll(READY, || {
        (b.served("/hello?pinned") == REQUESTS).then_some(())
    })
    .unwrap_or_else(|| panic!("b logged {} of {REQUESTS}", b.served("/hello?pinned")));
    assert_eq!(
        a.served("/hello?pinned"),
        0,
        "a served requests pinned to b"
    );
    let unknown = proxied(&server, "GET", &url, &[("X-PROXY-CLIENT", "nobody")]);
    assert_eq!(
        (unknown.status, unknown.text().as_str()),
        (526, "No client \"nobody\" connected\n")
    );
    let echo_url = format!("http://{}/echo-headers", upstream.addr());
    let echo = Echo::parse(&proxied(
        &server,
        "GET",
        &echo_url,
        &[("X-PROXY-CLIENT", "a")],
    ));
    assert_eq!(echo.values("x-proxy-client"), Vec::<&str>::new());
}

#[test]
fn the_head_sent_to_the_client_has_no_proxy_or_wsp_header() {
    let server = Server::start(&["--log-level", "debug"]);
    let mut peer = RawWs::register_with(&server, "peer_1");
    server.proc.wait_log("client peer registered a connection");
    let target = "http://internal.example:8081/x?y=1";
    let addr = server.addr;
    let caller = thread::spawn(move || {
        let headers = [
            ("X-PROXY-DESTINATION", target),
            ("X-PROXY-CLIENT", "peer"),
            ("Proxy-Authorization", "Bearer not-for-the-api"),
            ("Proxy-Connection", "Keep-Alive"),
            ("X-Other", "kept"),
        ];
        Conn::to(addr).send("GET", target, &headers, b"")
    });
    let head = match peer.read_message() {
        Msg::Text(head) => head,
        other => panic!("expected the request head, got {other:?}"),
    };
    assert!(matches!(peer.read_message(), Msg::Binary(b) if b.is_empty()));
    let answer = r#"{"StatusCode":200,"Header":{"Content-Length":["2"]},"ContentLength":2}"#;
    peer.send(TEXT, true, answer.as_bytes())
        .expect("response head");
    peer.send(BINARY, true, b"ok").expect("response body");
    let reply = caller.join().expect("caller");
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    let head: serde_json::Value = serde_json::from_str(&head).expect("a JSON head");
    assert_eq!(head["URL"], target);
    let names: Vec<&str> = head["Header"]
        .as_object()
        .expect("a header map")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        ["Content-Length", "X-Forwarded-For", "X-Other"],
        "{head}"
    );
}

/// A server whose `auth` accepts a token and a user, a client and the test API, ready.
fn auth_stack() -> (TestApi, Server, Proc, ConfigFile) {
    let config = ConfigFile::server(&format!(
        "auth :\n  tokens :\n   - token : {TOKEN}\n  users :\n   - user : {USER}\n     password : {PASSWORD}\n"
    ));
    let server = Server::start_raw(&["--config", config.path()]);
    let client = start_client(&server, &[]);
    let upstream = upstream();
    let url = format!("http://{}/hello", upstream.addr());
    let bearer = format!("Bearer {TOKEN}");
    poll(READY, || {
        let reply = proxied(&server, "GET", &url, &[("Proxy-Authorization", &bearer)]);
        (reply.status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("never ready: {}", server.proc.log.lock()));
    (upstream, server, client, config)
}

#[test]
fn auth_asks_for_proxy_authorization_with_407() {
    let (upstream, server, _client, _config) = auth_stack();
    let url = format!("http://{}/echo-headers", upstream.addr());
    let bearer = format!("Bearer {TOKEN}");
    // `Authorization` is the internal API's business in proxy mode: it does not let in.
    for (headers, text) in [
        (vec![], "Authentication required"),
        (
            vec![("Authorization", bearer.as_str())],
            "Authentication required",
        ),
        (
            vec![("Proxy-Authorization", "Bearer wrong")],
            "Invalid credentials",
        ),
    ] {
        let reply = proxied(&server, "GET", &url, &headers);
        assert_eq!((reply.status, reply.text().trim_end()), (407, text));
        let challenges = reply.header_values("proxy-authenticate");
        assert!(challenges.contains(&"Bearer realm=\"wsp\""), "{reply:?}");
        assert!(challenges
            .iter()
            .any(|c| c.starts_with("Basic realm=\"wsp\"")));
        assert_eq!(reply.header("www-authenticate"), None);
    }
    let headers = [
        ("Proxy-Authorization", bearer.as_str()),
        ("Authorization", "Bearer for-the-api"),
    ];
    let echo = Echo::parse(&proxied(&server, "GET", &url, &headers));
    assert_eq!(echo.values("proxy-authorization"), Vec::<&str>::new());
    assert_eq!(echo.values("authorization"), ["Bearer for-the-api"]);
    // `/request` keeps its 401 and `Authorization`.
    let reply = relay(
        &server,
        "GET",
        &url,
        &[("Proxy-Authorization", &bearer)],
        None,
    );
    assert_eq!(reply.status, 401, "{}", reply.text());
}

#[test]
fn curl_proxy_user_authenticates() {
    let (upstream, server, _client, _config) = auth_stack();
    let proxy = format!("http://{}", server.addr);
    let url = format!("http://{}/hello", upstream.addr());
    let user = format!("{USER}:{PASSWORD}");
    let Some(out) = curl(&["-sS", "-x", &proxy, "--proxy-user", &user, &url]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world",
        "{stderr}"
    );
    let wrong = format!("{USER}:wrong");
    let code = ["-s", "-o", "/dev/null", "-w", "%{http_code}"];
    let Some(out) = curl(&[&code[..], &["-x", &proxy, "--proxy-user", &wrong, &url]].concat())
    else {
        return;
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), "407");
    let basic = base64::engine::general_purpose::STANDARD.encode(&user);
    let basic = format!("Basic {basic}");
    let reply = proxied(&server, "GET", &url, &[("Proxy-Authorization", &basic)]);
    assert_eq!(reply.text(), "hello world");
}

#[test]
fn targets_that_are_no_http_url_are_answered_400() {
    let stack = Stack::start(&[], &[]);
    let hello = stack.url("/hello");
    let userinfo = hello.replacen("http://", "http://user:pw@", 1);
    let cases = [
        ("ftp://files.internal/x", "only http:// and https://"),
        ("garbage", "an absolute URL"),
        ("internal:8081", "only http:// and https://"),
        (userinfo.as_str(), "user:password@"),
    ];
    for (target, why) in cases {
        let reply = proxied(&stack.server, "GET", target, &[]);
        let text = reply.text();
        assert_eq!(reply.status, 400, "{target}: {text}");
        assert!(
            text.starts_with("Bad request target: ") && text.contains(why),
            "{text}"
        );
    }
    // X-PROXY-DESTINATION may repeat the target, not contradict it; it is not forwarded.
    let other = stack.url("/fail");
    let reply = proxied(
        &stack.server,
        "GET",
        &hello,
        &[("X-PROXY-DESTINATION", &other)],
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("another URL"), "{}", reply.text());
    let echo_url = stack.url("/echo-headers");
    let same = [("X-PROXY-DESTINATION", echo_url.as_str())];
    let echo = Echo::parse(&proxied(&stack.server, "GET", &echo_url, &same));
    assert_eq!(echo.values("x-proxy-destination"), Vec::<&str>::new());
    assert_eq!(echo.url, "/echo-headers");
}

#[test]
fn one_connection_carries_many_proxy_requests() {
    let stack = Stack::start(&[], &[]);
    let mut conn = Conn::open(&stack.server);
    for i in 0..5 {
        let hello = conn.send("GET", &stack.url("/hello"), &[], b"");
        assert_eq!(
            (hello.status, hello.text().as_str()),
            (200, "hello world"),
            "{i}"
        );
        let body = format!("body {i}");
        let post = conn.send("POST", &stack.url("/post"), &[], body.as_bytes());
        assert_eq!((post.status, post.text()), (200, body));
        // Origin form on the same connection still reaches the server's own routes.
        let status = conn.send("GET", "/status", &[], b"");
        assert_eq!((status.status, status.text().as_str()), (200, "ok"));
    }
    // A refusal keeps the connection too.
    let refused = conn.send("GET", "ftp://x/", &[], b"");
    assert_eq!(refused.status, 400);
    let hello = conn.send("GET", &stack.url("/hello"), &[], b"");
    assert_eq!(hello.status, 200);
}
