//! HTTP/1.1 as bytes on a socket, read with a deadline: the head, the fields, and a body
//! framed by `Content-Length`, chunks or the connection's end. Shared by the scripted
//! upstream (which reads requests) and the raw caller (which reads answers), so that both
//! ends of the harness judge framing by the same rules (RFC 9112 §6).
//!
//! Nothing here trusts the peer: every read waits at most until the deadline, and heads and
//! bodies are bounded, so a proxy that stalls or floods fails the case instead of the run.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest head either end accepts: well above the 30 KB header case.
const MAX_HEAD: usize = 256 * 1024;
/// Largest body either end accepts.
const MAX_BODY: usize = 16 << 20;

/// A header field: lower-cased name, value bytes as sent (trimmed of outer spaces).
pub type Field = (String, Vec<u8>);

/// A socket with a read buffer, every read bounded by a deadline.
pub struct Conn {
    pub stream: TcpStream,
    buffer: Vec<u8>,
    deadline: Instant,
}

/// How a body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Its framing said where (length, last chunk, or no body at all).
    Framed,
    /// No framing: it ended with the connection, as it should.
    Closed,
    /// The connection ended (or went silent past the deadline) before the framing did.
    Cut(String),
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buffer: Vec::new(),
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    /// Every read from now on must be done within `within`.
    pub fn set_deadline(&mut self, within: Duration) {
        self.deadline = Instant::now() + within;
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads more into the buffer: `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        let n = match self.stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
            }
            other => other?,
        };
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next head, up to and including its empty line: `Ok(None)` when the stream ended
    /// before its first byte.
    pub fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                return Ok(Some(self.buffer.drain(..end + 4).collect()));
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(io::Error::other("head longer than 256 KiB"));
            }
            if self.fill()? == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(io::Error::other(format!(
                        "stream ended inside a head: {:?}",
                        String::from_utf8_lossy(&self.buffer)
                    ))),
                };
            }
        }
    }

    /// Exactly `len` bytes, or as many as came before the end or the deadline.
    pub fn read_exact_body(&mut self, len: usize, seen: &mut dyn FnMut(&[u8])) -> (Vec<u8>, End) {
        let mut body = Vec::new();
        while body.len() < len {
            if self.buffer.is_empty() {
                match self.fill() {
                    Ok(0) => {
                        let why = format!("ended after {} of {len} bytes", body.len());
                        return (body, End::Cut(why));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let why = format!("{e} after {} of {len} bytes", body.len());
                        return (body, End::Cut(why));
                    }
                }
            }
            let take = self.buffer.len().min(len - body.len());
            body.extend(self.buffer.drain(..take));
            seen(&body);
        }
        (body, End::Framed)
    }

    /// Everything until the peer closes.
    pub fn read_to_close(&mut self, seen: &mut dyn FnMut(&[u8])) -> (Vec<u8>, End) {
        let mut body = std::mem::take(&mut self.buffer);
        loop {
            seen(&body);
            if body.len() > MAX_BODY {
                return (body, End::Cut("close-delimited body over 16 MiB".into()));
            }
            match self.fill() {
                Ok(0) => return (body, End::Closed),
                Ok(_) => body.append(&mut self.buffer),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let why = format!("no end after {} bytes: {e}", body.len());
                    return (body, End::Cut(why));
                }
                // A reset after the data counts as its end, as curl and browsers take it.
                Err(_) => return (body, End::Closed),
            }
        }
    }

    /// A chunked body: its data, its trailer fields and how it ended.
    pub fn read_chunked(&mut self, seen: &mut dyn FnMut(&[u8])) -> (Vec<u8>, Vec<Field>, End) {
        let mut body = Vec::new();
        loop {
            let line = match self.read_line() {
                Ok(line) => line,
                Err(e) => return (body, Vec::new(), End::Cut(format!("chunk size line: {e}"))),
            };
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
            let Some(size) = size else {
                let line = String::from_utf8_lossy(&line).into_owned();
                return (
                    body,
                    Vec::new(),
                    End::Cut(format!("bad chunk size line {line:?}")),
                );
            };
            if size == 0 {
                return match self.read_trailers() {
                    Ok(trailers) => (body, trailers, End::Framed),
                    Err(e) => (body, Vec::new(), End::Cut(format!("trailers: {e}"))),
                };
            }
            if body.len() + size > MAX_BODY {
                return (
                    body,
                    Vec::new(),
                    End::Cut("chunked body over 16 MiB".into()),
                );
            }
            let (data, end) = self.read_exact_body(size, &mut |_| {});
            body.extend_from_slice(&data);
            seen(&body);
            if end != End::Framed {
                return (body, Vec::new(), end);
            }
            match self.read_line() {
                Ok(line) if line.is_empty() => {}
                Ok(line) => {
                    return (
                        body,
                        Vec::new(),
                        End::Cut(format!("chunk followed by {line:?}")),
                    )
                }
                Err(e) => return (body, Vec::new(), End::Cut(format!("chunk end: {e}"))),
            }
        }
    }

    fn read_trailers(&mut self) -> io::Result<Vec<Field>> {
        let mut text = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok(fields(&text));
            }
            text.extend_from_slice(&line);
            text.extend_from_slice(b"\r\n");
        }
    }

    /// One line without its CRLF.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line = self.buffer.drain(..end + 2).take(end).collect();
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(io::Error::other("line longer than 256 KiB"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended in a line",
                ));
            }
        }
    }
}

/// The start line of `head` and its fields.
pub fn split_head(head: &[u8]) -> (String, Vec<Field>) {
    let end = find(head, b"\r\n").unwrap_or(head.len());
    let start = String::from_utf8_lossy(&head[..end]).into_owned();
    (start, fields(head.get(end + 2..).unwrap_or_default()))
}

/// `Name: value` lines, names lower-cased, values trimmed of spaces and tabs.
fn fields(text: &[u8]) -> Vec<Field> {
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            Some((name, value))
        })
        .collect()
}

/// The first value of field `name` (lower-case), as text.
pub fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Whether a comma-separated field `name` holds `token` (case-insensitive).
pub fn has_token(fields: &[Field], name: &str, token: &str) -> bool {
    fields.iter().filter(|(n, _)| n == name).any(|(_, v)| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The `Content-Length` of `fields`, if any and a number.
pub fn content_length(fields: &[Field]) -> Option<usize> {
    let value = field(fields, "content-length")?;
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
