//! The test API: the "internal API" that sits behind the wsp client in `make demo`, in the
//! integration tests and in the benchmark. Every endpoint exists to make one property of the
//! proxy observable from the caller's side: exact bytes (`/hello`, `/bytes`), headers in both
//! directions (`/header`, `/echo-headers`), statuses that a naive HTTP client would act on
//! (`/redirect`, `/gzip`, `/status/<code>`), slowness (`/sleep`) and big bodies in both
//! directions without holding them in memory (`/bytes`, `/post`, `/upload-count`).
//!
//! It depends on nothing of the `wsp` crate, so that it tests the proxy from the outside: the
//! `test_api` example wraps it in a CLI, and the integration tests include this very file with
//! `#[path = "../../examples/test_api/routes.rs"] mod routes;` and run a [`TestApi`] in-process
//! on `127.0.0.1:0`. Each request is answered on the thread of the connection it came on (the
//! vendored tiny_http's `from_listener_with_handler`): no hand-off between threads, so the
//! upstream costs little next to the proxy the benchmark measures, and a `/sleep` holds only
//! its own connection.
//!
//! `/post` reads the whole request body before it answers (into memory up to
//! [`SPOOL_MEMORY_LIMIT`], beyond that into an unlinked temporary file) and then streams it back.
//! It does not echo while still reading: tiny_http ties the body reader to the request that
//! `respond` consumes, and a full-duplex echo would deadlock any client that sends its whole
//! body before reading the answer (ureq, Go's net/http) as soon as the body outgrows the socket
//! buffers.

// Each includer uses a different part of this file: `main.rs` only `serve_forever`, a test
// binary perhaps only `TestApi` and the helpers, so unused items are expected, not dead.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use tiny_http::{HTTPVersion, Header, Method, Request, Response, ResponseBox, Server, StatusCode};

/// Size of the buffers in which bodies are generated and read: `/bytes` produces at most this
/// many bytes per `read`.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// `/bytes` writes its body in pieces of this size: on loopback, 1 MiB writes move data
/// about three times as fast as 64 KiB ones, and the upstream must not be what limits the
/// benchmark's download.
pub const WRITE_SIZE: usize = 1024 * 1024;
/// Largest `n` accepted by `/bytes?n=` (1 TiB): far beyond any test, small enough for `usize`.
pub const MAX_BYTES: u64 = 1 << 40;
/// Longest wait of `/sleep?ms=`; larger values are capped to it.
pub const MAX_SLEEP_MS: u64 = 60_000;
/// `/post` keeps a body up to this size in memory; a larger one goes to a temporary file.
pub const SPOOL_MEMORY_LIMIT: usize = 1024 * 1024;
/// The period of the `/bytes` pattern; prime, so it never lines up with a chunk or frame size.
pub const PATTERN_PERIOD: u64 = 251;
/// `/gzip` serves this text repeated [`GZIP_REPEAT`] times, gzip-compressed.
pub const GZIP_TEXT: &str = "hello gzip world";
/// How many times `/gzip` repeats [`GZIP_TEXT`] before compressing it.
pub const GZIP_REPEAT: usize = 100;

/// A running test API. Dropping it (or [`TestApi::stop`]) stops accepting connections;
/// requests already being handled finish on their own threads.
///
/// tiny_http cannot close connections it already accepted: a keep-alive connection opened
/// before the stop stays open and a request sent on it afterwards is never answered. A test
/// that needs an unreachable upstream should use an address nobody listens on.
pub struct TestApi {
    /// Dropping it closes the listener.
    #[allow(dead_code)]
    server: Server,
    addr: SocketAddr,
}

impl TestApi {
    /// Serves on `listener` (bound by the caller, e.g. to `127.0.0.1:0`) from background
    /// threads until the returned value is dropped.
    ///
    /// # Errors
    /// When the listener's address cannot be read or tiny_http cannot be set up on it.
    pub fn start(listener: TcpListener) -> io::Result<TestApi> {
        let addr = listener.local_addr()?;
        let server = start_server(listener)?;
        Ok(TestApi { server, addr })
    }

    /// The address it listens on, with the real port when it was bound to port 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving; the same as dropping it, but reads better in a test.
    pub fn stop(self) {}
}

/// Serves on `listener` forever (the requests are handled on tiny_http's threads).
///
/// # Errors
/// When tiny_http cannot be set up on the listener, or its accept loop fails.
pub fn serve_forever(listener: TcpListener) -> io::Result<()> {
    let server = start_server(listener)?;
    // With a handler, `recv` only ever returns accept errors.
    loop {
        server.recv()?;
    }
}

