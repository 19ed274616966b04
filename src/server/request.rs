//! `/request`: check the caller's request, turn it into a request head, find a connection.
//!
//! Every refusal here is wsp's: status 526 and a one-line text, except a caller that
//! fails [`crate::auth`] (401). What happens once a connection is found is
//! [`super::relay`]'s job.

use std::net::SocketAddr;
use std::time::Instant;

use tiny_http::Request;

use super::pool::{AcquireError, Choice};
use super::relay::{self, Outcome};
use super::{text_response, Shared, STATUS_PROXY_ERROR};
use crate::headers::{canonical_key, connection_tokens, is_hop_by_hop, Headers};
use crate::protocol::RequestHead;

/// How many connections one request may try, when the ones before failed in a way that
/// makes trying again safe (see [`relay::Outcome::Retry`]).
pub const MAX_ATTEMPTS: usize = 4;

/// The header naming where to send the request.
pub const DESTINATION_HEADER: &str = "X-PROXY-DESTINATION";

/// The header naming the client (its greeting id) that must relay the request; without
/// it, the least busy client does.
pub const CLIENT_HEADER: &str = "X-PROXY-CLIENT";

/// The caller's credentials when `auth` is configured; consumed here, never forwarded.
pub const AUTHORIZATION_HEADER: &str = "Authorization";

/// Relays one `/request` call, answering the caller in every case.
pub fn handle_request(shared: &Shared, mut request: Request) {
    let arrival = Instant::now();
    // Without `auth` (the default) the caller's headers are not even looked at.
    if shared.config.auth.is_enabled() {
        let credentials = super::request_header(&request, AUTHORIZATION_HEADER);
        if let Err(refused) = shared.config.auth.check(credentials.as_deref()) {
            log::info!("/request from {:?}: {refused}", request.remote_addr());
            return unauthorized(shared, request, &refused.to_string());
        }
    }
    let head = match request_head(&request, shared.config.auth.is_enabled()) {
        Ok(head) => head,
        Err(text) => return refuse(request, text),
    };
    if let Err(e) = head.validate() {
        let text = format!("Bad request: {e}");
        let _ = request.respond(text_response(400, &text));
        return;
    }
    if let Err(denied) = shared
        .config
        .rules
        .check(&head.method, &head.url, &head.header)
    {
        log::info!("{} {}: {denied}", head.method, head.url);
        return refuse(request, &denied.to_string());
    }
    let only = super::request_header(&request, CLIENT_HEADER).filter(|id| !id.is_empty());
    let mut failed_client = None;
    for _ in 0..MAX_ATTEMPTS {
        let deadline = arrival + shared.config.timeout;
        let choice = Choice {
            only: only.as_deref(),
            avoid: failed_client.as_deref(),
        };
        let lease = match shared.hub.acquire(deadline, choice) {
            Ok(lease) => lease,
            Err(AcquireError::NoClient) => return busy(shared, request, "No proxy available"),
            Err(AcquireError::UnknownClient) => {
                let id = only.as_deref().unwrap_or_default();
                return refuse(request, &format!("No client \"{id}\" connected"));
            }
            Err(AcquireError::Timeout) => {
                return busy(shared, request, "Unable to get a proxy connection")
            }
        };
        match relay::relay(shared, lease, &head, request, arrival) {
            Outcome::Answered => return,
            Outcome::Retry(again, client) => {
                request = again;
                failed_client = Some(client);
            }
        }
    }
    refuse(
        request,
        "Unable to relay request: every connection tried failed",
    );
}

/// No connection to be had: wsp's 526, or a 503 that tells when to try again.
fn busy(shared: &Shared, request: Request, text: &str) {
    let response = text_response(shared.config.busy_status, text);
    let _ = match shared.config.busy_status {
        503 => request.respond(super::retry_later(response)),
        _ => request.respond(response),
    };
}

fn refuse(request: Request, text: &str) {
    let _ = request.respond(text_response(STATUS_PROXY_ERROR, text));
}

/// 401 with one `WWW-Authenticate` challenge per scheme the server accepts.
fn unauthorized(shared: &Shared, request: Request, text: &str) {
    let mut response = text_response(401, text);
    for challenge in shared.config.auth.challenges() {
        if let Ok(h) = tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], challenge) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

/// Message 1 for a caller's request, or the text of a 526 refusal. `Authorization` is
/// left out when `auth_enabled` (the credentials were for us).
fn request_head(request: &Request, auth_enabled: bool) -> Result<RequestHead, &'static str> {
    let destination = super::request_header(request, DESTINATION_HEADER)
        .filter(|d| !d.is_empty())
        .ok_or("Missing X-PROXY-DESTINATION header")?;
    check_destination(&destination)?;
    Ok(RequestHead {
        method: request.method().as_str().to_string(),
        url: destination,
        header: with_forwarded_for(
            forwarded_headers(request, auth_enabled),
            request.remote_addr(),
        ),
        content_length: content_length(request),
    })
}

/// Refuses a destination the client could not or should not call: not an absolute
/// URL, another scheme than http(s), credentials in the URL (they would travel in the
/// JSON head and the logs; send an `Authorization` header instead), or no host.
fn check_destination(destination: &str) -> Result<(), &'static str> {
    let url =
        url::Url::parse(destination).map_err(|_| "Unable to parse X-PROXY-DESTINATION header")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("X-PROXY-DESTINATION must be an http:// or https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("X-PROXY-DESTINATION must not contain user:password@");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("X-PROXY-DESTINATION has no host");
    }
    Ok(())
}

/// The caller's headers in Go's form, without `Host` (the client sets it from the URL),
/// hop-by-hop headers, `X-PROXY-CLIENT` (ours; a Go client would pass it on), and
/// `Authorization` when `auth_enabled`.
fn forwarded_headers(request: &Request, auth_enabled: bool) -> Headers {
    let connection = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str());
    let tokens = connection_tokens(connection);
    let mut headers = Headers::new();
    for h in request.headers() {
        let name = h.field.as_str().as_str();
        // tiny_http answered any `Expect: 100-continue` itself.
        let ours =
            h.field.equiv(CLIENT_HEADER) || (auth_enabled && h.field.equiv(AUTHORIZATION_HEADER));
        if ours || h.field.equiv("Host") || h.field.equiv("Expect") || is_hop_by_hop(name, &tokens)
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
    let declared = super::request_header(request, "Content-Length");
    match declared.and_then(|v| v.trim().parse().ok()) {
        Some(n) => n,
        None if super::request_header(request, "Transfer-Encoding").is_some() => -1,
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
    use super::check_destination;

    #[test]
    fn destinations_are_checked() {
        for ok in ["http://api:8080/x?y=1", "https://10.0.0.1/", "HTTP://Api/"] {
            assert_eq!(check_destination(ok), Ok(()), "{ok}");
        }
        let refused = [
            ("/relative/path", "Unable to parse"),
            ("api:8080/x", "must be an http"),
            ("ftp://api/file", "must be an http"),
            ("file:///etc/passwd", "must be an http"),
            ("http://user:pw@api/", "must not contain user:password@"),
            ("http://user@api/", "must not contain user:password@"),
            ("http://", "Unable to parse"),
        ];
        for (bad, why) in refused {
            let got = check_destination(bad).err().unwrap_or_default();
            assert!(got.contains(why), "{bad}: {got}");
        }
    }
}
