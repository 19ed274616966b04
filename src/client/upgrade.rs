//! A caller's WebSocket handshake on the client: sent to the internal API as the caller
//! wrote it (its `Sec-WebSocket-*` headers, `Upgrade: websocket`), over a connection of
//! its own. A `101` goes back as message 3 and opens the stream ([`crate::tunnel`]): the
//! caller's frames and the API's then pass as bytes, never decoded. Any other answer
//! (a 400, 401 or 404 from an API that will not switch) goes back as an ordinary response,
//! its body read as its framing says, and the WebSocket serves on.
//!
//! ureq cannot hand over its connection after a `101`, so the handshake is written and
//! its answer's head parsed (httparse) here, on a socket of its own (TLS for an
//! `https://` or `wss://` destination, trusting what the client trusts for its targets).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use ureq::http;

use super::connect::{self, Open};
use super::connection::answer_error;
use super::stream::Stream;
use super::Settings;
use crate::headers::{canonical_key, connection_tokens_of, is_hop_by_hop, Headers};
use crate::protocol::head::{to_json, SWITCHING_PROTOCOLS};
use crate::protocol::{Error, RequestHead, ResponseHead, WsConn};
use crate::tunnel::End;

/// Longest response head accepted from the internal API, and most header fields.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
const MAX_RESPONSE_HEADERS: usize = 100;

/// Longest chunk-size line (with its extensions) and trailer section of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// Headers of the caller's handshake that are not sent on: wsp's own, and those written
/// here from the URL.
const NOT_SENT: [&str; 6] = [
    "host",
    "content-length",
    "x-proxy-destination",
    "x-proxy-client",
    "x-secret-key",
    "transfer-encoding",
];

/// Serves the handshake `head` carries. `Ok(true)`: the WebSocket serves on; `Ok(false)`:
/// the stream aborted and the WebSocket must be dropped.
///
/// # Errors
/// Writing to the WebSocket failed.
pub fn serve(
    settings: &Settings,
    ws: &mut WsConn<Stream>,
    head: &RequestHead,
) -> Result<bool, Error> {
    let target = match Target::parse(&head.url) {
        Ok(target) => target,
        Err(why) => {
            let text = format!("wsp client: {} {}: {why}", head.method, head.url);
            answer_error(ws, 527, &text)?;
            return Ok(true);
        }
    };
    let Some(_open) = Open::take(settings.config.max_streams) else {
        let max = settings.config.max_streams;
        let text = format!("wsp client: {max} streams open already (maxstreams)");
        answer_error(ws, 503, &text)?;
        return Ok(true);
    };
    let (
        mut upstream,
        Answer {
            head: answer,
            framing,
            early,
        },
    ) = match handshake(settings, head, &target) {
        Ok(done) => done,
        Err(e) => {
            let text = format!("wsp client: {} {}: {e}", head.method, head.url);
            log::info!("{text}");
            answer_error(ws, 527, &text)?;
            return Ok(true);
        }
    };
    if answer.status != SWITCHING_PROTOCOLS {
        log::debug!(
            "{} {}: {} (no upgrade)",
            head.method,
            head.url,
            answer.status
        );
        let mut body = body_reader(framing, early, &mut upstream);
        ws.write_text(&to_json(&answer))?;
        ws.write_body(&mut body, u64::try_from(answer.content_length).ok())?;
        return Ok(true);
    }
    ws.write_text(&to_json(&answer))?;
    ws.flush()?;
    connect::carry(settings, ws, &head.url, upstream.end(), early)
}

/// Where a handshake goes: `http(s)://host[:port]/path?query`.
struct Target {
    host: String,
    port: u16,
    /// `https://`: TLS to the internal API.
    tls: bool,
    /// The `Host` header: the URL's authority.
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            _ => return Err("not an http:// or https:// URL".to_string()),
        };
        let authority = uri.authority().ok_or("no host")?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Target {
            host: authority.host().to_string(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            tls,
            authority: authority.as_str().to_string(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
        })
    }
}

