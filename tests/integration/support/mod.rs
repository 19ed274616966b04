//! What every integration test needs: the real `wsp_server` and `wsp_client` binaries as
//! child processes on `127.0.0.1`, ephemeral ports, the test API in-process, a plain HTTP
//! caller, and polling with a deadline instead of sleeps.

#![allow(dead_code)]

pub mod chromium;
pub mod rawpeer;
#[path = "../../../examples/test_api/routes.rs"]
pub mod routes;
pub mod tls;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use routes::TestApi;

/// How long anything in a test may take to become ready.
pub const READY: Duration = Duration::from_secs(20);

/// The secret key tests register with.
pub const SECRET: &str = "test-secret";

/// Polls `check` every 20 ms until it returns `Some` or `within` has passed.
pub fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped, with its stderr collected.
pub struct Proc {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `binary` with `args`, collecting its stderr.
    pub fn spawn(binary: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> Proc {
        let mut command = Command::new(binary);
        command.args(args);
        Proc::spawn_command(command)
    }

    /// Starts `command` (environment and all), collecting its stderr.
    pub fn spawn_command(mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Proc { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log contains `needle`, returning the line.
    pub fn wait_log(&self, needle: &str) -> String {
        poll(READY, || {
            let log = self.log.lock();
            log.lines().find(|l| l.contains(needle)).map(str::to_string)
        })
        .unwrap_or_else(|| panic!("{needle:?} never logged; log:\n{}", self.log.lock()))
    }

    /// How many requests this client (started with `--log-level debug`) answered with 200
    /// from the upstream's `path`: it logs `GET <url>: <status>` for each.
    pub fn served(&self, path: &str) -> usize {
        self.log
            .lock()
            .lines()
            .filter(|l| l.contains("GET http://") && l.contains(path) && l.ends_with(": 200"))
            .count()
    }

    /// Waits for the process to exit by itself, returning its status code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        poll(within, || self.child.try_wait().ok().flatten()).and_then(|s| s.code())
    }

    /// Peak resident memory in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/<pid>/status`, in its unit (kB for memory).
pub fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
}

/// A port that is free now and that nothing else in these tests can be given meanwhile,
/// for a server that must restart on the same address: one below the kernel's ephemeral
/// range (`ip_local_port_range`), from which every `bind(0)` and every outgoing connection
/// of the other tests takes its port. A port of that range, freed by a server killed,
/// could be taken by any connection before the restart. Each call in this process gets
/// another port, so tests running at once never pick the same one.
pub fn restartable_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let low: u16 = range
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    let (first, count) = (low.saturating_sub(8192).max(1024), 8192.min(low - 1024));
    // Another test binary started at the same time starts elsewhere.
    let offset = (std::process::id() % u32::from(count)) as u16;
    for _ in 0..count {
        let n = NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(offset) % count;
        let port = first + n;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {first}..{}", first + count)
}

/// A running `wsp_server` and its address.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `wsp_server` on an ephemeral port with the test secret and `extra` flags.
    /// A `--port` in `extra` replaces the default `0`.
    pub fn start(extra: &[&str]) -> Server {
        let mut args = vec!["--secret-key", SECRET];
        if !extra.contains(&"--port") {
            args.extend(["--port", "0"]);
        }
        args.extend_from_slice(extra);
        Server::start_raw(&args)
    }

    /// Starts `wsp_server` with exactly these flags (the host defaults to 127.0.0.1).
    pub fn start_raw(args: &[&str]) -> Server {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Server::from_proc(Proc::spawn(env!("CARGO_BIN_EXE_wsp_server"), &args))
    }

    /// Waits until a started `wsp_server` listens, and reads its address from its log
    /// (`listening on http://...`, or `https://` with a certificate).
    pub fn from_proc(proc: Proc) -> Server {
        let line = proc.wait_log("listening on ");
        let addr = line
            .rsplit("://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { proc, addr }
    }

    /// The `/register` URL clients dial.
    pub fn register_url(&self) -> String {
        format!("ws://{}/register", self.addr)
    }

    /// The `/request` URL callers use.
    pub fn request_url(&self) -> String {
        format!("http://{}/request", self.addr)
    }
}

/// Starts `wsp_client` registered to `server` with the test secret and `extra` flags.
pub fn start_client(server: &Server, extra: &[&str]) -> Proc {
    let target = server.register_url();
    let mut args = vec!["--target", &target, "--secret-key", SECRET];
    args.extend_from_slice(extra);
    start_client_raw(&args)
}

/// Starts `wsp_client` registering one connection to whoever listens on `listener` (a
/// test playing the server).
pub fn start_client_for(listener: &TcpListener) -> Proc {
    let target = format!("ws://{}/register", listener.local_addr().expect("address"));
    start_client_raw(&[
        "--target",
        &target,
        "--secret-key",
        SECRET,
        "--pool-idle-size",
        "1",
    ])
}

/// Starts `wsp_client` with exactly these flags.
pub fn start_client_raw(args: &[&str]) -> Proc {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Proc::spawn(env!("CARGO_BIN_EXE_wsp_client"), &args)
}

/// GET /hello of `upstream` relayed through `server` answers 200 "hello world".
pub fn assert_hello(server: &Server, upstream: &TestApi) {
    let destination = format!("http://{}/hello", upstream.addr());
    let reply = relay(server, "GET", &destination, &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
}

/// Starts the test API in-process on an ephemeral port.
/// A test API, a server started with `server_flags` and two clients `a` and `b` at debug
/// level with `client_flags`, both with their pools full before it returns (each logs
/// `connected to <target>: N connections` once its `poolidlesize` connections are up).
pub fn two_clients(server_flags: &[&str], client_flags: &[&str]) -> (TestApi, Server, Proc, Proc) {
    let upstream = upstream();
    let server = Server::start(server_flags);
    let start = |id: &str| {
        let mut flags = vec!["--id", id, "--log-level", "debug"];
        flags.extend_from_slice(client_flags);
        start_client(&server, &flags)
    };
    let (a, b) = (start("a"), start("b"));
    wait_relay_ready(&server, &upstream);
    for client in [&a, &b] {
        client.wait_log("connected to ws://");
    }
    (upstream, server, a, b)
}

pub fn upstream() -> TestApi {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind test API");
    TestApi::start(listener).expect("start test API")
}

/// A caller's HTTP client: no redirects, no decompression, statuses as they are.
pub fn caller() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        // Generous: a 1 GiB body through debug builds on a loaded machine takes a while.
        .timeout_global(Some(Duration::from_secs(240)))
        .build()
        .into()
}

/// A finished response: status, headers (lower-case names) and whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// All values of a header.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }
}

/// Sends `method` to the server's `/request` with `destination`, extra headers and a body.
pub fn relay(
    server: &Server,
    method: &str,
    destination: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(server.request_url())
        .header("X-PROXY-DESTINATION", destination);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = match body {
        Some(body) => caller().run(builder.body(body.to_vec()).expect("request")),
        None => caller().run(builder.body(()).expect("request")),
    }
    .unwrap_or_else(|e| panic!("{method} {destination} through the proxy: {e}"));
    into_reply(response)
}

/// GETs `url` directly (status endpoints, or the upstream itself).
pub fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = ureq::http::Request::builder().uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = caller()
        .run(builder.body(()).expect("request"))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    into_reply(response)
}

