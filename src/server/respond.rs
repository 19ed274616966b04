//! Writing a relayed response to the caller, streaming.
//!
//! tiny_http's own `respond` copies a body through buffers it never flushes (its chunked
//! encoder holds 8 KiB, its socket writer 1 KiB), so the first bytes of a slow body would
//! wait for the rest. Here the response head is written from the relayed head, and every
//! piece of body is sent and flushed as soon as it comes off the WebSocket.
//!
//! When the first piece of body has already arrived with the head (the usual case: the
//! client sends them together), it is read before anything is written, so that head and
//! first piece leave in one packet, and a body that fails at once still lets the caller
//! get a proper error status instead of a cut connection. Otherwise the head goes out at
//! once, and the caller sees it while the body takes its time.
//!
//! Framing follows RFC 9112: `Content-Length` when the length is known, chunked otherwise;
//! an HTTP/1.0 caller, which knows no chunks, gets the body delimited by closing the
//! connection. HEAD, 204 and 304 responses carry no body.

use std::io::{self, Read, Write};
use std::time::SystemTime;

use crate::buffer::CopyBuffer;

/// What the caller is sent, before the body.
#[derive(Clone, Copy)]
pub struct ResponseHead<'a> {
    pub status: u16,
    /// Headers to send as they are (hop-by-hop and framing headers already removed).
    pub headers: &'a [(String, String)],
    /// The body length, when known.
    pub length: Option<u64>,
    /// The request was HEAD: no body goes out, whatever the length.
    pub head_request: bool,
    /// The caller speaks HTTP/1.0.
    pub http10: bool,
}

/// How the response went out.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Complete; the caller's connection may serve another request.
    Complete,
    /// Complete, but the body ended by closing: the connection must be closed now.
    CloseToEnd,
    /// The response has no body: the relayed body was not read.
    NoBody,
}

/// Where a failed response broke.
#[derive(Debug)]
pub enum SendError {
    /// Reading the body failed before anything was written: the caller can still be
    /// answered with an error status.
    BeforeHead(io::Error),
    /// Writing to the caller failed: the caller went away.
    Caller(io::Error),
    /// Reading the body failed: the response is cut short and the caller's connection
    /// must be cut too, so that it sees the truncation.
    Body(io::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::BeforeHead(e) => write!(f, "response body unreadable: {e}"),
            SendError::Caller(e) => write!(f, "writing to the caller failed: {e}"),
            SendError::Body(e) => write!(f, "response body cut short: {e}"),
        }
    }
}

/// Writes the head, then streams `body` to `out`, flushing each piece. `body_ready`
/// says the first piece has arrived: it is then read before the head is written.
pub fn send(
    out: &mut dyn Write,
    head: &ResponseHead<'_>,
    body: &mut dyn Read,
    body_ready: bool,
) -> Result<Sent, SendError> {
    let no_body = head.head_request || matches!(head.status, 204 | 304);
    let chunked = !no_body && head.length.is_none() && !head.http10;
    let close_delimited = !no_body && head.length.is_none() && head.http10;
    let text = head_text(head, chunked, close_delimited);
    let mut buffer = CopyBuffer::for_body(head.length);
    let mut checked;
    let body: &mut dyn Read = match head.length {
        Some(length) if !no_body => {
            checked = Exact::new(body, length);
            &mut checked
        }
        _ => body,
    };
    let first = match body_ready && !no_body {
        true => Some(buffer.read_from(body).map_err(SendError::BeforeHead)?),
        false => None,
    };
    out.write_all(text.as_bytes()).map_err(SendError::Caller)?;
    if no_body {
        out.flush().map_err(SendError::Caller)?;
        return Ok(Sent::NoBody);
    }
    let ended = first.is_some_and(|piece| piece.is_empty());
    match first {
        Some(piece) if !piece.is_empty() => write_piece(out, piece, chunked)?,
        // The head alone (a body already ended, or still to come) must reach the caller
        // now: a `Content-Length: 0` answer is nothing but its head.
        _ => out.flush().map_err(SendError::Caller)?,
    }
    if !ended {
        copy_body(out, body, chunked, &mut buffer)?;
    }
    if chunked {
        out.write_all(b"0\r\n\r\n")
            .and_then(|()| out.flush())
            .map_err(SendError::Caller)?;
    }
    Ok(if close_delimited {
        Sent::CloseToEnd
    } else {
        Sent::Complete
    })
}

/// A body held to its `Content-Length`: at most that many bytes are read, and an end
/// before them is an error. The caller was promised the length in the head, so a body
/// that ends short must cut its connection (it would wait for the rest forever), and
/// bytes beyond it must not reach it (they would be read as the next response).
struct Exact<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    length: u64,
}