/// Connects (with TLS for `https://`, trusting what the client trusts for `wss://`),
/// sends the handshake and reads the answer's head. Returns the connection, the answer
/// as message 3, and the bytes read past its head.
fn handshake(
    settings: &Settings,
    head: &RequestHead,
    target: &Target,
) -> io::Result<(Upstream, Answer)> {
    let socket = connect::open(&format!("{}:{}", target.host, target.port))?;
    let timeout = Some(settings.config.request_timeout);
    socket.set_read_timeout(timeout)?;
    socket.set_write_timeout(timeout)?;
    let mut upstream = match target.tls {
        false => Upstream::Plain(socket),
        true => Upstream::secure(&settings.tls.dial, &target.host, socket)?,
    };
    upstream.write_all(request_text(head, target).as_bytes())?;
    upstream.flush()?;
    let answer = read_answer(&mut upstream)?;
    Ok((upstream, answer))
}

/// The connection to the internal API.
enum Upstream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Upstream {
    /// TLS over `socket` to `host`, its handshake done here so that a refused
    /// certificate says so.
    fn secure(config: &Arc<ClientConfig>, host: &str, mut socket: TcpStream) -> io::Result<Self> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| invalid(format!("{host:?} is no server name: {e}")))?;
        let mut conn = ClientConnection::new(config.clone(), name)
            .map_err(|e| invalid(format!("starting TLS: {e}")))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut socket)
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
        }
        Ok(Upstream::Tls(Box::new(StreamOwned::new(conn, socket))))
    }

    /// The stream's end over this connection.
    fn end(&mut self) -> End<'_> {
        match self {
            Upstream::Plain(socket) => End::plain(socket),
            Upstream::Tls(tls) => {
                let StreamOwned { conn, sock } = &mut **tls;
                End::tls(&mut **conn, sock)
            }
        }
    }
}

impl Read for Upstream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Upstream::Plain(socket) => socket.read(buf),
            Upstream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Upstream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Upstream::Plain(socket) => socket.write(buf),
            Upstream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Upstream::Plain(socket) => socket.flush(),
            Upstream::Tls(tls) => tls.flush(),
        }
    }
}

/// The handshake as the internal API gets it.
fn request_text(head: &RequestHead, target: &Target) -> String {
    let mut text = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        target.path, target.authority
    );
    let tokens = connection_tokens_of(&head.header);
    for (name, values) in &head.header {
        let skipped = NOT_SENT.iter().any(|n| name.eq_ignore_ascii_case(n));
        if skipped || is_hop_by_hop(name, &tokens) {
            continue;
        }
        for value in values {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    text.push_str("\r\n");
    text
}

/// The internal API's answer to a handshake, its head read.
struct Answer {
    /// As message 3.
    head: ResponseHead,
    /// How its body ends, for an answer that did not switch.
    framing: Framing,
    /// The bytes read past its head.
    early: Vec<u8>,
}

/// How the body of an answer ends (RFC 9112 §6.3): message 3 carries no
/// `Transfer-Encoding` (hop-by-hop), so it is decided here, from the answer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    ToTheEnd,
}

/// Reads the answer's head.
fn read_answer(socket: &mut Upstream) -> io::Result<Answer> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk)?;
        if n == 0 {
            let why = "the internal API closed the connection before answering";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let parsed = response
            .parse(&buf)
            .map_err(|e| invalid(format!("unreadable answer: {e}")))?;
        if let httparse::Status::Complete(len) = parsed {
            let (head, framing) = message_3(&response)?;
            let early = buf.split_off(len);
            return Ok(Answer {
                head,
                framing,
                early,
            });
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(invalid(format!(
                "answer head over {MAX_RESPONSE_HEAD} bytes"
            )));
        }
    }
}

