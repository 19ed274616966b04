//! One exchange over a leased connection: send messages 1 and 2, read 3, stream 4 to the
//! caller.
//!
//! The caller always gets an HTTP answer: 526 with the error text when the exchange fails
//! before the response head (504 when the client stayed silent past `requesttimeout`),
//! unless [`super::retry`] sends the request over another connection,
//! and a cut connection when it fails mid-body (the only honest signal left once a
//! status line has gone out). The connection goes back to the pool
//! only when its exchange ended exactly at a message boundary; otherwise it is dropped.
//!
//! Here the outcome of a relayed request is known, so here it is counted in the
//! [`super::metrics`] and written to the access log (one `info` line per request).

use std::io::Read;
use std::time::Instant;

use tiny_http::{HTTPVersion, Method, Request};

use super::capture::{Body, Keeper};
use super::connection::Stream;
use super::metrics::{ClientStats, Exchange};
use super::pool::Lease;
use super::reply::{text_response, STATUS_PROXY_ERROR};
use super::respond::{self, SendError, Sent};
use super::Shared;
use crate::headers::{connection_tokens_of, is_hop_by_hop, Headers};
use crate::protocol::head::{to_json, MAX_HEAD_LEN};
use crate::protocol::ws::is_timeout_kind;
use crate::protocol::{Error, RequestHead, ResponseHead, WsConn};

/// Most body bytes read and thrown away to bring a connection back to a message boundary
/// when the caller did not want the body (HEAD, 204, 304).
pub const MAX_SKIPPED_BODY: u64 = 64 * 1024;

/// An exchange that failed before the response head: where it stood, and why. Whether
/// it may be tried again over another connection is [`super::retry`]'s call.
#[derive(Debug)]
pub struct Failure {
    pub stage: Stage,
    pub error: Error,
}

/// A request sent whose response head came back: the caller is yet to get it ([`answer`]).
pub struct Started {
    response_head: ResponseHead,
    /// The request body bytes sent to the client.
    bytes_in: u64,
    /// Its first bytes, for the console (`inspect`).
    request_body: Option<Body>,
}

impl Started {
    /// The status the client answered.
    pub fn status(&self) -> u16 {
        self.response_head.status
    }

    /// The head the client answered.
    pub fn head(&self) -> &ResponseHead {
        &self.response_head
    }
}

/// Sends `request` over the leased connection (messages 1 and 2) and reads the response
/// head (message 3). The caller is not answered here: [`answer`] or [`answer_failure`]
/// does it, unless the request goes over another connection.
/// With `keeper`, the body's first bytes are kept for the console.
pub fn send(
    lease: &mut Lease<'_>,
    head: &RequestHead,
    request: &mut Request,
    keeper: Option<Keeper>,
) -> Result<Started, Failure> {
    let conn = lease.conn();
    match send_request(&mut conn.ws, head, request, keeper) {
        Ok((response_head, bytes_in, request_body)) => Ok(Started {
            response_head,
            bytes_in,
            request_body,
        }),
        Err((stage, error)) => {
            log::warn!(
                "{} {} via {}: {error}",
                head.method,
                head.url,
                conn.client_id
            );
            Err(Failure { stage, error })
        }
    }
}

/// Streams the response [`send`] started to the caller. `arrival` is when the request
/// came, for the latency counted and logged.
pub fn answer(
    shared: &Shared,
    mut lease: Lease<'_>,
    head: &RequestHead,
    request: Request,
    started: Started,
    arrival: Instant,
) {
    let client_id = lease.conn().client_id.clone();
    let Started {
        response_head,
        bytes_in,
        request_body,
    } = started;
    let exchange = Exchange {
        bytes_in,
        caller: request.remote_addr().copied(),
        request_body,
        ..exchange(head, &client_id)
    };
    stream_response(shared, lease, &response_head, request, (exchange, arrival));
}

