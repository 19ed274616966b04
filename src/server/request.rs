//! `/request`: check the caller's request and turn it into a request head.
//!
//! Every refusal here is wsp's: status 526 and a one-line text, except a caller that
//! fails [`crate::auth`] (401). Finding a connection, and trying another when one fails,
//! is [`super::retry`]'s job; the exchange itself [`super::relay`]'s. [`dispatch`],
//! everything after the destination is known, is shared with the HTTP proxy mode
//! ([`super::proxy`]), which differs only in where the destination and the credentials
//! are read ([`Style`]).

use std::net::SocketAddr;
use std::time::Instant;

use tiny_http::{HeaderField, Request};

use super::limits::Key;
use super::reply::{refuse, request_header, text_response};
use super::{retry, stream, Shared};
use crate::auth::Refused;
use crate::headers::{canonical_key, connection_tokens, is_hop_by_hop, Headers};
use crate::protocol::RequestHead;
use crate::rules::Side;

/// The header naming where to send the request.
pub const DESTINATION_HEADER: &str = "X-PROXY-DESTINATION";

/// The header naming the client (its greeting id) that must relay the request; without
/// it, the least busy client does.
pub const CLIENT_HEADER: &str = "X-PROXY-CLIENT";

/// The caller's credentials on `/request` when `auth` is configured; consumed here, never
/// forwarded.
pub const AUTHORIZATION_HEADER: &str = "Authorization";

/// The caller's credentials in proxy mode (a hop-by-hop header: never forwarded).
pub const PROXY_AUTHORIZATION_HEADER: &str = "Proxy-Authorization";

/// The two ways of asking for a relay, which differ only in where the destination and
/// the credentials are read and how a caller without credentials is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/request` with `X-PROXY-DESTINATION`; credentials in `Authorization` (then not
    /// forwarded), refused with 401 and `WWW-Authenticate`.
    Endpoint,
    /// An HTTP proxy request, the destination as its absolute-form target; credentials in
    /// `Proxy-Authorization`, refused with 407 and `Proxy-Authenticate`. `Authorization`
    /// is the internal API's and is forwarded; `X-PROXY-DESTINATION` is not.
    Proxy,
}

impl Style {
    /// What the log calls a request of this style.
    fn name(self) -> &'static str {
        match self {
            Style::Endpoint => "/request",
            Style::Proxy => "proxy request",
        }
    }

    /// The header the caller's credentials are read from.
    fn credentials_header(self) -> &'static str {
        match self {
            Style::Endpoint => AUTHORIZATION_HEADER,
            Style::Proxy => PROXY_AUTHORIZATION_HEADER,
        }
    }

    /// The status and challenge header of a refused caller (RFC 9110 §15.5.2, §15.5.8).
    fn refusal(self) -> (u16, &'static str) {
        match self {
            Style::Endpoint => (401, "WWW-Authenticate"),
            Style::Proxy => (407, "Proxy-Authenticate"),
        }
    }

    /// True for a caller's header that is meant for wsp, not the internal API (beside
    /// hop-by-hop ones and `Host`). `X-PROXY-DESTINATION` stays in a `/request` head, as
    /// the Go server sends it (our client drops it); a proxy request has no use for it.
    fn is_ours(self, field: &HeaderField, auth_enabled: bool) -> bool {
        field.equiv(CLIENT_HEADER)
            || match self {
                Style::Endpoint => auth_enabled && field.equiv(AUTHORIZATION_HEADER),
                Style::Proxy => field.equiv(DESTINATION_HEADER),
            }
    }
}

/// Why a destination URL is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadDestination {
    /// Not an absolute URL.
    Unparsable,
    /// Another scheme than http or https.
    Scheme,
    /// `user:password@` in the URL: it would travel in the JSON head and the logs.
    Credentials,
    /// No host to call.
    NoHost,
}

/// Relays one `/request` call, answering the caller in every case.
pub fn handle_request(shared: &Shared, request: Request) {
    let arrival = Instant::now();
    let Some(request) = authenticate(shared, request, Style::Endpoint) else {
        return;
    };
    let destination = match destination(&request) {
        Ok(destination) => destination,
        Err(text) => return refuse(request, text),
    };
    dispatch(shared, request, destination, Style::Endpoint, arrival);
}

