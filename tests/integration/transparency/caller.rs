//! The raw caller: writes a request as exact bytes on a kept-alive connection, straight
//! to the upstream or through wsp (`/request`, or proxy mode's absolute form), and reads
//! the answer as it comes, interim `1xx` answers included, by RFC 9112's framing rules.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::wire::{content_length, has_token, split_head, Conn, End, Field};

/// How long the caller waits for a `100 Continue` before sending the body anyway (curl's
/// default is 1 s).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// Which way a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the upstream: the oracle.
    Direct,
    /// wsp's `/request` with `X-PROXY-DESTINATION`.
    Request,
    /// wsp as an HTTP proxy: the target in absolute form.
    Proxy,
}

/// A request body and how the caller frames it.
#[derive(Clone, Debug)]
pub enum Body {
    None,
    /// Sent with `Content-Length` (the case's headers carry it).
    Length(Vec<u8>),
    /// Sent chunked, in these chunks (the case's headers carry `Transfer-Encoding`).
    Chunked(Vec<Vec<u8>>),
}

/// A request, the same on every route but for its first line and `X-PROXY-DESTINATION`.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// Origin form: path and query, byte for byte.
    pub target: String,
    /// Headers after `Host`, as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
    /// Send the head, wait for `100 Continue` (or [`CONTINUE_WAIT`]), then the body.
    pub expect_continue: bool,
}

/// An answer as the caller read it.
#[derive(Debug)]
pub struct Answer {
    /// Statuses of the interim (1xx) answers before the final one.
    pub interim: Vec<u16>,
    pub version: String,
    pub status: u16,
    pub fields: Vec<Field>,
    pub body: Vec<u8>,
    pub trailers: Vec<Field>,
    pub end: End,
}

impl Call {
    /// The request's bytes on `route`, for an upstream at `upstream` and wsp at `server`.
    pub fn head(&self, route: Route, upstream: SocketAddr, run: u64, case: &str) -> Vec<u8> {
        let url = format!("http://{upstream}{}", self.target);
        let first = match route {
            Route::Direct => format!(
                "{} {} HTTP/1.1\r\nHost: {upstream}\r\n",
                self.method, self.target
            ),
            Route::Request => format!(
                "{} /request HTTP/1.1\r\nHost: {upstream}\r\nX-PROXY-DESTINATION: {url}\r\n",
                self.method
            ),
            Route::Proxy => format!("{} {url} HTTP/1.1\r\nHost: {upstream}\r\n", self.method),
        };
        let mut bytes = first.into_bytes();
        bytes.extend_from_slice(
            format!("X-Harness-Case: {case}\r\nX-Harness-Run: {run}\r\n").as_bytes(),
        );
        for (name, value) in &self.headers {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::None => Vec::new(),
            Body::Length(bytes) => bytes.clone(),
            Body::Chunked(chunks) => {
                let mut out = Vec::new();
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        }
    }
}

/// A kept-alive connection to `addr` (the upstream, or wsp).
pub fn connect(addr: SocketAddr) -> Conn {
    Conn::new(TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}")))
}

/// Sends `call` (head bytes `head`) on `conn` and reads the answer within `within`;
/// `seen` is shown the body as it grows. `Err` when no final answer head came.
pub fn exchange(
    conn: &mut Conn,
    call: &Call,
    head: &[u8],
    within: Duration,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<Answer, String> {
    conn.write_all(head)
        .map_err(|e| format!("sending the head: {e}"))?;
    let mut interim = Vec::new();
    if call.expect_continue {
        conn.set_deadline(CONTINUE_WAIT);
        match conn.read_head() {
            Ok(Some(head)) => {
                let (start, _) = split_head(&head);
                let status = status_of(&start)?;
                if !(100..200).contains(&status) {
                    // A final answer before the body: the body is never sent.
                    conn.set_deadline(within);
                    return read_rest(conn, call, start, head, interim, seen);
                }
                interim.push(status);
            }
            Ok(None) => return Err("connection closed before any answer".into()),
            Err(_) => {} // No 100 within the wait: send the body anyway, as curl does.
        }
    }
    conn.write_all(&call.body_bytes())
        .map_err(|e| format!("sending the body: {e}"))?;
    conn.set_deadline(within);
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) => return Err("connection closed before the answer's head".into()),
            Err(e) => return Err(format!("no answer head: {e}")),
        };
        let (start, _) = split_head(&head);
        let status = status_of(&start)?;
        if (100..200).contains(&status) && status != 101 {
            interim.push(status);
            continue;
        }
        return read_rest(conn, call, start, head, interim, seen);
    }
}

/// The body of a final answer whose head is `head`.
fn read_rest(
    conn: &mut Conn,
    call: &Call,
    start: String,
    head: Vec<u8>,
    interim: Vec<u16>,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<Answer, String> {
    let (_, fields) = split_head(&head);
    let status = status_of(&start)?;
    let version = start.split(' ').next().unwrap_or_default().to_string();
    let bodiless = call.method == "HEAD" || matches!(status, 204 | 304);
    let (body, trailers, end) = if bodiless {
        (Vec::new(), Vec::new(), End::Framed)
    } else if has_token(&fields, "transfer-encoding", "chunked") {
        conn.read_chunked(seen)
    } else if let Some(length) = content_length(&fields) {
        let (body, end) = conn.read_exact_body(length, seen);
        (body, Vec::new(), end)
    } else {
        let (body, end) = conn.read_to_close(seen);
        (body, Vec::new(), end)
    };
    Ok(Answer {
        interim,
        version,
        status,
        fields,
        body,
        trailers,
        end,
    })
}

fn status_of(start: &str) -> Result<u16, String> {
    start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {start:?}"))
}
