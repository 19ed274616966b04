//! Streams: `CONNECT host:port` in proxy mode (a TCP stream to `host:port`, opened by a
//! wsp client whose `connect` rules allow it), and a caller's WebSocket handshake (to
//! `/request` or in proxy mode), relayed to the internal API as a handshake.
//!
//! The request goes as any other (message 1 with `"Stream":"connect"` or
//! `"websocket"`, and an empty message 2) over a connection of a client that announced
//! streams; its answer (message 3) decides. `200` to a CONNECT, `101` to a handshake:
//! the caller gets `200 Connection Established` or the internal API's `101`, its socket
//! is handed over by tiny_http, and [`crate::tunnel`] carries the bytes, untouched, until
//! both ends are done. Anything else (403 for a destination the client does not allow,
//! 502 when it cannot connect, the internal API's own refusal of the handshake) is
//! answered as a relayed response. The caller's auth and the server's rules apply first,
//! the rules seeing `CONNECT` and `host:port` as method and URL for a CONNECT.

use std::time::Instant;

use tiny_http::{Header, Request, Response, Upgraded, UpgradedStream};

use super::metrics::Exchange;
use super::pool::{Choice, Lease};
use super::reply::{request_header, text_response};
use super::request::{self, Style};
use super::{relay, retry, Shared};
use crate::headers::{connection_tokens, connection_tokens_of, is_hop_by_hop};
use crate::protocol::{RequestHead, ResponseHead, Role, StreamKind};
use crate::tunnel::{self, End, Ends};

/// Relays one `CONNECT`, answering the caller in every case.
pub fn handle_connect(shared: &Shared, request: Request) {
    let arrival = Instant::now();
    let Some(request) = request::authenticate(shared, request, Style::Proxy) else {
        return;
    };
    let target = request.url().to_string();
    if let Err(why) = check_authority(&target) {
        let text = format!("Bad CONNECT target {target:?}: {why}");
        let _ = request.respond(text_response(400, &text));
        return;
    }
    let auth = shared.config().auth.is_enabled();
    let mut head = request::request_head(&request, target, Style::Proxy, auth);
    head.content_length = 0;
    head.stream = Some(StreamKind::Connect);
    open(shared, request, head, arrival);
}

/// Relays a caller's WebSocket handshake (`Upgrade: websocket`) to `destination`, from
/// `/request` or proxy mode, its caller authenticated already; answers in every case.
pub fn handle_upgrade(
    shared: &Shared,
    request: Request,
    destination: String,
    style: Style,
    arrival: Instant,
) {
    let auth = shared.config().auth.is_enabled();
    let mut head = request::request_head(&request, destination, style, auth);
    // The handshake's own hop-by-hop headers, which every other request loses.
    for (name, value) in [("Upgrade", "websocket"), ("Connection", "Upgrade")] {
        head.header
            .insert(name.to_string(), vec![value.to_string()]);
    }
    head.content_length = 0;
    head.stream = Some(StreamKind::WebSocket);
    open(shared, request, head, arrival);
}

/// True for a caller's WebSocket handshake: a GET with `Upgrade: websocket` and
/// `Connection: upgrade` and no body.
pub fn is_websocket_upgrade(request: &Request) -> bool {
    let upgrade = request_header(request, "Upgrade");
    let connection = request_header(request, "Connection").unwrap_or_default();
    *request.method() == tiny_http::Method::Get
        && upgrade.is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
        && connection_tokens([connection.as_str()])
            .iter()
            .any(|t| t == "upgrade")
}

/// Sends a stream request over a connection of a client that announced streams, and
/// carries the stream if the client's answer opens it; answers the caller in every case.
fn open(shared: &Shared, request: Request, head: RequestHead, arrival: Instant) {
    let Some((mut request, only)) = request::admit(shared, request, &head) else {
        return;
    };
    let choice = Choice {
        only: only.as_deref(),
        avoid: None,
        streams: true,
    };
    let deadline = arrival + shared.config().timeout;
    let mut lease = match shared.hub.acquire(deadline, choice) {
        Ok(lease) => lease,
        Err(e) => return retry::no_connection(shared, request, e, only.as_deref()),
    };
    let started = match relay::send(&mut lease, &head, &mut request, None) {
        Ok(started) => started,
        Err(failure) => {
            let error = &failure.error;
            return relay::answer_failure(shared, lease, &head, request, error, arrival);
        }
    };
    let opened = match head.stream {
        Some(StreamKind::WebSocket) => started.status() == 101,
        _ => started.status() == 200,
    };
    if !opened {
        return relay::answer(shared, lease, &head, request, started, arrival);
    }
    let caller = request.remote_addr().copied();
    let hand_over = match head.stream {
        Some(StreamKind::WebSocket) => request.upgrade("websocket", switching(started.head())),
        _ => request.tunnel(),
    };
    match hand_over {
        Ok(upgraded) => carry(shared, lease, upgraded, (&head, caller), arrival),
        // The client is streaming already: the connection is out of step, and dropped.
        Err(e) => log::info!(
            "{} {}: cannot take the socket over: {e}",
            head.method,
            head.url
        ),
    }
}