impl<'a> Exact<'a> {
    fn new(inner: &'a mut dyn Read, length: u64) -> Exact<'a> {
        Exact {
            inner,
            left: length,
            length,
        }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let most = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..most])?;
        if n == 0 && most > 0 {
            let (got, length) = (self.length - self.left, self.length);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the body ended after {got} of its {length} bytes (Content-Length)"),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn head_text(head: &ResponseHead<'_>, chunked: bool, close_delimited: bool) -> String {
    use std::fmt::Write as _;
    let reason = crate::answer::reason(head.status);
    let version = if head.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    // One allocation, sized for the common head; every line is written into it in place.
    let lines: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    let mut text = String::with_capacity(lines + 128);
    // Writing into a String cannot fail.
    let _ = write!(text, "{version} {} {reason}\r\n", head.status);
    for (name, value) in head.headers {
        let _ = write!(text, "{name}: {value}\r\n");
    }
    if !head
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Date"))
    {
        let date = httpdate::HttpDate::from(SystemTime::now());
        let _ = write!(text, "Date: {date}\r\n");
    }
    if let Some(length) = head.length {
        let _ = write!(text, "Content-Length: {length}\r\n");
    } else if chunked {
        text.push_str("Transfer-Encoding: chunked\r\n");
    }
    if close_delimited {
        text.push_str("Connection: close\r\n");
    }
    text.push_str("\r\n");
    text
}

/// Copies the rest of the body, each piece written and flushed as it comes.
fn copy_body(
    out: &mut dyn Write,
    body: &mut dyn Read,
    chunked: bool,
    buffer: &mut CopyBuffer,
) -> Result<(), SendError> {
    loop {
        match buffer.read_from(body).map_err(SendError::Body)? {
            [] => return Ok(()),
            piece => write_piece(out, piece, chunked)?,
        }
    }
}

/// Writes one piece of body, chunk-encoded if asked, and flushes it.
fn write_piece(out: &mut dyn Write, piece: &[u8], chunked: bool) -> Result<(), SendError> {
    let written = if chunked {
        write!(out, "{:x}\r\n", piece.len())
            .and_then(|()| out.write_all(piece))
            .and_then(|()| out.write_all(b"\r\n"))
    } else {
        out.write_all(piece)
    };
    written
        .and_then(|()| out.flush())
        .map_err(SendError::Caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(head: &ResponseHead<'_>, body: &[u8]) -> (Sent, String) {
        let mut out = Vec::new();
        let outcome = send(&mut out, head, &mut &body[..], true).expect("send");
        let mut later = Vec::new();
        let same = send(&mut later, head, &mut &body[..], false).expect("send");
        let undated = |b: &[u8]| {
            let text = String::from_utf8_lossy(b).into_owned();
            let lines = text.split("\r\n").filter(|l| !l.starts_with("Date:"));
            lines.collect::<Vec<_>>().join("\r\n")
        };
        assert_eq!(outcome, same, "body ready or not");
        assert_eq!(undated(&out), undated(&later), "body ready or not");
        (outcome, String::from_utf8(out).expect("text"))
    }

    fn head(length: Option<u64>, head_request: bool, http10: bool) -> ResponseHead<'static> {
        ResponseHead {
            status: 200,
            headers: &[],
            length,
            head_request,
            http10,
        }
    }

    #[test]
    fn known_length_goes_as_content_length() {
        let (outcome, text) = sent(&head(Some(5), false, false), b"hello");
        assert_eq!(outcome, Sent::Complete);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\nhello"));
    }

    #[test]
    fn unknown_length_is_chunked_or_close_delimited() {
        let (_, text) = sent(&head(None, false, false), b"hello");
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{text}");
        let (outcome, text) = sent(&head(None, false, true), b"hello");
        assert_eq!(outcome, Sent::CloseToEnd);
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n") && text.contains("Connection: close"));
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    }

    #[test]
    fn head_requests_and_bodiless_statuses_send_no_body() {
        let (outcome, text) = sent(&head(Some(5), true, false), b"hello");
        assert_eq!(outcome, Sent::NoBody);
        assert!(text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\n"));
        let no_content = ResponseHead {
            status: 204,
            ..head(None, false, false)
        };
        let (_, text) = sent(&no_content, b"");
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n") && !text.contains("chunked"));
    }

    #[test]
    fn a_body_is_held_to_its_length() {
        let mut out = Vec::new();
        let result = send(
            &mut out,
            &head(Some(10), false, false),
            &mut &b"short"[..],
            true,
        );
        let Err(SendError::Body(e)) = result else {
            panic!("a short body must cut the caller's connection: {result:?}")
        };
        assert!(e.to_string().contains("after 5 of its 10 bytes"), "{e}");
        let text = String::from_utf8(out).expect("text");
        assert!(text.ends_with("\r\n\r\nshort"), "what came is sent: {text}");
        let (outcome, text) = sent(&head(Some(5), false, false), b"hello, and more");
        assert_eq!(outcome, Sent::Complete);
        assert!(
            text.ends_with("\r\n\r\nhello"),
            "nothing past the length: {text}"
        );
        let result = send(
            &mut Vec::new(),
            &head(Some(3), false, false),
            &mut &b""[..],
            true,
        );
        assert!(
            matches!(result, Err(SendError::BeforeHead(_))),
            "{result:?}"
        );
    }

    #[test]
    fn a_broken_body_is_reported_as_such() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        let mut out = Vec::new();
        let result = send(&mut out, &head(None, false, false), &mut Broken, false);
        assert!(matches!(result, Err(SendError::Body(_))));
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"), "head sent first");
        let mut out = Vec::new();
        let result = send(&mut out, &head(None, false, false), &mut Broken, true);
        assert!(matches!(result, Err(SendError::BeforeHead(_))));
        assert!(
            out.is_empty(),
            "nothing sent: the caller can still get an error"
        );
    }
}