/// The `X-PROXY-DESTINATION` value, checked, or the text of a 526 refusal.
fn destination(request: &Request) -> Result<String, &'static str> {
    let mut destination = request_header(request, DESTINATION_HEADER)
        .filter(|d| !d.is_empty())
        .ok_or("Missing X-PROXY-DESTINATION header")?;
    if stream::is_websocket_upgrade(request) {
        destination = as_http(destination);
    }
    check_destination(&destination).map_err(|bad| match bad {
        BadDestination::Unparsable => "Unable to parse X-PROXY-DESTINATION header",
        BadDestination::Scheme => "X-PROXY-DESTINATION must be an http:// or https:// URL",
        BadDestination::Credentials => "X-PROXY-DESTINATION must not contain user:password@",
        BadDestination::NoHost => "X-PROXY-DESTINATION has no host",
    })?;
    Ok(destination)
}

/// A `ws://` or `wss://` URL as the `http://` or `https://` one its handshake goes to.
fn as_http(url: String) -> String {
    let scheme_end = url.find("://").unwrap_or(0);
    match &url[..scheme_end] {
        s if s.eq_ignore_ascii_case("ws") => format!("http{}", &url[scheme_end..]),
        s if s.eq_ignore_ascii_case("wss") => format!("https{}", &url[scheme_end..]),
        _ => url,
    }
}

/// Gives the request back if its caller may use the relay: authenticated (always,
/// without `auth`) and within the caller rate limits (`callerrate`). Otherwise answers
/// it (401 or 407 with the challenges; 429 with `Retry-After`) and gives nothing back.
pub fn authenticate(shared: &Shared, request: Request, style: Style) -> Option<Request> {
    // Without `auth` (the default) the caller's headers are not even looked at.
    if !shared.config().auth.is_enabled() {
        return within_rate(shared, request, None);
    }
    let credentials = request_header(&request, style.credentials_header());
    match shared.config().auth.check(credentials.as_deref()) {
        Ok(()) => within_rate(shared, request, credentials.as_deref()),
        Err(refused) => {
            let name = style.name();
            log::info!("{name} from {:?}: {refused}", request.remote_addr());
            unauthorized(shared, request, style, refused);
            None
        }
    }
}

/// Relays a request whose destination is known and checked: the rules, the choice of a
/// client, and the relay itself, retried over another connection when that is safe
/// ([`retry::relay`]). `arrival` is when the request came.
pub fn dispatch(
    shared: &Shared,
    request: Request,
    destination: String,
    style: Style,
    arrival: Instant,
) {
    if stream::is_websocket_upgrade(&request) {
        return stream::handle_upgrade(shared, request, destination, style, arrival);
    }
    let head = request_head(
        &request,
        destination,
        style,
        shared.config().auth.is_enabled(),
    );
    let Some((request, only)) = admit(shared, request, &head) else {
        return;
    };
    retry::relay(shared, &head, request, only.as_deref(), arrival);
}

/// Checks a request's head as an HTTP stack would (400 otherwise) and against the
/// server's rules (526 otherwise), answering the caller when it is refused. Gives the
/// request back with the client it asks for (`X-PROXY-CLIENT`), if any.
pub(super) fn admit(
    shared: &Shared,
    request: Request,
    head: &RequestHead,
) -> Option<(Request, Option<String>)> {
    if let Err(e) = head.validate() {
        let text = format!("Bad request: {e}");
        let _ = request.respond(text_response(400, &text));
        return None;
    }
    let rules = &shared.config().rules;
    if let Err(refusal) = rules.refusal(Side::Server, &head.method, &head.url, &head.header) {
        log::info!("{refusal}");
        refuse(request, &refusal.to_string());
        return None;
    }
    let only = request_header(&request, CLIENT_HEADER).filter(|id| !id.is_empty());
    Some((request, only))
}

/// Gives the request back if its caller's address, and its identity (`credentials`, with
/// `auth`), have a token left; otherwise answers 429 with `Retry-After`.
fn within_rate(shared: &Shared, request: Request, credentials: Option<&str>) -> Option<Request> {
    let Some(limits) = shared.limits() else {
        return Some(request);
    };
    let address = request.remote_addr().map(|a| Key::Address(a.ip()));
    let identity = credentials.map(|c| limits.identity(c));
    for key in address.into_iter().chain(identity) {
        if let Err(wait) = limits.take(key) {
            shared.metrics.count_rate_limited(key.kind());
            let secs = wait.as_secs_f64().ceil().max(1.0);
            let who = match (key, request.remote_addr()) {
                (Key::Address(ip), _) => ip.to_string(),
                (Key::Identity(_), Some(addr)) => format!("these credentials (from {})", addr.ip()),
                (Key::Identity(_), None) => "these credentials".to_string(),
            };
            let text = format!(
                "wsp server: too many requests from {who}; retry in {secs} s (callerrate, callerburst)"
            );
            let mut response = text_response(429, &text);
            if let Ok(h) = tiny_http::Header::from_bytes(&b"Retry-After"[..], secs.to_string()) {
                response.add_header(h);
            }
            let _ = request.respond(response);
            return None;
        }
    }
    Some(request)
}