fn into_reply(response: ureq::http::Response<ureq::Body>) -> Reply {
    try_into_reply(response).unwrap_or_else(|e| panic!("read response body: {e}"))
}

/// The whole response, or where its body broke off.
pub fn try_into_reply(response: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let mut bytes = Vec::new();
    body.into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("status {status}, body cut after {} bytes: {e}", bytes.len()))?;
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(Reply {
        status,
        headers,
        body: bytes,
    })
}

/// Reads one raw HTTP/1.1 answer framed by `Content-Length` (header names lower-cased),
/// for tests that write their requests on a socket themselves.
pub fn read_reply(reader: &mut impl BufRead) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {headers:?}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls until a GET of the upstream's `/hello` through the proxy answers 200: the client
/// has registered at least one connection.
pub fn wait_relay_ready(server: &Server, upstream: &TestApi) {
    let destination = format!("http://{}/hello", upstream.addr());
    poll(READY, || {
        let answer = caller()
            .get(server.request_url())
            .header("X-PROXY-DESTINATION", &destination)
            .call();
        (answer.ok()?.status() == 200).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "relay never became ready; server log:\n{}",
            server.proc.log.lock()
        )
    });
}

/// A server, one registered client and the test API, ready to relay.
pub struct Stack {
    pub upstream: TestApi,
    pub server: Server,
    pub client: Proc,
}

impl Stack {
    pub fn start(server_flags: &[&str], client_flags: &[&str]) -> Stack {
        let upstream = upstream();
        let server = Server::start(server_flags);
        let client = start_client(&server, client_flags);
        wait_relay_ready(&server, &upstream);
        Stack {
            upstream,
            server,
            client,
        }
    }

    /// `http://<upstream>/<path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.upstream.addr(), path)
    }

    pub fn relay(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        relay(&self.server, method, &self.url(path), headers, body)
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Reads `reader` to its end, checking every byte against the `/bytes` pattern without
/// holding the body; returns the number of bytes read.
pub fn read_pattern(mut reader: impl Read) -> u64 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut position = 0u64;
    loop {
        let n = reader.read(&mut buf).expect("read body");
        if n == 0 {
            return position;
        }
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = position + i as u64;
            assert_eq!(*byte, routes::pattern_byte(at), "byte {at} of the body");
        }
        position += n as u64;
    }
}

