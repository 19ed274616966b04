//! The answers the server makes itself, and the request header they are often chosen by.
//!
//! Every handler answers its refusals and failures through these, so they all take the
//! one form of [`crate::answer`]: status, `text/plain`, the message and a newline. What
//! is relayed from a client is [`super::respond`]'s, not this file's.

use std::io;

use tiny_http::{Header, Request, Response};

/// The status wsp answers when it refuses or fails to relay a request, or a registration.
pub const STATUS_PROXY_ERROR: u16 = 526;

/// wsp's plain-text answer: the message and a newline ([`crate::answer`]).
pub fn text_response(status: u16, text: &str) -> Response<io::Cursor<Vec<u8>>> {
    plain_response(status, crate::answer::body(text))
}

/// Adds `Retry-After: 1` to a 503: the caller, or a load balancer, may try again soon.
pub fn retry_later<R: io::Read>(mut response: Response<R>) -> Response<R> {
    if let Ok(h) = Header::from_bytes(&b"Retry-After"[..], &b"1"[..]) {
        response.add_header(h);
    }
    response
}

/// wsp's 526 with `text`: a request refused, or that could not be relayed.
pub fn refuse(request: Request, text: &str) {
    let _ = request.respond(text_response(STATUS_PROXY_ERROR, text));
}

/// No connection to be had: `busy_status` (wsp's 526 by default), and when it is 503,
/// when to try again.
pub fn busy(request: Request, busy_status: u16, text: &str) {
    let response = text_response(busy_status, text);
    let _ = match busy_status {
        503 => request.respond(retry_later(response)),
        _ => request.respond(response),
    };
}

/// `body` as it is, under wsp's plain-text `Content-Type`.
pub fn plain_response(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    let mut response = Response::from_data(body).with_status_code(status);
    let content_type = crate::answer::CONTENT_TYPE.as_bytes();
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], content_type) {
        response.add_header(h);
    }
    response
}

/// The first value of a request header.
pub fn request_header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}