/// Answers the caller of an exchange that failed before its response head (526, or 504
/// for a silent client, or the caller's own fault), and counts it; the connection is
/// dropped.
pub fn answer_failure(
    shared: &Shared,
    mut lease: Lease<'_>,
    head: &RequestHead,
    request: Request,
    error: &Error,
    arrival: Instant,
) {
    let conn = lease.conn();
    let (status, text) = failure(shared, &conn.client_id, error);
    let caller = request.remote_addr().copied();
    let _ = request.respond(text_response(status, &text));
    let exchange = Exchange {
        status,
        ok: false,
        caller,
        ..exchange(head, &conn.client_id)
    };
    account(shared, &conn.stats, exchange, arrival);
}

/// An exchange of `head` over `client_id`'s connection, as yet with nothing to show.
fn exchange<'a>(head: &'a RequestHead, client_id: &'a str) -> Exchange<'a> {
    Exchange {
        method: &head.method,
        destination: &head.url,
        client_id,
        ok: true,
        request_header: Some(&head.header),
        ..Exchange::default()
    }
}

/// Counts a finished exchange, its duration measured from `arrival` to now, and writes
/// its access-log line.
fn account(shared: &Shared, stats: &ClientStats, exchange: Exchange<'_>, arrival: Instant) {
    let exchange = Exchange {
        duration: arrival.elapsed(),
        ..exchange
    };
    shared.metrics.record(stats, &exchange);
    if let Some(capture) = &shared.capture {
        capture.record(&exchange);
    }
    log::info!("{exchange}");
}

/// Counts the bytes read through it, and keeps the first ones for the console.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    bytes: u64,
    keeper: Option<Keeper>,
}

impl<'a> Counted<'a> {
    fn new(inner: &'a mut dyn Read, keeper: Option<Keeper>) -> Self {
        Counted {
            inner,
            bytes: 0,
            keeper,
        }
    }
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if let Some(keeper) = &mut self.keeper {
            keeper.keep(&buf[..n]);
        }
        Ok(n)
    }
}

