//! Raw WebSockets for the registration row: many `/register` upgrades opened at once,
//! each a blocking `TcpStream` on one of [`IN_FLIGHT`] short-lived threads: TCP connect,
//! the RFC 6455 opening handshake, the `101` read, the greeting sent as one masked text
//! frame. The sockets are then handed back, open and idle, to the caller, which holds them
//! all on one thread and never reads them (the row's server does not ping them: see
//! [`crate::register`]).
//!
//! Whether the server has *counted* a registration is not known here: the caller polls
//! the server's `/status.json` for that.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::http;

/// Upgrades in flight at once: enough to keep the server busy, few enough that the
/// listen backlog never overflows.
pub const IN_FLIGHT: usize = 64;
/// Any valid `Sec-WebSocket-Key` does (16 bytes in base64): the server only hashes it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The mask of every greeting frame: a client must mask, and any mask does.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// FIN and opcode 1 (text): the greeting is one whole text frame.
const FIN_TEXT: u8 = 0x81;
/// Bit set in the length byte of a masked frame.
const MASKED: u8 = 0x80;
/// The shortest time-out set on an upgrade's socket (a zero time-out means none).
const MIN_WAIT: Duration = Duration::from_millis(1);
/// Longest payload whose length fits in the first length byte.
const MAX_SHORT_PAYLOAD: usize = 125;

/// What one batch of upgrades gave.
pub struct Opened {
    /// The WebSockets that got their `101` and were sent the greeting.
    pub sockets: Vec<TcpStream>,
    /// Upgrades that failed, and the first failure's message.
    pub failed: usize,
    pub first_error: Option<String>,
}

/// Opens `count` WebSockets to `addr`'s `/register`, each greeted with `greeting`, with
/// [`IN_FLIGHT`] at a time; starts no new one after `deadline`. A failed upgrade is
/// counted, not retried.
pub fn open(addr: SocketAddr, count: usize, greeting: &str, deadline: Instant) -> Opened {
    let next = AtomicUsize::new(0);
    let request = upgrade_request(addr);
    let frame = masked_text_frame(greeting.as_bytes());
    let mut opened = Opened {
        sockets: Vec::with_capacity(count),
        failed: 0,
        first_error: None,
    };
    thread::scope(|scope| {
        let workers: Vec<_> = (0..IN_FLIGHT.min(count))
            .map(|_| scope.spawn(|| open_some(addr, &next, count, deadline, &request, &frame)))
            .collect();
        for worker in workers {
            let part = worker.join().unwrap_or_else(|_| Opened {
                sockets: Vec::new(),
                failed: 1,
                first_error: Some("an upgrade thread panicked".into()),
            });
            opened.sockets.extend(part.sockets);
            opened.failed += part.failed;
            opened.first_error = opened.first_error.take().or(part.first_error);
        }
    });
    opened
}

/// One worker: takes the next upgrade to do until `count` are taken or `deadline` passes.
fn open_some(
    addr: SocketAddr,
    next: &AtomicUsize,
    count: usize,
    deadline: Instant,
    request: &str,
    frame: &[u8],
) -> Opened {
    let mut opened = Opened {
        sockets: Vec::new(),
        failed: 0,
        first_error: None,
    };
    while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < count {
        match open_one(addr, deadline, request, frame) {
            Ok(socket) => opened.sockets.push(socket),
            Err(e) => {
                opened.failed += 1;
                opened.first_error.get_or_insert(e);
            }
        }
    }
    opened
}

/// Connect, upgrade, greet: one registration as the server sees it, within `deadline`.
fn open_one(
    addr: SocketAddr,
    deadline: Instant,
    request: &str,
    frame: &[u8],
) -> Result<TcpStream, String> {
    let mut socket = connect(addr, deadline)?;
    socket
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the upgrade: {e}"))?;
    let (head, _) = http::read_head(&mut socket)?;
    if head.status != 101 {
        return Err(format!("/register answered {} instead of 101", head.status));
    }
    socket
        .write_all(frame)
        .map_err(|e| format!("sending the greeting: {e}"))?;
    Ok(socket)
}

/// A connection to `addr` whose connect, reads and writes all end by `deadline`.
fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, String> {
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_WAIT)
    };
    let socket = TcpStream::connect_timeout(&addr, left())
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let setup = || -> io::Result<()> {
        socket.set_read_timeout(Some(left()))?;
        socket.set_write_timeout(Some(left()))?;
        socket.set_nodelay(true)
    };
    setup().map_err(|e| format!("setting up the connection to {addr}: {e}"))?;
    Ok(socket)
}

/// The opening handshake of RFC 6455 §4.1, as the wsp client sends it (no secret key:
/// the row's server has none).
fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET /register HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// `payload` as one masked text frame (RFC 6455 §5.2); it must be short (a greeting is).
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_SHORT_PAYLOAD, "greeting too long");
    let mut frame = vec![FIN_TEXT, MASKED | payload.len() as u8];
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}