/// A tiny_http server that answers every request on its connection's thread.
fn start_server(listener: TcpListener) -> io::Result<Server> {
    let handler = Arc::new(|request: Request| {
        let what = format!("{} {}", request.method(), request.url());
        if let Err(err) = handle_request(request) {
            log::warn!("test API: answering {what}: {err}");
        }
    });
    Server::from_listener_with_handler(listener, None, handler, None).map_err(io::Error::other)
}

/// Answers one request. The two body-consuming endpoints own the request; every other one
/// first drains the body so that the connection can carry the next request.
fn handle_request(mut request: Request) -> io::Result<()> {
    log::debug!("test API: {} {}", request.method(), request.url());
    let (path, query) = match request.url().split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (request.url().to_owned(), String::new()),
    };
    match path.as_str() {
        "/post" => return echo_body(request),
        "/upload-count" => return count_body(request),
        _ => {}
    }
    drain(request.as_reader())?;
    if path == "/bytes" {
        if let Some(length) = raw_bytes_length(&request, &query) {
            return send_bytes(request, length);
        }
    }
    let response = match path.as_str() {
        "/hello" => text(200, "hello world"),
        "/header" => text(200, "ok").with_header(header("hello", "world")),
        "/fail" => text(500, "fail"),
        "/redirect" => text(302, "redirect").with_header(header("Location", "/hello")),
        "/sleep" => sleep(&query),
        "/bytes" => bytes(&query, request.http_version()),
        "/gzip" => gzip(),
        "/echo-headers" => echo_headers(&request),
        _ => match path.strip_prefix("/status/") {
            Some(code) => status(code),
            None => text(404, "not found"),
        },
    };
    request.respond(response.with_chunked_threshold(usize::MAX))
}

/// A `text/plain` response. Every response goes out with `with_chunked_threshold(usize::MAX)`
/// in the end, because tiny_http would otherwise send any body of 32 KiB or more chunked even
/// when its length is known.
fn text(status: u16, body: &str) -> ResponseBox {
    let body = body.as_bytes().to_vec();
    let length = body.len();
    let headers = vec![header("Content-Type", "text/plain")];
    Response::new(
        StatusCode(status),
        headers,
        Cursor::new(body),
        Some(length),
        None,
    )
    .boxed()
}

/// A header from constant parts.
///
/// # Panics
/// When `name` or `value` is not a valid header part; only called with literals.
fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid literal header")
}

/// The value of `key` in a query string; no percent-decoding, the parameters are numbers.
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

/// `/status/<code>`: any final status a client can read (200..=999). Statuses that carry no
/// body (204, 304) get an empty one, so that tiny_http announces none.
fn status(code: &str) -> ResponseBox {
    match code.parse::<u16>() {
        Ok(code @ (204 | 304)) => text(code, ""),
        Ok(code @ 200..=999) => text(code, &format!("status {code}")),
        _ => text(400, "bad status code: use 200..=999"),
    }
}

/// `/sleep?ms=N`: holds only this request's thread.
fn sleep(query: &str) -> ResponseBox {
    let Some(ms) = query_param(query, "ms").and_then(|ms| ms.parse::<u64>().ok()) else {
        return text(400, "bad or missing ms");
    };
    let ms = ms.min(MAX_SLEEP_MS);
    thread::sleep(Duration::from_millis(ms));
    text(200, &format!("slept {ms}"))
}

/// Reads `reader` to its end and throws the bytes away. The first read goes into a small stack
/// buffer, so a small body costs no allocation; a body that fills it continues in
/// [`CHUNK_SIZE`] reads (`io::copy` would read in 8 KiB pieces, which would make the upstream
/// the bottleneck of the benchmark's bulk upload).
fn drain(reader: &mut dyn Read) -> io::Result<()> {
    let mut small = [0u8; 1024];
    if read_some(reader, &mut small)? < small.len() {
        return Ok(());
    }
    let mut big = vec![0u8; CHUNK_SIZE];
    while read_some(reader, &mut big)? > 0 {}
    Ok(())
}

/// One `read`, retried when interrupted.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The length of a `/bytes` answer that [`send_bytes`] can write itself: a GET asking for a
/// valid `n` and no chunking. Everything else goes through [`bytes`] and tiny_http.
fn raw_bytes_length(request: &Request, query: &str) -> Option<u64> {
    let n = query_param(query, "n")?.parse::<u64>().ok()?;
    let plain = *request.method() == Method::Get && query_param(query, "chunked") != Some("1");
    (plain && n <= MAX_BYTES).then_some(n)
}

