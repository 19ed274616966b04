//! HTTP proxy mode: a request whose target is an absolute URL
//! (`GET http://internal:8081/hello HTTP/1.1`, what `curl -x` sends) is relayed as
//! `/request` relays one with that URL in `X-PROXY-DESTINATION`, through the same
//! [`request::dispatch`]: same checks, rules, client choice (`X-PROXY-CLIENT`), metrics
//! and access log. Only the caller's credentials differ: `Proxy-Authorization`, refused
//! with 407 and `Proxy-Authenticate` ([`Style::Proxy`]).
//!
//! The destination must be an `http://` or `https://` URL (for `https://` the wsp client
//! speaks TLS to the internal API, as for `/request`; the caller's hop stays plain HTTP).
//! Anything else is answered 400. An `X-PROXY-DESTINATION` that names another URL than
//! the target is ambiguous: 400 too; the same URL is accepted, and never forwarded.
//!
//! `CONNECT` (a tunnel to `host:port`, what `curl -p -x` sends, and `curl -x` for an
//! `https://` URL) is [`super::stream`]'s. Which requests come here is decided by the
//! target's form, in `route()` (`server/mod.rs`).

use std::time::Instant;

use tiny_http::Request;

use super::reply::{request_header, text_response};
use super::request::{self, BadDestination, Style, DESTINATION_HEADER};

/// True when a request target is not in origin form (`/path`) nor asterisk form (`*`):
/// an absolute URL, a `CONNECT` authority, or something no server route could match.
pub fn is_proxy_target(target: &str) -> bool {
    !target.starts_with('/') && target != "*"
}

/// Relays one request in absolute form, answering the caller in every case.
pub fn handle_proxy(shared: &super::Shared, request: Request) {
    let arrival = Instant::now();
    let Some(request) = request::authenticate(shared, request, Style::Proxy) else {
        return;
    };
    match destination(&request) {
        Ok(destination) => request::dispatch(shared, request, destination, Style::Proxy, arrival),
        Err(text) => {
            let text = format!("Bad request target: {text}");
            let _ = request.respond(text_response(400, &text));
        }
    }
}

/// The request target as the destination, checked, or why it cannot be one.
fn destination(request: &Request) -> Result<String, &'static str> {
    let target = request.url();
    let url = request::check_destination(target).map_err(|bad| match bad {
        BadDestination::Unparsable => {
            "expected /request, /register, /status or an absolute URL (GET http://host/path)"
        }
        BadDestination::Scheme => "only http:// and https:// URLs are relayed",
        BadDestination::Credentials => {
            "the URL must not contain user:password@ (send Authorization instead)"
        }
        BadDestination::NoHost => "the URL has no host",
    })?;
    let header = request_header(request, DESTINATION_HEADER).filter(|d| !d.is_empty());
    if let Some(header) = header {
        if url::Url::parse(&header).ok() != Some(url) {
            return Err("X-PROXY-DESTINATION names another URL than the request target");
        }
    }
    Ok(target.to_string())
}

#[cfg(test)]
mod tests {
    use super::is_proxy_target;

    #[test]
    fn origin_and_asterisk_forms_are_not_proxy_targets() {
        for origin in ["/", "/request", "/status?x", "*"] {
            assert!(!is_proxy_target(origin), "{origin}");
        }
        for proxy in [
            "http://api/",
            "https://api:8443/x",
            "api:443",
            "ftp://x/",
            "x",
        ] {
            assert!(is_proxy_target(proxy), "{proxy}");
        }
    }
}