/// The FNV-1a hash, as `/upload-count` reports it, of the first `len` pattern bytes.
pub fn pattern_fnv(len: u64) -> String {
    let mut fnv = routes::Fnv1a::default();
    let mut reader = routes::PatternReader::new(len);
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = reader.read(&mut buf) {
        fnv.update(&buf[..n]);
    }
    format!("{:016x}", fnv.finish())
}

/// The parsed answer of `/echo-headers`: method, url and the headers in received order.
pub struct Echo {
    pub method: String,
    pub url: String,
    /// Names lower-cased, in received order.
    pub headers: Vec<(String, String)>,
}

impl Echo {
    pub fn parse(reply: &Reply) -> Echo {
        assert_eq!(reply.status, 200, "echo-headers: {}", reply.text());
        let json: serde_json::Value =
            serde_json::from_slice(&reply.body).expect("echo-headers answers JSON");
        let headers = json["headers"]
            .as_array()
            .expect("a headers array")
            .iter()
            .map(|pair| {
                let name = pair[0].as_str().expect("a header name");
                let value = pair[1].as_str().expect("a header value");
                (name.to_ascii_lowercase(), value.to_string())
            })
            .collect();
        Echo {
            method: json["method"].as_str().expect("a method").to_string(),
            url: json["url"].as_str().expect("a url").to_string(),
            headers,
        }
    }

    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Registers one WebSocket to `server` the way the Go client does (tungstenite, the test
/// secret), and sends `greeting`.
pub fn register_peer(
    server: &Server,
    greeting: &str,
) -> tungstenite::WebSocket<std::net::TcpStream> {
    let uri = server.register_url().parse().expect("register URI");
    let request = tungstenite::ClientRequestBuilder::new(uri).with_header("X-SECRET-KEY", SECRET);
    let stream = std::net::TcpStream::connect(server.addr).expect("connect");
    let (mut ws, _) = tungstenite::client(request, stream).expect("handshake");
    ws.send(tungstenite::Message::Text(greeting.into()))
        .expect("greeting");
    // Registered once the server lists the id (greetings are `<id>_<size>`): a request
    // sent before that would find no connection.
    let id = greeting.rsplit_once('_').map_or(greeting, |(id, _)| id);
    let listed = format!("\"id\": \"{id}\"");
    let status = format!("http://{}/status.json", server.addr);
    poll(Duration::from_secs(10), || {
        get(&status, &[]).text().contains(&listed).then_some(())
    })
    .unwrap_or_else(|| panic!("{id} not registered within 10 s"));
    ws
}

/// Sends signal `name` (`TERM`, `STOP`, `CONT`...) to `pid`, through the shell's `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{name} {pid}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A TCP echo service on 127.0.0.1: every connection gets back what it sends at once
/// (no Nagle wait), and is closed once the peer has closed its side and everything was
/// echoed. Returns its address.
pub fn echo_service() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            let _ = socket.set_nodelay(true);
            std::thread::spawn(move || {
                let mut back = socket.try_clone().expect("clone");
                let _ = std::io::copy(&mut socket, &mut back);
                let _ = back.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// The value of the `/metrics` sample named exactly `series` (name and labels).
pub fn metric(server: &Server, series: &str) -> Option<f64> {
    let text = get(&format!("http://{}/metrics", server.addr), &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The idle count `/status.json` shows for the first client listed (0 with none).
pub fn idle_connections(server: &Server) -> u64 {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    let status: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON status");
    status["clients"][0]["idle"].as_u64().unwrap_or(0)
}

/// A Go-style client (the raw peer: no `X-WSP-Streams` on its `/register`) with one
/// connection, idle in `server`'s pool once this returns.
pub fn go_style_client(server: &Server) -> rawpeer::RawWs {
    let peer = rawpeer::RawWs::register_with(server, "gopeer_1");
    let ready = poll(Duration::from_secs(10), || {
        (idle_connections(server) == 1).then_some(())
    });
    assert!(ready.is_some(), "the raw client never showed as idle");
    peer
}

/// How many file descriptors `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or_else(|e| panic!("no fds for pid {pid}: {e}"))
}

/// How many threads `pid` runs.
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

/// CPU time `pid` used so far (user + system), in clock ticks (usually 1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    match (field(11), field(12)) {
        (Some(user), Some(system)) => user + system,
        _ => panic!("unreadable /proc/{pid}/stat: {stat:?}"),
    }
}
