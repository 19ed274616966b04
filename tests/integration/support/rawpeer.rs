//! A WebSocket peer written by hand on a plain `TcpStream`, for what tungstenite refuses
//! to produce: unmasked client frames, masked server frames, lengths of 2^63, garbage
//! after the upgrade, messages that never end. Both opening handshakes are done here too,
//! reading the HTTP head byte by byte so that no frame byte is swallowed by a buffer.
//!
//! Every read has a deadline (a socket read time-out), so a peer that never answers
//! fails the test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use tungstenite::handshake::derive_accept_key;

use super::*;

pub const CONTINUE: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// Largest frame payload this peer reads into memory: it only ever expects heads, small
/// bodies and error texts.
const MAX_READ_PAYLOAD: u64 = 16 << 20;
/// Largest HTTP head of a handshake.
const MAX_HANDSHAKE: usize = 16 * 1024;
/// The mask of every frame we send as a client: fixed, so failures reproduce.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// A fixed `Sec-WebSocket-Key` (RFC 6455's example): nothing here depends on it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// One frame as read: opcode, FIN and the unmasked payload.
#[derive(Debug)]
pub struct Frame {
    pub opcode: u8,
    pub fin: bool,
    pub payload: Vec<u8>,
}

/// A whole message, or how the connection ended instead.
#[derive(Debug)]
pub enum Msg {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame: its status code (if any) and reason.
    Close(Option<u16>, String),
    /// End of stream, or the connection was reset.
    Gone,
}

/// The raw WebSocket. As a client it masks what it sends; as a server it does not.
pub struct RawWs {
    pub stream: TcpStream,
    masking: bool,
}

impl RawWs {
    /// Opens `/register` on `server` with the test secret; the greeting is not sent.
    pub fn register(server: &Server) -> RawWs {
        let mut stream = TcpStream::connect(server.addr).expect("connect to /register");
        stream.set_nodelay(true).expect("nodelay");
        let request = format!(
            "GET /register HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nX-SECRET-KEY: {SECRET}\r\n\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).expect("send upgrade");
        stream.set_read_timeout(Some(READY)).expect("time-out");
        let head = read_http_head(&mut stream).expect("read the 101");
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        RawWs {
            stream,
            masking: true,
        }
    }

    /// Opens `/register` and sends `greeting` as one masked text frame.
    pub fn register_with(server: &Server, greeting: &str) -> RawWs {
        let mut ws = RawWs::register(server);
        ws.send(TEXT, true, greeting.as_bytes()).expect("greeting");
        ws
    }

    /// Accepts the next connection that completes the opening handshake with the test
    /// secret and sends a greeting, within [`READY`]. Returns the peer and its greeting.
    /// (A connection whose dialer gave up while waiting in the backlog is skipped.)
    pub fn accept(listener: &TcpListener) -> (RawWs, String) {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let accepted = poll(READY, || {
            let (stream, _) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("accept: {e}"),
            };
            RawWs::handshake_as_server(stream).ok()
        });
        accepted.expect("the client never (re)connected")
    }