/// Message 4 to the caller under the relayed head; the connection goes back to the pool
/// only if the message was read to its end.
fn stream_response(
    shared: &Shared,
    mut lease: Lease<'_>,
    response_head: &ResponseHead,
    request: Request,
    (exchange, arrival): (Exchange<'_>, Instant),
) {
    let status = response_head.status;
    let (headers, declared) = response_headers(&response_head.header);
    // A head without `Content-Length` (a client's own 527) may still give the length.
    let length = declared.or_else(|| u64::try_from(response_head.content_length).ok());
    // Taken before the request becomes a writer: a body cut short must end the caller's
    // connection (below).
    let caller_connection = request.connection_handle();
    let caller_head = respond::ResponseHead {
        status,
        headers: &headers,
        length,
        head_request: *request.method() == Method::Head,
        http10: *request.http_version() == HTTPVersion(1, 0),
    };
    let mut out = request.into_writer();
    let conn = lease.conn();
    let stats = conn.stats.clone();
    let body_ready = conn.ws.has_buffered();
    let mut body = conn.ws.body_reader();
    let keeper = shared.keeper();
    let mut counted = Counted::new(&mut body, keeper);
    let sent = respond::send(&mut *out, &caller_head, &mut counted, body_ready);
    let bytes_out = counted.bytes;
    let response_body = counted.keeper.map(Keeper::into_body);
    let finished = body.is_done()
        || (matches!(sent, Ok(Sent::NoBody)) && body.skip_rest(MAX_SKIPPED_BODY).unwrap_or(false));
    if let Err(SendError::BeforeHead(e)) = &sent {
        answer_error(
            &mut *out,
            &caller_head,
            &format!("Unable to relay request: {e}"),
        );
    }
    drop(out);
    if let Err(e) = &sent {
        let (method, url) = (exchange.method, exchange.destination);
        log::warn!("{method} {url} via {}: {status}, {e}", exchange.client_id);
    }
    let status = match &sent {
        Err(SendError::BeforeHead(_)) => STATUS_PROXY_ERROR,
        _ => status,
    };
    let exchange = Exchange {
        status,
        bytes_out,
        ok: sent.is_ok(),
        response_header: Some(&response_head.header),
        response_body,
        ..exchange
    };
    account(shared, &stats, exchange, arrival);
    // A body ended by closing, or cut short: the caller must see the connection end,
    // or it would wait for more.
    if matches!(sent, Ok(Sent::CloseToEnd) | Err(SendError::Body(_))) {
        if let Some(handle) = &caller_connection {
            let _ = handle.shutdown();
        }
    }
    if finished {
        lease.release();
    }
}

/// The status and text the caller gets for an exchange that failed before a response
/// head: whose fault it was, in words.
fn failure(shared: &Shared, client_id: &str, error: &Error) -> (u16, String) {
    match error {
        Error::BodySource(e) if is_timeout_kind(e.kind()) => (
            408,
            "wsp server: the request body stopped coming from the caller".into(),
        ),
        Error::BodySource(e) => (
            400,
            format!("wsp server: reading the request body from the caller failed: {e}"),
        ),
        e if e.is_timeout() => (
            504,
            format!(
                "wsp server: no answer from client {client_id} within {} ms (requesttimeout)",
                shared.config().request_timeout.as_millis()
            ),
        ),
        e => (STATUS_PROXY_ERROR, format!("Unable to relay request: {e}")),
    }
}

/// wsp's 526 with `text`, written straight to the caller (the request was turned into
/// a writer already).
fn answer_error(out: &mut dyn std::io::Write, relayed: &respond::ResponseHead<'_>, text: &str) {
    let text = crate::answer::body(text);
    let headers = [(
        "Content-Type".to_string(),
        crate::answer::CONTENT_TYPE.to_string(),
    )];
    let head = respond::ResponseHead {
        status: STATUS_PROXY_ERROR,
        headers: &headers,
        length: Some(text.len() as u64),
        ..*relayed
    };
    let _ = respond::send(out, &head, &mut text.as_bytes(), true);
}

/// Where a failed exchange stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Sending the head of a request with a body, before any of the body was read.
    Head,
    /// Sending the request (the rest of it).
    Sending,
    /// Waiting for the response head.
    Receiving,
}

/// Messages 1 and 2 out, message 3 in.
fn send_request(
    ws: &mut WsConn<Stream>,
    head: &RequestHead,
    request: &mut Request,
    keeper: Option<Keeper>,
) -> Result<(ResponseHead, u64, Option<Body>), (Stage, Error)> {
    let sending = |e| (Stage::Sending, e);
    ws.write_text(&to_json(head)).map_err(sending)?;
    if head.body_len() != Some(0) {
        // Out before the body is touched: a connection found dead here costs the caller
        // nothing, and the request, body and all, can go over another one.
        ws.flush().map_err(|e| (Stage::Head, e))?;
    }
    let mut body = Counted::new(request.as_reader(), keeper);
    let bytes_in = ws.write_body(&mut body, head.body_len()).map_err(sending)?;
    let request_body = body.keeper.map(Keeper::into_body);
    let receiving = |e| (Stage::Receiving, e);
    let text = ws
        .read_text(MAX_HEAD_LEN, "a response head")
        .map_err(receiving)?;
    let response_head = ResponseHead::parse_for(&text, head).map_err(receiving)?;
    Ok((response_head, bytes_in, request_body))
}

/// The response headers for the caller, without hop-by-hop ones, and the body length
/// taken from `Content-Length` (written again from the length by [`respond`]).
fn response_headers(headers: &Headers) -> (Vec<(String, String)>, Option<u64>) {
    let tokens = connection_tokens_of(headers);
    let mut length = None;
    let mut out = Vec::new();
    for (name, values) in headers {
        if name == "Content-Length" {
            length = values.first().and_then(|v| v.trim().parse().ok());
        } else if !is_hop_by_hop(name, &tokens) {
            out.extend(values.iter().map(|v| (name.clone(), v.clone())));
        }
    }
    (out, length)
}
