//! Performing a relayed request against the internal API with ureq.
//!
//! Each WebSocket connection has an agent of its own, which keeps its upstream
//! connections alive and reuses them. A connection performs one request at a time, so
//! its agent needs only one idle upstream connection per internal API; and agents of
//! their own never wait for each other. (One agent shared by every connection thread
//! serialized them: ureq checks a pooled connection while holding its pool's lock, twice
//! per request; its connections are [`super::upstream`]'s, whose check is one system
//! call instead of ureq's three.) The agent is set up to be a transparent proxy: it follows no redirects, does no
//! decompression, adds no `Accept`/`User-Agent`/`Accept-Encoding` of its own, and treats
//! 4xx/5xx as ordinary responses. Status, headers and body bytes reach the caller as the
//! internal API sent them. It gives up on an internal API silent for `requesttimeout`
//! (before its response head, or between two reads or writes of a body).

use std::io::Read;
use std::time::Duration;

use ureq::http;
use ureq::unversioned::transport::Connector;
use ureq::{Agent, SendBody};

use super::tls::Tls;
use super::upstream::{ResolveOnDial, UpstreamConnector};
use crate::config::ClientConfig;
use crate::headers::{
    canonical_key, connection_tokens, connection_tokens_of, is_hop_by_hop, Headers,
};
use crate::protocol::{RequestHead, ResponseHead};

/// How long connecting to an internal API may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Request headers that belong to wsp, not to the internal API (a Go server passes them
/// on).
const WSP_HEADERS: [&str; 3] = ["x-proxy-destination", "x-secret-key", "x-proxy-client"];

/// The status a client answers when it cannot perform a request (Go's wsp).
pub const STATUS_CLIENT_ERROR: u16 = 527;
/// The status when the internal API did not answer in time.
const STATUS_TIMEOUT: u16 = 504;

/// A request that could not be performed: the status and text of the answer.
#[derive(Debug)]
pub struct Failed {
    pub status: u16,
    pub text: String,
}

/// Idle upstream connections an agent keeps, in all: one per internal API a connection
/// calls, for that many of them.
const AGENT_IDLE_CONNECTIONS: usize = 8;

/// The buffer an upstream connection reads into: the longest response head ureq accepts
/// (its `max_response_header_size`), and a read of a bulk body. ureq's default, 128 KiB,
/// made each connection that had served a request hold 256 KiB with the output buffer:
/// after a burst of 64 callers the client stayed 7 MiB above its idle size.
const UPSTREAM_INPUT_BUFFER: usize = 64 * 1024;

/// The buffer a request is written through: ureq writes the head a line at a time, so it
/// bounds the longest line (the request line, or one header) that can reach an internal
/// API. Twice tiny_http's limit on a line, for heads from a Go server, which allows longer.
const UPSTREAM_OUTPUT_BUFFER: usize = 16 * 1024;

