//! Performing a relayed request against the internal API with ureq.
//!
//! One agent for the whole client, so upstream connections are kept alive and reused.
//! It is set up to be a transparent proxy: it follows no redirects, does no
//! decompression, adds no `Accept`/`User-Agent`/`Accept-Encoding` of its own, and treats
//! 4xx/5xx as ordinary responses. Status, headers and body bytes reach the caller as the
//! internal API sent them.

use std::io::Read;
use std::time::Duration;

use ureq::http;
use ureq::{Agent, SendBody};

use crate::headers::{canonical_key, connection_tokens, is_hop_by_hop, Headers};
use crate::protocol::{RequestHead, ResponseHead};

/// How long connecting to an internal API may take.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Request headers that belong to wsp, not to the internal API.
const WSP_HEADERS: [&str; 2] = ["x-proxy-destination", "x-secret-key"];

/// The ureq agent every connection of this client shares.
pub fn agent() -> Agent {
    Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .accept("")
        .user_agent("")
        .accept_encoding("")
        .allow_non_standard_methods(true)
        .timeout_connect(Some(UPSTREAM_CONNECT_TIMEOUT))
        .no_delay(true)
        .build()
        .into()
}

/// A response from the internal API: its head for message 3 and its body for message 4.
pub struct Upstream {
    pub head: ResponseHead,
    pub body: ureq::BodyReader<'static>,
}

/// Sends the request, its body streamed from `body`, and returns the response as soon
/// as its head has arrived.
///
/// # Errors
/// The text of a 527 answer: a bad URL or scheme, a connection failure, a broken body.
pub fn execute(agent: &Agent, head: &RequestHead, body: &mut dyn Read) -> Result<Upstream, String> {
    let (builder, with_body) = request_builder(head)?;
    let fail = |e: &dyn std::fmt::Display| format!("{} {}: {e}", head.method, head.url);
    let response = if with_body {
        let request = builder.body(SendBody::from_reader(body));
        agent.run(request.map_err(|e| fail(&e))?)
    } else {
        agent.run(builder.body(()).map_err(|e| fail(&e))?)
    }
    .map_err(|e| fail(&e))?;
    let (parts, body) = response.into_parts();
    let header = response_headers(&parts.headers);
    let content_length = crate::headers::first(&header, "Content-Length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    Ok(Upstream {
        head: ResponseHead {
            status: parts.status.as_u16(),
            header,
            content_length,
        },
        body: body.into_reader(),
    })
}

/// The request to send without its body, and whether a body goes with it: none for
/// HEAD and CONNECT, nor for an empty body on methods that do not expect one.
fn request_builder(head: &RequestHead) -> Result<(http::request::Builder, bool), String> {
    let url = url::Url::parse(&head.url).map_err(|e| format!("bad URL {:?}: {e}", head.url))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("unsupported protocol scheme {:?}", url.scheme()));
    }
    let tokens = connection_tokens(
        head.header
            .get("Connection")
            .into_iter()
            .flatten()
            .map(String::as_str),
    );
    let mut builder = http::Request::builder()
        .method(head.method.as_str())
        .uri(head.url.as_str());
    for (name, values) in &head.header {
        let lower = name.to_ascii_lowercase();
        if lower == "host" || lower == "content-length" || WSP_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        if is_hop_by_hop(name, &tokens) {
            continue;
        }
        for value in values {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let with_body = match head.body_len() {
        _ if matches!(head.method.as_str(), "HEAD" | "CONNECT") => false,
        Some(0) if !matches!(head.method.as_str(), "POST" | "PUT" | "PATCH") => false,
        Some(n) => {
            builder = builder.header("Content-Length", n);
            true
        }
        None => true,
    };
    Ok((builder, with_body))
}

/// Response headers in Go's form, without hop-by-hop ones.
fn response_headers(headers: &http::HeaderMap) -> Headers {
    let tokens = connection_tokens(
        headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let mut out = Headers::new();
    for (name, value) in headers {
        if is_hop_by_hop(name.as_str(), &tokens) {
            continue;
        }
        // Values are bytes; non-UTF-8 ones cannot travel in JSON text.
        let Ok(value) = value.to_str() else {
            log::debug!("dropping non-ASCII response header {name}");
            continue;
        };
        out.entry(canonical_key(name.as_str()))
            .or_default()
            .push(value.to_string());
    }
    out
}