/// `/bytes?n=N` for a GET: the head, then the pattern written in [`CHUNK_SIZE`] pieces straight
/// from the pattern table. tiny_http's `respond` would copy the body through an 8 KiB buffer
/// into 8 KiB writes, capping the benchmark's download rows at the upstream instead of the
/// proxy.
fn send_bytes(request: Request, length: u64) -> io::Result<()> {
    let close = wants_close(&request);
    let mut out = request.into_writer();
    let connection = if close { "Connection: close\r\n" } else { "" };
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\n{connection}\r\n"
    )?;
    let table = write_table();
    let mut position = 0u64;
    while position < length {
        let n = (length - position).min(WRITE_SIZE as u64) as usize;
        let phase = (position % PATTERN_PERIOD) as usize;
        out.write_all(&table[phase..phase + n])?;
        position += n as u64;
    }
    out.flush()
}

/// The pattern table [`send_bytes`] writes from: [`WRITE_SIZE`] plus one period, built on
/// first use.
fn write_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..(WRITE_SIZE as u64 + PATTERN_PERIOD))
            .map(pattern_byte)
            .collect()
    })
}

/// Whether tiny_http closes the connection after this request (it reads no further request
/// after `Connection: close`, or after HTTP/1.0 without keep-alive), which the answer then says.
fn wants_close(request: &Request) -> bool {
    let connection = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str().to_ascii_lowercase());
    match connection {
        Some(value) if value.contains("close") => true,
        Some(value) if value.contains("keep-alive") => false,
        _ => *request.http_version() <= (1, 0),
    }
}

/// `/bytes?n=N[&chunked=1]`: N pattern bytes generated while sending. HTTP/1.0 has no chunked
/// encoding (tiny_http would buffer the whole body to measure it), so it always gets a length.
fn bytes(query: &str, version: &HTTPVersion) -> ResponseBox {
    let n = query_param(query, "n").and_then(|n| n.parse::<u64>().ok());
    let Some(length) = n
        .filter(|n| *n <= MAX_BYTES)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return text(400, "bad or missing n: use 0..=2^40");
    };
    let chunked = query_param(query, "chunked") == Some("1") && *version > HTTPVersion(1, 0);
    let headers = vec![header("Content-Type", "application/octet-stream")];
    let body = PatternReader::new(length as u64);
    let data_length = (!chunked).then_some(length);
    Response::new(StatusCode(200), headers, body, data_length, None).boxed()
}

/// `/gzip`: a body that a client which decompresses on its own would change.
fn gzip() -> ResponseBox {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        use flate2::{write::GzEncoder, Compression};
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        let plain = GZIP_TEXT.repeat(GZIP_REPEAT);
        encoder
            .write_all(plain.as_bytes())
            .expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    });
    Response::from_data(body.clone())
        .with_header(header("Content-Type", "text/plain"))
        .with_header(header("Content-Encoding", "gzip"))
        .boxed()
}

/// `/echo-headers`: what reached the upstream, headers in received order, repeats kept.
fn echo_headers(request: &Request) -> ResponseBox {
    let headers: Vec<[&str; 2]> = request
        .headers()
        .iter()
        .map(|h| [h.field.as_str().as_str(), h.value.as_str()])
        .collect();
    let body = serde_json::json!({
        "method": request.method().as_str(),
        "url": request.url(),
        "headers": headers,
    });
    Response::from_data(body.to_string())
        .with_header(header("Content-Type", "application/json"))
        .boxed()
}

/// `/post`: the body back, with the request's Content-Type, framed as it came: chunked after a
/// chunked upload (except to HTTP/1.0), with a Content-Length otherwise.
fn echo_body(mut request: Request) -> io::Result<()> {
    let content_type = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .cloned();
    let chunked_upload = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    let keep_length = !chunked_upload || *request.http_version() <= (1, 0);
    let (body, length) = spool(request.as_reader())?;
    let response = Response::new(
        StatusCode(200),
        content_type.into_iter().collect(),
        body,
        keep_length.then_some(length),
        None,
    );
    request.respond(response.with_chunked_threshold(usize::MAX))
}

