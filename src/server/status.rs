//! The status endpoints: `/status`, `/status.json` and `/metrics`.
//!
//! `/status` answers exactly `ok`, as Go's wsp does and health checks expect, unless the
//! caller asks for JSON (`Accept: application/json`); `/status.json` always answers JSON.
//! `/metrics` is the Prometheus text format. The counters are [`super::metrics`]'s, the
//! connection counts the pool's; this file only picks the form and answers.

use std::io::Cursor;

use serde::Serialize;
use tiny_http::{Header, Request, Response};

use super::metrics::ClientView;
use super::reply::{plain_response, request_header};
use super::Shared;

/// The content type Prometheus scrapers expect for the text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The body of `/status.json`.
#[derive(Serialize)]
struct StatusBody {
    status: &'static str,
    clients: Vec<ClientView>,
}

/// `/status` (`json`: the path was `/status.json`).
pub fn handle_status(shared: &Shared, request: Request, json: bool) {
    let wants_json =
        json || request_header(&request, "Accept").is_some_and(|a| a.contains("application/json"));
    if !wants_json {
        // Exactly `ok`, no newline: what Go's wsp answers and health checks expect.
        let _ = request.respond(plain_response(200, "ok".into()));
        return;
    }
    let body = StatusBody {
        status: "ok",
        clients: shared.metrics.views(shared.hub.clients()),
    };
    let text = serde_json::to_string_pretty(&body).unwrap_or_default() + "\n";
    let _ = request.respond(typed(text, "application/json"));
}

/// `/metrics`.
pub fn handle_metrics(shared: &Shared, request: Request) {
    let clients = shared.metrics.views(shared.hub.clients());
    let mut text = shared.metrics.render(&clients);
    let name = "wsp_client_inflight_capped_total";
    text.push_str(&format!(
        "# HELP {name} Times a request passed over a client at clientmaxinflight.\n\
         # TYPE {name} counter\n{name} {}\n",
        shared.hub.capped()
    ));
    let _ = request.respond(typed(text, PROMETHEUS_CONTENT_TYPE));
}

fn typed(body: String, content_type: &str) -> Response<Cursor<Vec<u8>>> {
    let mut response = Response::from_data(body);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        response.add_header(h);
    }
    response
}
