//! `/register`: a client offers one WebSocket connection.
//!
//! The secret key is checked before upgrading (526 `Invalid X-SECRET-KEY` otherwise), the
//! greeting is read within [`GREETING_TIMEOUT`], and the connection goes idle into its
//! client's pool. The thread that ran this then ends: an idle connection needs none.

use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Header, Request, Response};
use tungstenite::handshake::derive_accept_key;

use super::connection::{Connection, Stream};
use super::reply::{request_header as header, text_response, STATUS_PROXY_ERROR};
use super::{Error, Shared};
use crate::protocol::greeting::MAX_GREETING_LEN;
use crate::protocol::ws::CLOSE_PROTOCOL_ERROR;
use crate::protocol::{Greeting, Role, WsConn, STREAMS_HEADER};

/// How long a client may take to send its greeting after the upgrade.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// Upgrades the request, reads the greeting and pools the connection.
pub fn handle_register(shared: &Shared, request: Request) -> Result<(), Error> {
    let peer = request.remote_addr().copied();
    let Some(key) = websocket_key(&request) else {
        let text = "/register expects a WebSocket upgrade (GET, Upgrade: websocket)";
        let _ = request.respond(text_response(400, text));
        return Err(Error::Register(format!(
            "{peer:?}: not a WebSocket upgrade"
        )));
    };
    let streams = header(&request, STREAMS_HEADER).is_some_and(|v| v.trim() == "1");
    let offered = header(&request, "X-SECRET-KEY").unwrap_or_default();
    if !shared.config().secret_key.matches(&offered) {
        let _ = request.respond(text_response(STATUS_PROXY_ERROR, "Invalid X-SECRET-KEY"));
        return Err(Error::Register(format!("{peer:?}: invalid X-SECRET-KEY")));
    }
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::empty(101);
    if let Ok(h) = Header::from_bytes(&b"Sec-WebSocket-Accept"[..], accept.as_bytes()) {
        response.add_header(h);
    }
    let tiny_http::Upgraded {
        stream,
        leftover,
        slot,
    } = request
        .upgrade("websocket", response)
        .map_err(|e| Error::Register(format!("{peer:?}: upgrade failed: {e}")))?;
    if let Some(s) = stream.tcp() {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(GREETING_TIMEOUT));
    }
    let mut ws = WsConn::with_leftover(stream, leftover, Role::Server);
    let greeting = match read_greeting(&mut ws) {
        Ok(g) => g,
        Err(e) => {
            ws.close(CLOSE_PROTOCOL_ERROR, &e.to_string());
            return Err(Error::Register(format!("{peer:?}: {e}")));
        }
    };
    if let Some(s) = ws.get_ref().tcp() {
        // For the connection's whole life, set once here rather than per request (two
        // system calls each time): idle, it is only ever read without blocking.
        let timeout = Some(shared.config().request_timeout);
        let _ = s.set_read_timeout(timeout);
        let _ = s.set_write_timeout(timeout);
    }
    log::debug!(
        "client {} registered a connection from {peer:?}",
        greeting.id
    );
    // A connection may wait long before its first request: it holds no buffer meanwhile.
    ws.release_buffers();
    let id: Arc<str> = greeting.id.into();
    let (stats, first) = shared.metrics.client(&id);
    let mut conn = Connection::new(ws, slot, id, stats.clone());
    conn.streams = streams;
    let fresh = shared.hub.add(conn, greeting.size);
    shared.metrics.registered(&stats, first, fresh);
    Ok(())
}

fn read_greeting(ws: &mut WsConn<Stream>) -> Result<Greeting, crate::protocol::Error> {
    let text = ws.read_any_text(MAX_GREETING_LEN, "a greeting")?;
    Greeting::parse(&text)
}

/// The `Sec-WebSocket-Key` of a GET that asks for a WebSocket upgrade.
fn websocket_key(request: &Request) -> Option<String> {
    let upgrade = header(request, "Upgrade")?;
    let is_get = *request.method() == tiny_http::Method::Get;
    (is_get && upgrade.eq_ignore_ascii_case("websocket"))
        .then(|| header(request, "Sec-WebSocket-Key"))
        .flatten()
}
