//! A `CONNECT` stream on the client: open a TCP connection to the head's `host:port`, say
//! 200, and carry bytes both ways ([`crate::tunnel`]) until both ends are done.
//!
//! It gives raw TCP into the private network, so nothing is allowed unless configured:
//! the destination must match one of the `connect` regexes whole (`--allow-connect`),
//! else the answer is 403 naming the rule. At most `maxstreams` streams are open at once
//! (503 beyond). A refusal or a failed connection is an ordinary answer (messages 3 and
//! 4), and the WebSocket serves on.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::connection::answer_error;
use super::stream::Stream;
use super::Settings;
use crate::headers::Headers;
use crate::protocol::head::to_json;
use crate::protocol::{Error, RequestHead, ResponseHead, Role, WsConn};
use rustls::StreamOwned;

use crate::tunnel::{self, End, Ends};

/// How long opening the TCP connection may take, over all of the host's addresses.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams open in this process, all targets together (`maxstreams`).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One open stream's place under `maxstreams`, given back when dropped.
pub(super) struct Open;

impl Open {
    /// A place, if fewer than `max` streams are open.
    pub(super) fn take(max: usize) -> Option<Open> {
        let taken = OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        taken.ok().map(|_| Open)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves the stream `head` asks for. `Ok(true)`: the WebSocket is in step and serves on
/// (the stream ended cleanly, or was refused); `Ok(false)`: the stream aborted, the
/// WebSocket must be dropped (logged here).
///
/// # Errors
/// Writing to the WebSocket failed.
pub fn serve(
    settings: &Settings,
    ws: &mut WsConn<Stream>,
    head: &RequestHead,
) -> Result<bool, Error> {
    let target = head.url.as_str();
    if !settings
        .config
        .connect
        .iter()
        .any(|rule| rule.is_match(target))
    {
        let text = format!(
            "wsp client: CONNECT to {target} refused: no connect rule allows it \
             (connect, --allow-connect)"
        );
        log::info!("{text}");
        answer_error(ws, 403, &text)?;
        return Ok(true);
    }
    let Some(_open) = Open::take(settings.config.max_streams) else {
        let max = settings.config.max_streams;
        let text = format!("wsp client: {max} streams open already (maxstreams)");
        log::info!("CONNECT {target}: {text}");
        answer_error(ws, 503, &text)?;
        return Ok(true);
    };
    let socket = match open(target) {
        Ok(socket) => socket,
        Err(e) => {
            let text = format!("wsp client: cannot connect to {target}: {e}");
            log::info!("{text}");
            answer_error(ws, 502, &text)?;
            return Ok(true);
        }
    };
    let established = ResponseHead {
        status: 200,
        header: Headers::new(),
        content_length: 0,
    };
    ws.write_text(&to_json(&established))?;
    ws.flush()?;
    carry(settings, ws, target, End::plain(&socket), Vec::new())
}

/// The stream, once open: `socket` is the internal service's end, and `early` what it
/// sent already (read with the answer to a handshake). `Ok(true)` after a clean end.
pub(super) fn carry(
    settings: &Settings,
    ws: &mut WsConn<Stream>,
    target: &str,
    socket: End<'_>,
    early: Vec<u8>,
) -> Result<bool, Error> {
    let ws_unread = ws.take_unread();
    let ends = Ends {
        ws: end_of(ws.get_mut()),
        role: Role::Client,
        ws_unread,
        socket,
        early,
        idle_timeout: settings.config.stream_idle_timeout,
    };
    let (outcome, unread) = tunnel::relay(ends)?;
    ws.put_unread(unread);
    let how = match &outcome.aborted {
        None => "ended".to_string(),
        Some(why) => format!("aborted ({why})"),
    };
    log::info!(
        "{target}: stream {how}, {} bytes up, {} bytes down",
        outcome.received,
        outcome.sent
    );
    // The stream set its own time-outs on the socket: the connection's come back.
    let timeout = Some(settings.config.request_timeout);
    let tcp = ws.get_ref().tcp();
    tcp.set_read_timeout(timeout)?;
    tcp.set_write_timeout(timeout)?;
    Ok(outcome.clean())
}

/// The WebSocket's end of a stream: its socket, and its TLS session over `wss://`.
fn end_of(stream: &mut Stream) -> End<'_> {
    match stream {
        Stream::Plain(socket) => End::plain(socket),
        Stream::Tls(tls) => {
            let StreamOwned { conn, sock } = &mut **tls;
            End::tls(&mut **conn, sock)
        }
    }
}

/// Connects to `host:port`, trying each address in turn.
pub(super) fn open(target: &str) -> io::Result<TcpStream> {
    let addrs: Vec<_> = target.to_socket_addrs()?.collect();
    let share = CONNECT_TIMEOUT / u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, share.max(Duration::from_millis(100))) {
            Ok(socket) => {
                let _ = socket.set_nodelay(true);
                return Ok(socket);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
