//! The benchmark's own HTTP/1.1 client for the bulk rows and the readiness check: a raw
//! `TcpStream`, one request per connection (`Connection: close`), bodies framed by
//! `Content-Length` only. It holds no body in memory: the bulk rows stream theirs through
//! one buffer, so that what is measured is the proxy, not the client's allocator.
//!
//! Every read and write has a time-out ([`IO_TIMEOUT`]), so a stalled proxy fails a row
//! instead of hanging the benchmark.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest wait for a connection, or for any one read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body [`get`] and [`read_small_body`] read.
const MAX_SMALL_BODY: u64 = 1024 * 1024;
/// Most header lines in a response head.
const MAX_HEADERS: usize = 64;

/// A response's status line and headers.
pub struct Head {
    pub status: u16,
    /// Names as received.
    pub headers: Vec<(String, String)>,
    /// `None` when the response has no `Content-Length` (e.g. it is chunked).
    pub content_length: Option<u64>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Connects to `addr` with [`IO_TIMEOUT`] on everything and Nagle off.
pub fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let setup = || -> std::io::Result<()> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)
    };
    setup().map_err(|e| format!("setting up the connection to {addr}: {e}"))?;
    Ok(stream)
}

/// Sends a request head; `destination` adds `X-PROXY-DESTINATION` (a tunnel request).
pub fn write_head(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    destination: Option<&str>,
    content_length: Option<u64>,
) -> Result<(), String> {
    let host = stream
        .peer_addr()
        .map_err(|e| format!("reading the peer address: {e}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(destination) = destination {
        head.push_str(&format!("X-PROXY-DESTINATION: {destination}\r\n"));
    }
    if let Some(length) = content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending {method} {path} to {host}: {e}"))
}

/// Reads a response head; returns it and the bytes read past it (the body's start).
pub fn read_head(stream: &mut TcpStream) -> Result<(Head, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("reading a response head: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed after {} bytes of a response head",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, used)) = parse_head(&buf)? {
            return Ok((head, buf.split_off(used)));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
    }
}

/// The head in `buf` and its length, or `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_string(), value)
        })
        .collect();
    let mut head = Head {
        status: response.code.unwrap_or_default(),
        headers,
        content_length: None,
    };
    if let Some(text) = head.header("Content-Length") {
        let length = text
            .parse()
            .map_err(|_| format!("bad Content-Length {text:?}"))?;
        head.content_length = Some(length);
    }
    Ok(Some((head, used)))
}

/// Reads a body of at most [`MAX_SMALL_BODY`] bytes whose start is `leftover`.
pub fn read_small_body(
    stream: &mut TcpStream,
    head: &Head,
    mut leftover: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let length = head
        .content_length
        .ok_or("a response without Content-Length")?;
    if length > MAX_SMALL_BODY {
        return Err(format!(
            "a {length}-byte body where a small one was expected"
        ));
    }
    let missing = (length as usize).saturating_sub(leftover.len());
    let start = leftover.len();
    leftover.resize(start + missing, 0);
    stream
        .read_exact(&mut leftover[start..])
        .map_err(|e| format!("reading a {length}-byte body: {e}"))?;
    leftover.truncate(length as usize);
    Ok(leftover)
}

/// `GET path` on `addr` (through the tunnel when `destination` is given): status and body.
pub fn get(
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = connect(addr)?;
    write_head(&mut stream, "GET", path, destination, None)?;
    let (head, leftover) = read_head(&mut stream)?;
    let body = read_small_body(&mut stream, &head, leftover)?;
    Ok((head.status, body))
}

/// `POST path` of `body` on `addr` (through the tunnel when `destination` is given):
/// status and body.
pub fn post(
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = connect(addr)?;
    write_head(
        &mut stream,
        "POST",
        path,
        destination,
        Some(body.len() as u64),
    )?;
    stream
        .write_all(body)
        .map_err(|e| format!("sending a {}-byte body: {e}", body.len()))?;
    let (head, leftover) = read_head(&mut stream)?;
    let body = read_small_body(&mut stream, &head, leftover)?;
    Ok((head.status, body))
}

/// `GET path` on `addr` as HTTP/1.0, the body read to the end of the connection: for
/// answers a server may send chunked to HTTP/1.1 (the admin API's long lists).
pub fn get_http10(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>), String> {
    let mut stream = connect(addr)?;
    let head = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending GET {path} to {addr}: {e}"))?;
    let (head, mut body) = read_head(&mut stream)?;
    stream
        .take(MAX_SMALL_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the body of GET {path}: {e}"))?;
    if body.len() as u64 > MAX_SMALL_BODY {
        return Err(format!(
            "GET {path}: a body longer than {MAX_SMALL_BODY} bytes"
        ));
    }
    Ok((head.status, body))
}
