//! The admin listener (`admin`): the operator console and its JSON API, on an address of
//! its own; nothing here ever answers on the public port.
//!
//! - `/` the console page (embedded: HTML, CSS and JS in one file, no network needed);
//! - `GET /api/requests`, `GET /api/requests/{id}`, `DELETE /api/requests`,
//!   `POST /api/requests/{id}/replay` ([`super::capture`]'s ring, in ngrok's spirit);
//! - `GET /api/clients`, `GET /api/stats`, and `/status.json`, `/metrics` as on the
//!   public port.
//!
//! With `admintoken`, every route but the page wants `Authorization: Bearer <token>`
//! (401 otherwise). The page holds no data: opened as `/?token=<token>`, its script sends
//! the token as that header. No CORS header is ever sent: another site's page cannot read the API, and
//! a replay (the one route with an effect) is a `POST`.

use std::io::{Cursor, Read};
use std::time::Instant;

use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response};

use super::capture::{Capture, Record};
use super::metrics::Exchange;
use super::pool::Choice;
use super::reply::request_header;
use super::{status, Shared};
use crate::protocol::head::{to_json, MAX_HEAD_LEN};
use crate::protocol::{RequestHead, ResponseHead};

/// The console page.
const PAGE: &str = include_str!("../../assets/console.html");

/// Serves one request of the admin listener.
pub fn handle(shared: &Shared, request: Request) {
    let Some(capture) = &shared.capture else {
        return reply(request, 404, json!({"error": "no console"}));
    };
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    // The page holds no data: it is served to anyone, and asks for the token itself.
    if *request.method() == Method::Get && path == "/" {
        return page(request);
    }
    if !authorized(shared, &request) {
        let text = "admin token needed or wrong (Authorization: Bearer <admintoken>)";
        return reply(request, 401, json!({ "error": text }));
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (request.method(), parts.as_slice()) {
        (Method::Get, ["api", "requests"]) => {
            let list: Vec<Value> = capture.list().iter().map(|r| r.summary()).collect();
            reply(request, 200, json!({ "requests": list }));
        }
        (Method::Delete, ["api", "requests"]) => {
            capture.clear();
            let _ = request.respond(Response::empty(204));
        }
        (Method::Get, ["api", "requests", id]) => match find(capture, id) {
            Some(record) => reply(request, 200, record.detail()),
            None => reply(request, 404, json!({"error": format!("no exchange {id}")})),
        },
        (Method::Post, ["api", "requests", id, "replay"]) => match find(capture, id) {
            Some(record) => match replay(shared, capture, &record) {
                Ok(new) => reply(request, 200, json!({"id": new.to_string()})),
                Err((status, why)) => reply(request, status, json!({ "error": why })),
            },
            None => reply(request, 404, json!({"error": format!("no exchange {id}")})),
        },
        (Method::Get, ["api", "clients"]) => reply(request, 200, clients(shared)),
        (Method::Get, ["api", "stats"]) => reply(request, 200, capture.seconds.render()),
        (Method::Get, ["status.json"]) => status::handle_status(shared, request, true),
        (Method::Get, ["metrics"]) => status::handle_metrics(shared, request),
        _ => reply(request, 404, json!({"error": format!("no route {path}")})),
    }
}

/// Whether the request carries the admin token as a bearer token, when one is set.
fn authorized(shared: &Shared, request: &Request) -> bool {
    let config = shared.config();
    let Some(token) = config.console.as_ref().and_then(|c| c.token.as_ref()) else {
        return true;
    };
    request_header(request, "Authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
        .is_some_and(|b| token.matches(&b))
}

fn find(capture: &Capture, id: &str) -> Option<std::sync::Arc<Record>> {
    capture.get(id.parse().ok()?)
}

fn page(request: Request) {
    let mut response = Response::from_string(PAGE);
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        // The page loads nothing from anywhere else, and runs only its own script.
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src 'self' data:",
        ),
    ] {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

/// The clients as the pool and the counters see them.
fn clients(shared: &Shared) -> Value {
    let views = shared.metrics.views(shared.hub.clients());
    let clients: Vec<Value> = views
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "idle": c.idle,
                "busy": c.busy,
                "streams": c.streams,
                "pool_idle_size": c.pool_idle_size,
                "requests": c.requests,
                "errors": c.errors,
                "connected_since": c.connected_since,
            })
        })
        .collect();
    json!({ "clients": clients })
}

fn reply(request: Request, status: u16, body: Value) {
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = Response::from_data(text.into_bytes()).with_status_code(status);
    for (name, value) in [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
    ] {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

/// Sends the recorded request through the tunnel again, as a new exchange: the same
/// method, URL and headers (the real ones, not the redacted ones shown), and its body, which must have been captured
/// whole (a request without a body always is). Returns the new exchange's id.
fn replay(shared: &Shared, capture: &Capture, record: &Record) -> Result<u64, (u16, String)> {
    if record.stream {
        return Err((409, "a stream cannot be replayed".into()));
    }
    let body = match &record.request_body {
        Some(body) if body.whole() => body.bytes.clone(),
        None if record.bytes_in == 0 => Vec::new(),
        _ => {
            let why = "the request body was not captured whole (inspect, inspectbodylimit)";
            return Err((409, why.into()));
        }
    };
    let head = RequestHead {
        method: record.method.clone(),
        url: record.url.clone(),
        header: record.request_headers.clone(),
        content_length: i64::try_from(body.len()).unwrap_or(i64::MAX),
        stream: None,
    };
    let arrival = Instant::now();
    let deadline = arrival + shared.config().timeout;
    let choice = Choice {
        only: None,
        avoid: None,
        streams: false,
    };
    let mut lease = shared
        .hub
        .acquire(deadline, choice)
        .map_err(|e| (503, format!("no connection to replay over: {e:?}")))?;
    let conn = lease.conn();
    let client_id = conn.client_id.clone();
    let stats = conn.stats.clone();
    let ws = &mut conn.ws;
    let failed = |e: crate::protocol::Error| (502, format!("the replay failed: {e}"));
    ws.write_text(&to_json(&head)).map_err(failed)?;
    ws.write_body(&mut Cursor::new(&body), Some(body.len() as u64))
        .map_err(failed)?;
    let text = ws
        .read_text(MAX_HEAD_LEN, "a response head")
        .map_err(failed)?;
    let response = ResponseHead::parse(&text).map_err(failed)?;
    let mut keeper = capture.keeper();
    let mut reader = ws.body_reader();
    let mut buf = [0u8; 16 * 1024];
    let mut bytes_out = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| (502, format!("the replay failed: {e}")))?;
        if n == 0 {
            break;
        }
        bytes_out += n as u64;
        if let Some(keeper) = &mut keeper {
            keeper.keep(&buf[..n]);
        }
    }
    drop(reader);
    lease.release();
    let exchange = Exchange {
        method: &head.method,
        destination: &head.url,
        status: response.status,
        bytes_in: body.len() as u64,
        bytes_out,
        duration: arrival.elapsed(),
        client_id: &client_id,
        ok: true,
        request_header: Some(&head.header),
        response_header: Some(&response.header),
        request_body: record.request_body.clone(),
        response_body: keeper.map(|k| k.into_body()),
        ..Exchange::default()
    };
    shared.metrics.record(&stats, &exchange);
    log::info!("{exchange} replay of #{}", record.id);
    Ok(capture.record(&exchange))
}
