//! One WebSocket of the client, on a thread of its own for its whole life: wait for a
//! request head (pinging the server while idle), perform the request, stream the
//! response back, and again, until the connection breaks.
//!
//! An exchange that fails on the internal API's side is answered with status 527 and the
//! error text, and the connection stays usable. One that leaves the WebSocket out of step
//! (a broken socket, an unreadable head, a body cut short) ends the connection.

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use super::executor::{self, Upstream};
use super::pool::{State, TargetPool};
use crate::protocol::head::{to_json, MAX_HEAD_LEN};
use crate::protocol::{Error, RequestHead, ResponseHead, WsConn};

/// How often an idle connection pings the server (Go: 30 s).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Longest silence tolerated in the middle of an exchange (between frames of a request
/// body, or writing to a server that stopped reading).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// The status a client answers when it cannot perform a request.
pub const STATUS_CLIENT_ERROR: u16 = 527;

type Ws = WsConn<TcpStream>;

/// Serves requests on `ws` until it breaks; the pool's counts follow its state.
pub fn serve(pool: &TargetPool, mut ws: Ws) {
    let _ = ws.get_ref().set_write_timeout(Some(STALL_TIMEOUT));
    loop {
        match wait_for_request(&mut ws) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                log::debug!("{}: connection lost while idle: {e}", pool.target);
                break;
            }
        }
        pool.set_state(State::Idle, State::Busy);
        let _ = ws.get_ref().set_read_timeout(Some(STALL_TIMEOUT));
        let outcome = exchange(pool, &mut ws);
        pool.set_state(State::Busy, State::Idle);
        if let Err(e) = outcome {
            log::warn!("{}: connection closed: {e}", pool.target);
            ws.close(1011, "exchange failed");
            break;
        }
    }
    pool.set_state(State::Idle, State::Gone);
}

/// Waits for the next message while idle, pinging every [`PING_INTERVAL`]. `Ok(false)`
/// when the server closed the connection.
fn wait_for_request(ws: &mut Ws) -> Result<bool, Error> {
    ws.get_ref().set_read_timeout(Some(PING_INTERVAL))?;
    loop {
        match ws.wait_readable() {
            Ok(ready) => return Ok(ready),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                ws.ping()?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One exchange: messages 1 and 2 in, 3 and 4 out. `Err` when the connection must end.
fn exchange(pool: &TargetPool, ws: &mut Ws) -> Result<(), Error> {
    let text = ws.read_text(MAX_HEAD_LEN, "a request head")?;
    let head = match RequestHead::parse(&text) {
        Ok(head) => head,
        Err(e) => {
            // Like Go: answer, then give the connection up (message 2 is unread).
            answer_error(ws, &e.to_string())?;
            return Err(e);
        }
    };
    if let Err(denied) = pool
        .config
        .rules
        .check(&head.method, &head.url, &head.header)
    {
        log::info!("{} {}: {denied}", head.method, head.url);
        skip_body(ws)?;
        return answer_error(ws, &denied.to_string());
    }
    let upstream = {
        let mut body = ws.body_reader();
        let result = executor::execute(&pool.agent, &head, &mut body);
        // The request body must be read to its end whatever the internal API did.
        io::copy(&mut body, &mut io::sink())?;
        result
    };
    match upstream {
        Ok(upstream) => send_response(ws, &head, upstream),
        Err(text) => {
            log::info!("{text}");
            answer_error(ws, &text)
        }
    }
}

/// Messages 3 and 4 from the internal API's response.
fn send_response(ws: &mut Ws, head: &RequestHead, mut upstream: Upstream) -> Result<(), Error> {
    log::debug!("{} {}: {}", head.method, head.url, upstream.head.status);
    ws.write_text(&to_json(&upstream.head))?;
    let length = u64::try_from(upstream.head.content_length).ok();
    ws.write_body(&mut upstream.body, length).map(|_| ())
}

/// Reads message 2 to its end, discarding it.
fn skip_body(ws: &mut Ws) -> Result<(), Error> {
    io::copy(&mut ws.body_reader(), &mut io::sink())?;
    Ok(())
}

/// A 527 answer with `text` as its body.
fn answer_error(ws: &mut Ws, text: &str) -> Result<(), Error> {
    ws.write_text(&to_json(&ResponseHead::error(
        STATUS_CLIENT_ERROR,
        text.len(),
    )))?;
    ws.write_body(&mut text.as_bytes(), Some(text.len() as u64))?;
    Ok(())
}