    fn handshake_as_server(mut stream: TcpStream) -> io::Result<(RawWs, String)> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READY))?;
        let head = read_http_head(&mut stream)?;
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        assert_eq!(header("X-SECRET-KEY").as_deref(), Some(SECRET), "{head}");
        let key = header("Sec-WebSocket-Key").expect("a Sec-WebSocket-Key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        stream.write_all(response.as_bytes())?;
        let mut ws = RawWs {
            stream,
            masking: false,
        };
        match ws.read_message() {
            Msg::Text(greeting) => Ok((ws, greeting)),
            other => Err(io::Error::other(format!("no greeting: {other:?}"))),
        }
    }

    /// A second handle on the same connection, for a writer or reader thread.
    pub fn try_clone(&self) -> RawWs {
        RawWs {
            stream: self.stream.try_clone().expect("clone socket"),
            masking: self.masking,
        }
    }

    /// Sends one frame, masked when we are the client.
    pub fn send(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> io::Result<()> {
        let frame = encode_frame(opcode, fin, payload, self.mask());
        self.stream.write_all(&frame)
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The mask this end puts on its frames: `Some` as a client, `None` as a server.
    pub fn mask(&self) -> Option<[u8; 4]> {
        self.masking.then_some(MASK)
    }

    /// Reads one frame; `Ok(None)` at end of stream.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 2];
        match self.stream.read(&mut head[..1])? {
            0 => return Ok(None),
            _ => self.stream.read_exact(&mut head[1..])?,
        }
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mask = if head[1] & 0x80 != 0 {
            let mut m = [0u8; 4];
            self.stream.read_exact(&mut m)?;
            Some(m)
        } else {
            None
        };
        assert!(
            len <= MAX_READ_PAYLOAD,
            "frame of {len} bytes from our binary"
        );
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload)?;
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= m[i % 4]);
        }
        Ok(Some(Frame {
            opcode: head[0] & 0x0f,
            fin: head[0] & 0x80 != 0,
            payload,
        }))
    }

    /// Reads the next whole message, skipping pings and pongs (answering nothing). A
    /// socket error (reset) counts as the connection gone; a read time-out fails the test.
    pub fn read_message(&mut self) -> Msg {
        self.next_message()
            .unwrap_or_else(|e| panic!("no whole message within the read time-out: {e}"))
    }

    /// [`RawWs::read_message`], with a read time-out as an error.
    fn next_message(&mut self) -> io::Result<Msg> {
        let mut opcode = None;
        let mut bytes = Vec::new();
        loop {
            let frame = match self.read_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(Msg::Gone),
                Err(e) if is_timeout(&e) => return Err(e),
                Err(_) => return Ok(Msg::Gone),
            };
            match frame.opcode {
                PING | PONG => continue,
                CLOSE => return Ok(close_message(&frame.payload)),
                op => {
                    opcode.get_or_insert(op);
                    bytes.extend_from_slice(&frame.payload);
                }
            }
            if frame.fin {
                return Ok(match opcode {
                    Some(TEXT) => Msg::Text(String::from_utf8_lossy(&bytes).into_owned()),
                    _ => Msg::Binary(bytes),
                });
            }
        }
    }

    /// Reads messages until the peer ends the connection (close frame, end of stream or
    /// reset) and returns them with the ending; `None` if it is still open after `within`.
    pub fn read_until_end(&mut self, within: Duration) -> Option<(Vec<Msg>, Msg)> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).expect("time-out");
            match self.next_message().ok()? {
                message @ (Msg::Text(_) | Msg::Binary(_)) => messages.push(message),
                end => return Some((messages, end)),
            }
        }
    }
}

/// A read that timed out (the error kind depends on the platform).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn close_message(payload: &[u8]) -> Msg {
    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned();
    Msg::Close(code, reason)
}

/// Reads an HTTP head up to its blank line, one byte at a time.
pub fn read_http_head(stream: &mut impl Read) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
        if head.len() > MAX_HANDSHAKE {
            return Err(io::Error::other("handshake head too long"));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A frame header announcing `len` payload bytes (any value, even illegal ones).
pub fn frame_header(opcode: u8, fin: bool, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
    out
}

/// A whole frame, its payload masked with `mask` when given.
pub fn encode_frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = frame_header(opcode, fin, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        out[start..]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= m[i % 4]);
    }
    out
}

