//! One WebSocket of the client, on a thread of its own for its whole life: wait for a
//! request head (checking the server is alive while idle), perform the request, stream
//! the response back, and again, until the connection breaks or the client stops.
//!
//! An exchange that fails on the internal API's side is answered with status 527 (504
//! when it timed out) and the error text, and the connection stays usable. One that leaves the WebSocket out of step
//! (a broken socket, an unreadable head, a body cut short) ends the connection.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Agent;

use super::executor::{self, Failed, Upstream, STATUS_CLIENT_ERROR};
use super::pool::{State, TargetPool};
use super::stream::Stream;
use super::{connect, upgrade, Settings};
use crate::protocol::head::{to_json, MAX_HEAD_LEN};
use crate::protocol::ws::{CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR};
use crate::protocol::{Awaited, Error, RequestHead, ResponseHead, StreamKind, WsConn};
use crate::rules::Side;
use crate::sys::stack;

/// How often an idle connection looks whether the client is shutting down. Idle threads
/// sleep in a socket read; this bounds how long a shutdown waits for them.
const STOP_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How long a connection stays idle before its agent, with the connection to the internal
/// API it keeps open and that connection's buffers, is dropped. A connection in use is
/// leased again long before (the server lends the most recently released one first);
/// those a burst of callers opened then give their memory back in seconds, not when the
/// server closes them (`idletimeout`, a minute). The cost: a request after a quiet spell
/// opens a new connection to the internal API, which would often have closed the old one.
const AGENT_IDLE_DROP: Duration = Duration::from_secs(5);

type Ws = WsConn<Stream>;

/// Why an idle connection stopped waiting.
enum Wait {
    /// A request head is coming.
    Request,
    /// The server closed the connection.
    Closed,
    /// The client is shutting down.
    Stopping,
}

/// Serves requests on `ws` until it breaks or the client stops; the pool's counts follow
/// its state.
pub fn serve(pool: &TargetPool, mut ws: Ws) {
    // Made by the first request, with the settings then in force: a connection that
    // never serves one costs no agent, and a reload gives the next request a new one.
    let mut agent: Option<(Arc<Settings>, Agent)> = None;
    // `requesttimeout` on the socket, set again when a reload changes it: it bounds the
    // rest of a frame that began while idle, and every read and write of an exchange
    // (idle waits are bounded by `poll`).
    let mut timeout = None;
    let _ = set_timeout(&ws, &mut timeout, pool.settings().config.request_timeout);
    loop {
        match wait_for_request(pool, &mut ws, &mut agent) {
            Ok(Wait::Request) => {}
            Ok(Wait::Closed) => {
                log::debug!("{}: connection closed by the server", pool.name);
                break;
            }
            Ok(Wait::Stopping) => {
                ws.close(CLOSE_GOING_AWAY, "client going away");
                break;
            }
            Err(why) => {
                log::info!("{}: connection dropped while idle: {why}", pool.name);
                ws.close(CLOSE_GOING_AWAY, "no answer to pings");
                break;
            }
        }
        pool.set_state(State::Idle, State::Busy);
        let settings = pool.settings();
        let outcome = set_timeout(&ws, &mut timeout, settings.config.request_timeout)
            .map_err(Error::from)
            .and_then(|()| {
                let agent = agent_for(&mut agent, &settings);
                exchange(&settings, agent, &mut ws)
            });
        pool.set_state(State::Busy, State::Idle);
        match outcome {
            Ok(true) => {}
            // An aborted stream, logged already: the socket is shut.
            Ok(false) => break,
            Err(e) => {
                log::warn!("{}: connection closed: {e}", pool.name);
                ws.close(CLOSE_INTERNAL_ERROR, "exchange failed");
                break;
            }
        }
    }
    pool.set_state(State::Idle, State::Gone);
}

/// The agent made with `settings`, made anew when the settings changed since.
fn agent_for<'a>(
    agent: &'a mut Option<(Arc<Settings>, Agent)>,
    settings: &Arc<Settings>,
) -> &'a Agent {
    if !matches!(agent, Some((made_with, _)) if Arc::ptr_eq(made_with, settings)) {
        *agent = None;
    }
    let made = || {
        (
            settings.clone(),
            executor::agent(&settings.config, &settings.tls),
        )
    };
    &agent.get_or_insert_with(made).1
}

/// Puts `wanted` as the socket's read and write time-out, unless it is there already.
fn set_timeout(ws: &Ws, current: &mut Option<Duration>, wanted: Duration) -> io::Result<()> {
    if *current != Some(wanted) {
        let tcp = ws.get_ref().tcp();
        tcp.set_write_timeout(Some(wanted))?;
        tcp.set_read_timeout(Some(wanted))?;
        *current = Some(wanted);
    }
    Ok(())
}

