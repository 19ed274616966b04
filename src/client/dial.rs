//! Opening one WebSocket to a server: TCP connect, the TLS handshake for `wss://`,
//! RFC 6455 opening handshake with `X-SECRET-KEY`, and the greeting.
//!
//! The handshake is a dozen lines of HTTP/1.1, written here rather than through
//! tungstenite's `client()`, because the stream must end up in our frame-level
//! [`WsConn`] with whatever bytes were read past the `101` still buffered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::handshake::derive_accept_key;
use url::{Host, Url};

use super::stream::Stream;
use super::tls::Tls;
use super::Error;
use crate::protocol::{Greeting, Role, WsConn, STREAMS_HEADER};
use crate::secret::Secret;

/// How long a TCP connect to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to answer the opening handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest handshake response head accepted, in bytes.
const MAX_HANDSHAKE_RESPONSE: usize = 16 * 1024;
/// Read buffer for the handshake response.
const HANDSHAKE_BUFFER_LEN: usize = 1024;
/// Most bytes of a refusal's body quoted in the error.
const MAX_REFUSAL_BODY: u64 = 512;

/// The server to dial.
pub struct Server<'a> {
    /// The target: a `ws://` or `wss://` URL, whose host names the server in the
    /// handshake and its certificate.
    pub url: &'a Url,
    /// The address to connect to: the URL's host, resolved.
    pub addr: SocketAddr,
    /// How errors name it.
    pub name: &'a str,
}

/// Connects to `server` (over TLS for `wss://`, verified as `tls` says) and sends the
/// greeting.
pub fn dial(
    server: &Server<'_>,
    tls: &Tls,
    secret: &Secret,
    greeting: &Greeting,
) -> Result<WsConn<Stream>, Error> {
    let fail = |why: String| Error::Dial {
        target: server.name.to_string(),
        why,
    };
    let target = server.url;
    let socket = connect(server.addr).map_err(&fail)?;
    let stream = match target.scheme() {
        "ws" => Stream::Plain(socket),
        "wss" => secure(target, &tls.dial, socket).map_err(&fail)?,
        other => return Err(fail(format!("scheme {other}:// is not supported"))),
    };
    // Small: the handshake response is a short head, and the buffer stays allocated
    // (as leftover) only when the server sends frames right behind it.
    let mut io = BufReader::with_capacity(HANDSHAKE_BUFFER_LEN, stream);
    let key = new_key();
    io.get_mut()
        .write_all(upgrade_request(target, &key, secret).as_bytes())
        .and_then(|()| io.get_mut().flush())
        .map_err(|e| fail(format!("sending handshake: {e}")))?;
    check_response(&mut io, &key).map_err(&fail)?;
    let mut ws = WsConn::from_buffered(io, Role::Client);
    ws.write_text(&greeting.to_string())
        .and_then(|()| ws.flush())
        .map_err(|e| fail(format!("sending greeting: {e}")))?;
    Ok(ws)
}

/// A `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1). It is a nonce
/// that proves the server read the handshake, not a secret, so fastrand's per-thread
/// generator does; tungstenite's `generate_key` would give every connection thread a
/// cryptographic generator of its own, a kilobyte of heap each.
fn new_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes())
}

/// The TLS handshake over `socket`, done here so that a refused certificate is reported
/// as such, not as a failed write of the WebSocket handshake. Bounded by the socket's
/// read time-out ([`HANDSHAKE_TIMEOUT`]).
fn secure(
    target: &Url,
    config: &Arc<rustls::ClientConfig>,
    mut socket: TcpStream,
) -> Result<Stream, String> {
    let name = server_name(target)?;
    let mut conn =
        ClientConnection::new(config.clone(), name).map_err(|e| format!("starting TLS: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, socket))))
}

/// The name the server's certificate must hold: the URL's host, a DNS name or an IP.
fn server_name(target: &Url) -> Result<ServerName<'static>, String> {
    match target.host() {
        Some(Host::Domain(name)) => ServerName::try_from(name.to_string())
            .map_err(|e| format!("{name:?} is no server name: {e}")),
        Some(Host::Ipv4(ip)) => Ok(ServerName::from(IpAddr::V4(ip))),
        Some(Host::Ipv6(ip)) => Ok(ServerName::from(IpAddr::V6(ip))),
        None => Err("no host".into()),
    }
}

/// A TCP connection to `addr`, ready for the handshake.
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The `/register` request; it announces streams ([`STREAMS_HEADER`]).
fn upgrade_request(target: &Url, key: &str, secret: &Secret) -> String {
    let host = match (target.host_str(), target.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    let path = match target.query() {
        Some(q) => format!("{}?{q}", target.path()),
        None => target.path().to_string(),
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nX-SECRET-KEY: {}\r\n{STREAMS_HEADER}: 1\r\n\r\n",
        secret.expose()
    )
}

/// Reads the handshake response: `101` with the right `Sec-WebSocket-Accept`, or an error
/// quoting the server's refusal (`526 Invalid X-SECRET-KEY`).
fn check_response(io: &mut BufReader<Stream>, key: &str) -> Result<(), String> {
    let head = read_head(io)?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("malformed handshake response".into()),
    }
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if status != 101 {
        let length = header("Content-Length").and_then(|v| v.parse::<u64>().ok());
        let mut body = String::new();
        let _ = io
            .by_ref()
            .take(length.unwrap_or(0).min(MAX_REFUSAL_BODY))
            .read_to_string(&mut body);
        return Err(format!("server refused: {status} {}", body.trim()));
    }
    if header("Sec-WebSocket-Accept") != Some(derive_accept_key(key.as_bytes())) {
        return Err("handshake response has a wrong Sec-WebSocket-Accept".into());
    }
    Ok(())
}

/// Whether `bytes` start like a TLS record (an alert or a handshake, TLS 1.0 to 1.3): what
/// a TLS server answers to a plain HTTP request before it closes.
fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0..=0x04, ..])
}

/// The response head, up to and including the empty line, within the size limit.
fn read_head(io: &mut BufReader<Stream>) -> Result<Vec<u8>, String> {
    let mut head = Vec::new();
    loop {
        let mut limited = io
            .by_ref()
            .take((MAX_HANDSHAKE_RESPONSE - head.len()) as u64);
        let n = limited
            .read_until(b'\n', &mut head)
            .map_err(|e| format!("reading handshake response: {e}"))?;
        if n == 0 && is_tls_record(&head) {
            return Err("the server answered in TLS: dial it with wss://".into());
        }
        if n == 0 {
            return Err("connection closed during handshake".into());
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(head);
        }
        if head.len() >= MAX_HANDSHAKE_RESPONSE {
            return Err("handshake response head too large".into());
        }
    }
}