/// The ureq agent of one WebSocket connection, trusting for `https://` what `tls` does.
/// Its connections are TCP, with `tls`'s shared rustls step for `https://` (no proxy is
/// ever configured, so ureq's proxy steps are left out).
pub fn agent(config: &ClientConfig, tls: &Tls) -> Agent {
    let timeout = Some(config.request_timeout);
    let config = Agent::config_builder()
        .max_idle_connections(AGENT_IDLE_CONNECTIONS)
        .max_idle_connections_per_host(1)
        .max_redirects(0)
        .http_status_as_error(false)
        .accept("")
        .user_agent("")
        .accept_encoding("")
        .allow_non_standard_methods(true)
        .timeout_connect(Some(UPSTREAM_CONNECT_TIMEOUT))
        // Per read, not per response: a fixed time-out is set on the socket once, where a
        // deadline for the whole response head would be set again at every read.
        .timeout_per_read(timeout)
        .timeout_per_write(timeout)
        .no_delay(true)
        .input_buffer_size(UPSTREAM_INPUT_BUFFER)
        .output_buffer_size(UPSTREAM_OUTPUT_BUFFER)
        .tls_config(tls.upstream.clone())
        .build();
    let connector = ().chain(UpstreamConnector::default()).chain(tls.connector.clone());
    Agent::with_parts(config, connector, ResolveOnDial)
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
/// A 504 answer when the internal API timed out, else a 527 one: a bad URL or scheme,
/// a connection failure, a broken body.
pub fn execute(agent: &Agent, head: &RequestHead, body: &mut dyn Read) -> Result<Upstream, Failed> {
    let fail = |e: &dyn std::fmt::Display| Failed {
        status: STATUS_CLIENT_ERROR,
        text: format!("{} {}: {e}", head.method, head.url),
    };
    let (builder, with_body) = request_builder(head).map_err(|e| fail(&e))?;
    let response = if with_body {
        let request = builder.body(SendBody::from_reader(body));
        agent.run(request.map_err(|e| fail(&e))?)
    } else {
        agent.run(builder.body(()).map_err(|e| fail(&e))?)
    };
    let response = match response {
        Ok(response) => response,
        Err(ureq::Error::Timeout(which)) => return Err(timed_out(agent, head, which)),
        Err(e) => return Err(fail(&e)),
    };
    let (parts, body) = response.into_parts();
    let header = response_headers(&parts.headers).map_err(|e| fail(&e))?;
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

/// The 504 answer for a request the internal API did not answer in time.
fn timed_out(agent: &Agent, head: &RequestHead, which: ureq::Timeout) -> Failed {
    let what = match which {
        ureq::Timeout::Connect => format!(
            "cannot connect to the internal API within {} ms",
            UPSTREAM_CONNECT_TIMEOUT.as_millis()
        ),
        _ => format!(
            "no answer from the internal API within {} ms (requesttimeout)",
            agent
                .config()
                .timeout_per_read()
                .unwrap_or_default()
                .as_millis()
        ),
    };
    Failed {
        status: STATUS_TIMEOUT,
        text: format!("wsp client: {what}: {} {}", head.method, head.url),
    }
}

/// The request to send without its body, and whether a body goes with it: none for
/// HEAD and CONNECT, nor for an empty body on methods that do not expect one.
fn request_builder(head: &RequestHead) -> Result<(http::request::Builder, bool), String> {
    // Parsed once, as ureq will use it (the `url` crate's parse, with its host name
    // processing, cost a tenth of the client's user time per request).
    let uri: http::Uri = head
        .url
        .parse()
        .map_err(|e| format!("bad URL {:?}: {e}", head.url))?;
    match uri.scheme_str() {
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => {}
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => {}
        Some(scheme) => return Err(format!("unsupported protocol scheme {scheme:?}")),
        None => return Err(format!("bad URL {:?}: not an absolute URL", head.url)),
    }
    let tokens = connection_tokens_of(&head.header);
    let mut builder = http::Request::builder()
        .method(head.method.as_str())
        .uri(uri);
    for (name, values) in &head.header {
        let ours = ["host", "content-length"].iter().chain(&WSP_HEADERS);
        if ours.into_iter().any(|h| name.eq_ignore_ascii_case(h)) {
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

/// Response headers in Go's form, without hop-by-hop ones, nor a `Content-Length` that
/// chunks override.
///
/// # Errors
/// A value that is not UTF-8 (Latin-1 bytes, RFC 9110's obsolete `obs-text`): the wire
/// carries values as JSON text, which cannot hold it as it is, and a header silently
/// dropped or altered would be worse than an answer that says why.
fn response_headers(headers: &http::HeaderMap) -> Result<Headers, String> {
    let tokens = connection_tokens(
        headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // A body framed by chunks overrides any length (RFC 9112 §6.3): a length passed on
    // with it would promise the caller bytes that never come.
    let chunked = headers.contains_key(http::header::TRANSFER_ENCODING);
    let mut out = Headers::new();
    for (name, value) in headers {
        if is_hop_by_hop(name.as_str(), &tokens)
            || (chunked && name == http::header::CONTENT_LENGTH)
        {
            continue;
        }
        let value = std::str::from_utf8(value.as_bytes()).map_err(|e| {
            let at = e.valid_up_to();
            let byte = value.as_bytes().get(at).copied().unwrap_or_default();
            format!(
                "the response header {} is not UTF-8 (byte 0x{byte:02X} at {at}); \
                 wsp relays header values as UTF-8 text only",
                canonical_key(name.as_str())
            )
        })?;
        out.entry(canonical_key(name.as_str()))
            .or_default()
            .push(value.to_string());
    }
    Ok(out)
}