/// Reads `reader` to its end: into memory up to [`SPOOL_MEMORY_LIMIT`], else into a temporary
/// file. Returns the body, rewound, and its length.
fn spool(reader: &mut dyn Read) -> io::Result<(Box<dyn Read + Send>, usize)> {
    let mut head = Vec::new();
    reader
        .take(SPOOL_MEMORY_LIMIT as u64 + 1)
        .read_to_end(&mut head)?;
    if head.len() <= SPOOL_MEMORY_LIMIT {
        let length = head.len();
        return Ok((Box::new(Cursor::new(head)), length));
    }
    let mut file = anonymous_temp_file()?;
    file.write_all(&head)?;
    let rest = io::copy(reader, &mut file)?;
    file.rewind()?;
    let length = usize::try_from(head.len() as u64 + rest).map_err(io::Error::other)?;
    Ok((Box::new(file), length))
}

/// A new temporary file, already unlinked so that the OS frees it when it is closed.
fn anonymous_temp_file() -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("wsp-test-api-{}-{n}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Removing an open file fails on Windows; the file is then left behind, which is harmless.
    let _ = fs::remove_file(&path);
    Ok(file)
}

/// `/upload-count`: the body's length as the body and its FNV-1a hash in `x-body-fnv`
/// (16 lower-case hex digits), so a huge upload can be checked without being sent back.
fn count_body(mut request: Request) -> io::Result<()> {
    let mut digest = BodyDigest::default();
    io::copy(request.as_reader(), &mut digest)?;
    let fnv = format!("{:016x}", digest.fnv.finish());
    let response = text(200, &digest.count.to_string()).with_header(header("x-body-fnv", &fnv));
    request.respond(response)
}

/// Counts and hashes what is written to it.
#[derive(Default)]
struct BodyDigest {
    count: u64,
    fnv: Fnv1a,
}

impl Write for BodyDigest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        self.fnv.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The 64-bit FNV-1a hash, computed incrementally; tests use it to compute the expected
/// `x-body-fnv` of `/upload-count`.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feeds `bytes` into the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Byte `i` of a `/bytes` body.
pub fn pattern_byte(i: u64) -> u8 {
    (i % PATTERN_PERIOD) as u8
}

/// One chunk of the pattern plus one period, so that any chunk starting at any phase of the
/// pattern is a slice of it.
static PATTERN: [u8; CHUNK_SIZE + PATTERN_PERIOD as usize] = pattern_table();

const fn pattern_table() -> [u8; CHUNK_SIZE + PATTERN_PERIOD as usize] {
    let mut table = [0; CHUNK_SIZE + PATTERN_PERIOD as usize];
    let mut i = 0;
    while i < table.len() {
        table[i] = (i % PATTERN_PERIOD as usize) as u8;
        i += 1;
    }
    table
}

/// The body of `/bytes`: `remaining` more pattern bytes, at most [`CHUNK_SIZE`] per read,
/// copied from [`PATTERN`] so nothing of the body's size is ever allocated.
pub struct PatternReader {
    position: u64,
    remaining: u64,
}

impl PatternReader {
    /// A reader of the first `length` bytes of the pattern.
    pub fn new(length: u64) -> Self {
        PatternReader {
            position: 0,
            remaining: length,
        }
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK_SIZE).min(self.remaining as usize);
        let phase = (self.position % PATTERN_PERIOD) as usize;
        buf[..n].copy_from_slice(&PATTERN[phase..phase + n]);
        self.position += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        for (input, expected) in [
            ("", 0xcbf2_9ce4_8422_2325),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut fnv = Fnv1a::default();
            fnv.update(input.as_bytes());
            assert_eq!(fnv.finish(), expected, "{input:?}");
        }
    }

    #[test]
    fn pattern_reader_is_continuous_across_odd_reads() {
        let mut reader = PatternReader::new(3 * CHUNK_SIZE as u64 + 7);
        let mut body = Vec::new();
        let mut buf = vec![0; CHUNK_SIZE + 1000];
        for size in [1, 250, 251, 9999, CHUNK_SIZE + 1000].iter().cycle() {
            let n = reader.read(&mut buf[..*size]).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        assert_eq!(body.len(), 3 * CHUNK_SIZE + 7);
        assert!(body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(i as u64)));
    }

    #[test]
    fn query_param_finds_exact_keys() {
        assert_eq!(query_param("n=10&chunked=1", "chunked"), Some("1"));
        assert_eq!(query_param("nn=1&n=2", "n"), Some("2"));
        assert_eq!(query_param("flag&n=", "n"), Some(""));
        assert_eq!(query_param("", "n"), None);
    }

    #[test]
    fn serves_hello_then_stops() {
        let api = TestApi::start(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut stream = std::net::TcpStream::connect(api.addr()).unwrap();
        stream.write_all(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        assert!(answer.contains("Content-Length: 11\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello world"), "{answer}");
        api.stop();
    }
}