/// The answer as message 3 (its status, its headers but the hop-by-hop ones, and its
/// body's length when `Content-Length` gives it, -1 otherwise, 0 for a 101) and how its
/// body ends.
fn message_3(response: &httparse::Response<'_, '_>) -> io::Result<(ResponseHead, Framing)> {
    let status = response.code.ok_or_else(|| invalid("no status".into()))?;
    let mut all = Headers::new();
    for field in response.headers.iter() {
        let value = std::str::from_utf8(field.value)
            .map_err(|_| invalid(format!("header {} is not UTF-8", field.name)))?;
        let values = all.entry(canonical_key(field.name)).or_default();
        values.push(value.to_string());
    }
    let tokens = connection_tokens_of(&all);
    let chunked = all
        .get("Transfer-Encoding")
        .is_some_and(|v| v.iter().any(|v| v.to_ascii_lowercase().contains("chunked")));
    let length = match all.get("Content-Length").and_then(|v| v.first()) {
        _ if status == SWITCHING_PROTOCOLS || status == 204 || status == 304 => 0,
        _ if chunked => -1,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(format!("Content-Length {v:?}")))?,
        None => -1,
    };
    let mut header = Headers::new();
    for (name, values) in all {
        let dropped = is_hop_by_hop(&name, &tokens) || (chunked && name == "Content-Length");
        if !dropped {
            header.insert(name, values);
        }
    }
    let framing = match u64::try_from(length) {
        Ok(length) => Framing::Length(length),
        Err(_) if chunked => Framing::Chunked,
        Err(_) => Framing::ToTheEnd,
    };
    let head = ResponseHead {
        status,
        header,
        content_length: length,
    };
    Ok((head, framing))
}

/// The body of an answer that did not switch, as its framing says: its `Content-Length`,
/// chunks, or up to the end of the connection.
fn body_reader<'a>(
    framing: Framing,
    early: Vec<u8>,
    socket: &'a mut Upstream,
) -> Box<dyn Read + 'a> {
    let rest = io::Cursor::new(early).chain(socket);
    match framing {
        Framing::Length(length) => Box::new(rest.take(length)),
        Framing::Chunked => Box::new(Chunked::new(rest)),
        Framing::ToTheEnd => Box::new(rest),
    }
}

/// A chunked body (RFC 9112 §7.1), decoded; trailers are read and dropped.
struct Chunked<R> {
    inner: BufReader<R>,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: Read> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner: BufReader::new(inner),
            left: 0,
            done: false,
        }
    }

    /// Reads a line (CRLF kept), at most [`MAX_CHUNK_LINE`] bytes.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        (&mut self.inner)
            .take(MAX_CHUNK_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(invalid("a chunk line broke off or is too long".into()));
        }
        Ok(line)
    }

    /// Starts the next chunk; false after the last one (and its trailers).
    fn next_chunk(&mut self) -> io::Result<bool> {
        let line = self.line()?;
        let size = match httparse::parse_chunk_size(&line) {
            Ok(httparse::Status::Complete((_, size))) => size,
            _ => return Err(invalid("bad chunk size".into())),
        };
        if size == 0 {
            while self.line()? != b"\r\n" {}
            return Ok(false);
        }
        self.left = size;
        Ok(true)
    }
}

impl<R: Read> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 && !self.next_chunk()? {
            self.done = true;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 && self.line()? != b"\r\n" {
            return Err(invalid("a chunk does not end with CRLF".into()));
        }
        Ok(n)
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::Chunked;

    #[test]
    fn chunked_bodies_are_decoded() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut body = String::new();
        let mut reader = Chunked::new(&wire[..]);
        reader.read_to_string(&mut body).expect("decoded");
        assert_eq!(body, "hello, world");
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhel",
        ] {
            let mut sink = Vec::new();
            assert!(Chunked::new(bad).read_to_end(&mut sink).is_err(), "{bad:?}");
        }
    }
}