/// The `101` for the caller: the internal API's headers but its hop-by-hop ones
/// (tiny_http writes `Upgrade` and `Connection` itself).
fn switching(head: &ResponseHead) -> Response<std::io::Empty> {
    let tokens = connection_tokens_of(&head.header);
    let mut response = Response::empty(101);
    for (name, values) in &head.header {
        if is_hop_by_hop(name, &tokens) || name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        for value in values {
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
    }
    response
}

/// The stream itself, the caller's socket handed over: relays until both ends are done.
/// The connection goes back to the pool after a clean end, and is dropped after an
/// aborted one.
fn carry(
    shared: &Shared,
    mut lease: Lease<'_>,
    mut upgraded: Upgraded,
    (head, caller): (&RequestHead, Option<std::net::SocketAddr>),
    arrival: Instant,
) {
    let target = head.url.as_str();
    let conn = lease.conn();
    let client_id = conn.client_id.clone();
    let stats = conn.stats.clone();
    let ws_unread = conn.ws.take_unread();
    let Some(ws) = end_of(conn.ws.get_mut()) else {
        return log::warn!("{target}: client {client_id}'s connection cannot carry a stream");
    };
    let Some(socket) = end_of(&mut upgraded.stream) else {
        return log::warn!("{target}: the caller's connection cannot carry a stream");
    };
    let ends = Ends {
        ws,
        role: Role::Server,
        ws_unread,
        socket,
        early: std::mem::take(&mut upgraded.leftover),
        idle_timeout: shared.config().stream_idle_timeout,
    };
    shared.metrics.stream_opened(&stats);
    let relayed = tunnel::relay(ends);
    let duration = arrival.elapsed();
    let (outcome, unread) = match relayed {
        Ok(done) => done,
        Err(e) => {
            shared.metrics.stream_ended(&stats, false, (0, 0), duration);
            return log::warn!("{target}: cannot start the stream: {e}");
        }
    };
    let clean = outcome.clean();
    let carried = (outcome.sent, outcome.received);
    shared
        .metrics
        .stream_ended(&stats, clean, carried, duration);
    conn.ws.put_unread(unread);
    // The stream set its own time-outs on the socket: the connection's come back.
    let timeout = Some(shared.config().request_timeout);
    let restored = conn.ws.get_ref().tcp().map(|ws| {
        ws.set_read_timeout(timeout)
            .and(ws.set_write_timeout(timeout))
    });
    // The access log's line, as for a request: `in` from the caller, `out` to it.
    let exchange = Exchange {
        method: &head.method,
        destination: target,
        status: if head.stream == Some(StreamKind::WebSocket) {
            101
        } else {
            200
        },
        bytes_in: outcome.sent,
        bytes_out: outcome.received,
        duration,
        client_id: &client_id,
        ok: clean,
        caller,
        request_header: Some(&head.header),
        stream: true,
        ..Exchange::default()
    };
    if let Some(capture) = &shared.capture {
        capture.record(&exchange);
    }
    match &outcome.aborted {
        None => log::info!("{exchange} stream ended"),
        Some(why) => log::info!("{exchange} stream aborted ({why})"),
    }
    if !clean {
        shared.metrics.count_failed(&stats);
    }
    if clean && matches!(restored, Some(Ok(()))) {
        lease.release();
    }
}

/// A stream end over an upgraded connection: its socket, and its TLS session if any.
/// `None` over a Unix socket.
fn end_of(stream: &mut UpgradedStream) -> Option<End<'_>> {
    match stream {
        UpgradedStream::Tcp(socket) => Some(End::plain(socket)),
        UpgradedStream::Tls(tls) => {
            let (session, socket) = tls.session()?;
            Some(End::tls(&mut **session, socket))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Checks a `CONNECT` target is `host:port` (RFC 9110 §9.3.6), an IPv6 host in brackets.
fn check_authority(target: &str) -> Result<(), &'static str> {
    let (host, port) = target.rsplit_once(':').ok_or("expected host:port")?;
    let port: u16 = port
        .parse()
        .map_err(|_| "the port is not a number up to 65535")?;
    if port == 0 {
        return Err("port 0");
    }
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .ok_or("an IPv6 address needs its closing ]")?,
        None => host,
    };
    let bad = |c: char| !(c.is_ascii_alphanumeric() || "-._:".contains(c));
    if host.is_empty() || host.contains(bad) {
        return Err("the host is not a name or an address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_authority;

    #[test]
    fn connect_targets_are_host_and_port() {
        for ok in ["api:443", "10.0.0.1:22", "[::1]:8080", "a-b.c_d:1"] {
            assert_eq!(check_authority(ok), Ok(()), "{ok}");
        }
        for bad in [
            "api",
            "api:",
            ":443",
            "api:0",
            "api:65536",
            "api:x",
            "[::1:80",
            "a b:1",
            "a/b:1",
            "http://api:80",
        ] {
            assert!(check_authority(bad).is_err(), "{bad}");
        }
    }
}