/// Waits for the next request while idle. Control frames (the server's pings) prove the
/// server alive; after `pinginterval` of silence we ping it, and after `pingtimeout` we
/// give the connection up. Every [`STOP_CHECK_INTERVAL`] the stop signal is looked at.
/// After [`AGENT_IDLE_DROP`] the agent is dropped.
fn wait_for_request(
    pool: &TargetPool,
    ws: &mut Ws,
    agent: &mut Option<(Arc<Settings>, Agent)>,
) -> Result<Wait, String> {
    let config = &pool.settings().config;
    let idle_since = Instant::now();
    let mut last_heard = idle_since;
    let mut pinged = false;
    let mut settled = false;
    loop {
        if pool.stopping() {
            return Ok(Wait::Stopping);
        }
        let silent = last_heard.elapsed();
        if silent >= config.ping_timeout {
            return Err(format!(
                "nothing from the server for {} ms (pingtimeout)",
                silent.as_millis()
            ));
        }
        if silent >= config.ping_interval && !pinged {
            ws.ping().map_err(|e| format!("cannot ping: {e}"))?;
            pinged = true;
        }
        let next = if pinged {
            config.ping_timeout
        } else {
            config.ping_interval
        };
        let mut wait = next.saturating_sub(silent).min(STOP_CHECK_INTERVAL);
        if agent.is_some() {
            wait = wait.min(AGENT_IDLE_DROP.saturating_sub(idle_since.elapsed()));
        }
        // Under TLS, the stream may hold decrypted bytes while the socket is quiet.
        let arrived = ws.has_buffered()
            || ws
                .get_mut()
                .readable(wait)
                .map_err(|e| format!("cannot wait: {e}"))?;
        if !arrived {
            if agent.is_some() && idle_since.elapsed() >= AGENT_IDLE_DROP {
                *agent = None;
                pool.freed();
            }
            // Idle a while: the memory of the last exchange is better given back.
            if !settled {
                ws.release_buffers();
                stack::trim();
                settled = true;
            }
            continue;
        }
        // Something came: the rest of a frame follows within the exchange time-out.
        match ws.await_message() {
            Ok(Awaited::Message) => return Ok(Wait::Request),
            Ok(Awaited::Closed) => return Ok(Wait::Closed),
            Ok(Awaited::Control) => {
                last_heard = Instant::now();
                pinged = false;
                // Reading it took a buffer: given back at the next quiet wait.
                settled = false;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One exchange: messages 1 and 2 in, 3 and 4 out (or a stream after 3). `Ok(false)`
/// when a stream aborted and `Err` when the exchange failed: the connection must end.
/// Never inlined: its deep frames (ureq's) must not widen the frame the idle wait sits
/// in, or every idle thread would keep them resident (see [`stack`]).
#[inline(never)]
fn exchange(settings: &Settings, agent: &Agent, ws: &mut Ws) -> Result<bool, Error> {
    let text = ws.read_text(MAX_HEAD_LEN, "a request head")?;
    let head = match RequestHead::parse(&text) {
        Ok(head) => head,
        Err(e) => {
            // Like Go: answer, then give the connection up (message 2 is unread).
            answer_error(ws, STATUS_CLIENT_ERROR, &e.to_string())?;
            return Err(e);
        }
    };
    // A CONNECT is a TCP connection, not an HTTP request: its own rules (`connect`) say
    // where it may go; the HTTP rules below see every request, WebSocket handshakes too.
    if let Some(StreamKind::Connect) = head.stream {
        skip_body(ws)?;
        return connect::serve(settings, ws, &head);
    }
    let rules = &settings.config.rules;
    if let Err(refusal) = rules.refusal(Side::Client, &head.method, &head.url, &head.header) {
        log::info!("{refusal}");
        skip_body(ws)?;
        answer_error(ws, STATUS_CLIENT_ERROR, &refusal.to_string())?;
        return Ok(true);
    }
    if let Some(StreamKind::WebSocket) = head.stream {
        skip_body(ws)?;
        return upgrade::serve(settings, ws, &head);
    }
    let upstream = {
        let mut body = ws.body_reader();
        let result = executor::execute(agent, &head, &mut body);
        // The request body must be read to its end whatever the internal API did.
        io::copy(&mut body, &mut io::sink())?;
        result
    };
    match upstream {
        Ok(upstream) => send_response(ws, &head, upstream)?,
        Err(Failed { status, text }) => {
            log::info!("{text}");
            answer_error(ws, status, &text)?;
        }
    }
    Ok(true)
}

/// Messages 3 and 4 from the internal API's response.
fn send_response(ws: &mut Ws, head: &RequestHead, mut upstream: Upstream) -> Result<(), Error> {
    log::debug!("{} {}: {}", head.method, head.url, upstream.head.status);
    ws.write_text(&to_json(&upstream.head))?;
    let length = u64::try_from(upstream.head.content_length).ok();
    ws.write_body(&mut upstream.body, length)?;
    // With a known length, the copy stops at the last byte without reading on; ureq hands
    // the upstream connection back to its pool only once it has seen the end. Without
    // this read, every request would open a new connection to the internal API.
    let mut end = [0u8; 1];
    let _ = upstream.body.read(&mut end);
    Ok(())
}

/// Reads message 2 to its end, discarding it.
fn skip_body(ws: &mut Ws) -> Result<(), Error> {
    io::copy(&mut ws.body_reader(), &mut io::sink())?;
    Ok(())
}

/// An answer of the client's own (527, 504) saying `text`, in the form of every wsp
/// answer ([`crate::answer`]).
pub(super) fn answer_error(ws: &mut Ws, status: u16, text: &str) -> Result<(), Error> {
    let body = crate::answer::body(text);
    ws.write_text(&to_json(&ResponseHead::error(status, &body)))?;
    ws.write_body(&mut body.as_bytes(), Some(body.len() as u64))?;
    Ok(())
}