/// 401 or 407 with one challenge per scheme the server accepts.
fn unauthorized(shared: &Shared, request: Request, style: Style, refused: Refused) {
    let (status, challenge_header) = style.refusal();
    let mut response = text_response(status, &refused.to_string());
    for challenge in shared.config().auth.challenges() {
        if let Ok(h) = tiny_http::Header::from_bytes(challenge_header.as_bytes(), challenge) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

/// Message 1 for a caller's request to `destination`.
pub(super) fn request_head(
    request: &Request,
    destination: String,
    style: Style,
    auth_enabled: bool,
) -> RequestHead {
    RequestHead {
        method: request.method().as_str().to_string(),
        url: destination,
        header: with_forwarded_for(
            forwarded_headers(request, style, auth_enabled),
            request.remote_addr(),
        ),
        content_length: content_length(request),
        stream: None,
    }
}

/// Refuses a destination the client could not or should not call: not an absolute
/// URL, another scheme than http(s), credentials in the URL (they would travel in the
/// JSON head and the logs; send an `Authorization` header instead), or no host.
pub fn check_destination(destination: &str) -> Result<url::Url, BadDestination> {
    let url = url::Url::parse(destination).map_err(|_| BadDestination::Unparsable)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BadDestination::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadDestination::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BadDestination::NoHost);
    }
    Ok(url)
}

/// The caller's headers in Go's form, without `Host` (the client sets it from the URL),
/// hop-by-hop headers (`Proxy-Authorization` among them), and those meant for wsp
/// ([`Style::is_ours`]).
fn forwarded_headers(request: &Request, style: Style, auth_enabled: bool) -> Headers {
    let connection = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str());
    let tokens = connection_tokens(connection);
    let mut headers = Headers::new();
    for h in request.headers() {
        let name = h.field.as_str().as_str();
        // `Expect: 100-continue` goes on: tiny_http answered the caller's, and the client
        // asks the internal API the same before sending it the body, so an API that turns
        // an upload down early (401, 413) still can.
        if style.is_ours(&h.field, auth_enabled)
            || h.field.equiv("Host")
            || is_hop_by_hop(name, &tokens)
        {
            continue;
        }
        headers
            .entry(canonical_key(name))
            .or_default()
            .push(h.value.as_str().to_string());
    }
    headers
}

/// `ContentLength` as Go computes it: the declared length, -1 for a chunked body, else 0.
fn content_length(request: &Request) -> i64 {
    let declared = request_header(request, "Content-Length");
    match declared.and_then(|v| v.trim().parse().ok()) {
        Some(n) => n,
        None if request_header(request, "Transfer-Encoding").is_some() => -1,
        None => 0,
    }
}

/// Appends the caller's address to `X-Forwarded-For`.
fn with_forwarded_for(mut headers: Headers, caller: Option<&SocketAddr>) -> Headers {
    if let Some(addr) = caller {
        let ip = addr.ip().to_string();
        let values = headers.entry("X-Forwarded-For".to_string()).or_default();
        match values.last_mut() {
            Some(last) => *last = format!("{last}, {ip}"),
            None => values.push(ip),
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::BadDestination::*;
    use super::{as_http, check_destination};

    #[test]
    fn websocket_urls_name_the_http_url_of_their_handshake() {
        assert_eq!(as_http("ws://api/x?y".into()), "http://api/x?y");
        assert_eq!(as_http("WSS://api:8443/".into()), "https://api:8443/");
        assert_eq!(as_http("http://api/".into()), "http://api/");
        assert_eq!(as_http("wsx://api/".into()), "wsx://api/");
        assert_eq!(as_http("no scheme".into()), "no scheme");
    }

    #[test]
    fn destinations_are_checked() {
        for ok in ["http://api:8080/x?y=1", "https://10.0.0.1/", "HTTP://Api/"] {
            assert!(check_destination(ok).is_ok(), "{ok}");
        }
        let refused = [
            ("/relative/path", Unparsable),
            ("api:8080/x", Scheme),
            ("ftp://api/file", Scheme),
            ("file:///etc/passwd", Scheme),
            ("http://user:pw@api/", Credentials),
            ("http://user@api/", Credentials),
            ("http://", Unparsable),
        ];
        for (bad, why) in refused {
            assert_eq!(check_destination(bad).err(), Some(why), "{bad}");
        }
    }
}