/// How many threads of process `pid` carry the name `name`.
pub fn named_threads(pid: u32, name: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// What a caller of `/request` got: a whole reply, or an error (connection cut, body
/// cut short) with the status when one arrived.
pub type Answer = Result<Reply, String>;

/// GETs `destination` through the server's `request_url`, the body read to its end; any
/// failure is an `Err`.
pub fn try_relay(request_url: &str, destination: &str) -> Answer {
    caller()
        .get(request_url)
        .header("X-PROXY-DESTINATION", destination)
        .call()
        .map_err(|e| format!("no answer: {e}"))
        .and_then(read_answer)
}

/// Waits until process `pid` has no thread named `name` left (a handler that ended) and at
/// most `baseline` threads in all (tiny_http's spare threads end after 5 s idle).
pub fn assert_threads_settle(pid: u32, name: &str, max_named: usize, baseline: u64) {
    let settled = poll(Duration::from_secs(40), || {
        let named = named_threads(pid, name);
        let all = status_field(pid, "Threads:");
        (named <= max_named && all <= baseline).then_some(())
    });
    assert!(
        settled.is_some(),
        "threads never settled: {} named {name:?} (want <= {max_named}), {} in all \
         (baseline {baseline})",
        named_threads(pid, name),
        status_field(pid, "Threads:")
    );
}

/// The server's thread count at rest: once it has answered a request (tiny_http starts
/// its thread pool and our clean-up thread only as it begins serving) and no handler
/// thread is left.
pub fn steady_threads(server: &Server) -> u64 {
    let status = get(&format!("http://{}/status", server.addr), &[]);
    assert_eq!(status.status, 200, "/status: {status:?}");
    let pid = server.proc.pid();
    poll(READY, || (named_threads(pid, "request") == 0).then_some(()))
        .expect("a handler thread of /status never ended");
    status_field(pid, "Threads:")
}

/// A server whose only client is a hand-written peer, for feeding it bad answers.
pub struct LonePeer {
    pub server: Server,
    pub peer: RawWs,
    /// The server's thread count before the peer registered.
    pub baseline: u64,
}

/// The id the lone peer registers with.
pub const LONE_ID: &str = "hostile-peer";

impl LonePeer {
    /// Starts a server (debug log, to see the registration) and registers the peer.
    pub fn start() -> LonePeer {
        let server = Server::start(&["--log-level", "debug"]);
        let baseline = steady_threads(&server);
        let peer = RawWs::register_with(&server, &format!("{LONE_ID}_1"));
        server
            .proc
            .wait_log(&format!("client {LONE_ID} registered a connection"));
        LonePeer {
            server,
            peer,
            baseline,
        }
    }

    /// Sends a GET through the server on a thread of its own, and returns once the peer
    /// has read messages 1 and 2 of it: the server now waits for the peer's answer.
    pub fn request(&mut self) -> Receiver<Answer> {
        let (tx, rx) = bounded(1);
        let url = self.server.request_url();
        thread::spawn(move || {
            let _ = tx.send(try_relay(&url, "http://internal.example/hostile"));
        });
        match self.peer.read_message() {
            Msg::Text(head) => assert!(head.contains(r#""Method":"GET""#), "{head}"),
            other => panic!("expected the request head, got {other:?}"),
        }
        match self.peer.read_message() {
            Msg::Binary(body) => assert!(body.is_empty(), "GET with a body"),
            other => panic!("expected the request body, got {other:?}"),
        }
        rx
    }

    /// Asserts that the server ended the peer's connection (close frame, end of stream or
    /// reset) within [`READY`].
    pub fn assert_dropped(&mut self) {
        let ended = self.peer.read_until_end(READY);
        let (messages, end) = ended.expect("the server kept a connection that broke the protocol");
        assert!(messages.is_empty(), "unexpected messages: {messages:?}");
        eprintln!("server ended the peer's connection with {end:?}");
    }

    /// Asserts that the server's handler threads ended, that its thread count went back
    /// to where it was before the peer came, and that it still relays for a real client.
    pub fn assert_recovers(self) {
        let pid = self.server.proc.pid();
        drop(self.peer);
        assert_threads_settle(pid, "request", 0, self.baseline);
        let upstream = upstream();
        let _client = start_client(&self.server, &["--pool-idle-size", "1"]);
        wait_relay_ready(&self.server, &upstream);
    }
}

/// The caller's view of the answer: whole, or where it broke.
fn read_answer(response: ureq::http::Response<ureq::Body>) -> Answer {
    try_into_reply(response)
}

/// Waits up to [`READY`] for the caller's answer.
pub fn answer_within(rx: &Receiver<Answer>) -> Answer {
    rx.recv_timeout(READY)
        .unwrap_or_else(|_| panic!("the caller got no answer within {READY:?}"))
}

/// Asserts wsp's 526 relay failure whose text names `problem`.
pub fn assert_526_naming(answer: &Answer, problem: &str) {
    let reply = answer
        .as_ref()
        .unwrap_or_else(|e| panic!("expected 526, got {e}"));
    let text = reply.text();
    assert_eq!(reply.status, 526, "expected 526, got {reply:?}");
    assert!(text.starts_with("Unable to relay request"), "{text:?}");
    assert!(text.contains(problem), "{text:?} does not name {problem:?}");
}

/// A hand-written server that a real `wsp_client` registers to, for feeding it bad
/// requests; the client performs good ones against the test API.
pub struct HostileServer {
    pub listener: TcpListener,
    pub client: Proc,
    pub upstream: TestApi,
    /// The client's thread count with its first connection up and idle.
    pub baseline: u64,
}

impl HostileServer {
    /// Starts a client with one idle connection and accepts that connection.
    pub fn start() -> (HostileServer, RawWs) {
        let upstream = upstream();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = start_client_for(&listener);
        let (ws, greeting) = RawWs::accept(&listener);
        assert!(greeting.ends_with("_1"), "{greeting}");
        let pid = client.pid();
        poll(READY, || {
            (named_threads(pid, "connection") == 1).then_some(())
        })
        .expect("the client's connection thread never started");
        let baseline = status_field(pid, "Threads:");
        let server = HostileServer {
            listener,
            client,
            upstream,
            baseline,
        };
        (server, ws)
    }

    /// A request head for the test API, as the server would send it.
    pub fn head(&self, method: &str, path: &str, content_length: i64) -> String {
        let url = format!("http://{}{path}", self.upstream.addr());
        format!(
            r#"{{"Method":"{method}","URL":"{url}","Header":{{"X-Proxy-Destination":["{url}"]}},"ContentLength":{content_length}}}"#
        )
    }

    /// Starts a client and feeds `frames` to its first connection (on a writer thread:
    /// some are written until the client hangs up). Asserts that the client ends that
    /// connection within [`READY`] and returns what it sent before: nothing, or a 527
    /// head and its error text. With `hang_up`, we then close the TCP connection, as
    /// RFC 6455 has a server do once the closing handshake is over; otherwise it stays
    /// open for as long as the returned peer lives.
    pub fn feed(
        frames: impl FnOnce(&HostileServer, &mut RawWs) + Send,
        hang_up: bool,
    ) -> (HostileServer, Option<(String, String)>, RawWs) {
        let (server, mut ws) = HostileServer::start();
        let mut writer = ws.try_clone();
        let answered = thread::scope(|scope| {
            let sending = scope.spawn(|| frames(&server, &mut writer));
            let answered = HostileServer::expect_end(&mut ws);
            sending.join().expect("writer");
            answered
        });
        if hang_up {
            let _ = ws.stream.shutdown(std::net::Shutdown::Both);
        }
        (server, answered, ws)
    }

    fn expect_end(ws: &mut RawWs) -> Option<(String, String)> {
        let (messages, end) = ws
            .read_until_end(READY)
            .expect("the client kept a connection that broke the protocol");
        eprintln!("client ended the connection with {end:?} after {messages:?}");
        match messages.as_slice() {
            [] => None,
            [Msg::Text(head), Msg::Binary(body)] => {
                Some((head.clone(), String::from_utf8_lossy(body).into_owned()))
            }
            other => panic!("unexpected messages before the end: {other:?}"),
        }
    }

    /// Asserts that the client process is alive, registered again, ended the thread of the
    /// broken connection, and relays a good request over its new connection.
    pub fn assert_recovers(mut self) {
        assert!(
            self.client.child.try_wait().expect("try_wait").is_none(),
            "the client exited; log:\n{}",
            self.client.log.lock()
        );
        let (mut ws, _) = RawWs::accept(&self.listener);
        let pid = self.client.pid();
        assert_threads_settle(pid, "connection", 1, self.baseline);
        assert_relays_hello(&self, &mut ws);
    }
}

/// Asserts that a 527 answer, if there is one, names `problem`; that there is one when
/// `required`.
pub fn assert_527_naming(answered: &Option<(String, String)>, problem: &str, required: bool) {
    match answered {
        Some((head, text)) => {
            assert!(head.contains(r#""StatusCode":527"#), "{head}");
            assert!(
                text.contains(problem),
                "527 text {text:?} does not name {problem:?}"
            );
        }
        None => assert!(!required, "the client closed without answering 527"),
    }
}

/// Sends a good GET `/hello` over `ws` and checks the client's answer.
pub fn assert_relays_hello(server: &HostileServer, ws: &mut RawWs) {
    ws.send(TEXT, true, server.head("GET", "/hello", 0).as_bytes())
        .expect("request head");
    ws.send(BINARY, true, b"").expect("request body");
    match ws.read_message() {
        Msg::Text(head) => assert!(head.contains(r#""StatusCode":200"#), "{head}"),
        other => panic!("expected a response head, got {other:?}"),
    }
    match ws.read_message() {
        Msg::Binary(body) => assert_eq!(body, b"hello world"),
        other => panic!("expected a response body, got {other:?}"),
    }
}
