//! A stream through the tunnel: raw bytes both ways between a socket (the caller's, on the
//! server; the internal service's, on the client) and a pooled WebSocket, once the heads
//! have said yes (200 to a `CONNECT`, 101 to a WebSocket handshake).
//!
//! On the WebSocket, each direction is a run of binary messages, each a piece of the bytes
//! as they came; an **empty binary message ends the direction**, as a TCP FIN does, and
//! the socket's writing side is shut down when it arrives. Once both directions have ended
//! so, the stream is over cleanly and the WebSocket serves requests again. Anything else
//! aborts: an error on either socket, a close or a text message on the WebSocket, silence
//! both ways for the idle time-out. Both sockets are then shut down, and the WebSocket,
//! out of step, is dropped: the peer sees it end and aborts its side.
//!
//! Two threads share each end ([`End`], plain or TLS): the calling one carries WebSocket
//! → socket, a scoped one socket → WebSocket. A stream holds one buffer per direction
//! ([`PIECE`]), whatever it carries.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use end::End;

use end::EndReader;

use crate::protocol::{Error, Role, WsConn};
use crate::sys::poll;

mod end;

/// The largest piece read from the socket and sent as one message.
pub const PIECE: usize = 32 * 1024;

/// How a stream ended, and what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes from the socket sent on the WebSocket.
    pub sent: u64,
    /// Bytes from the WebSocket written to the socket.
    pub received: u64,
    /// Why the stream aborted; `None` when both directions ended with their end
    /// message and the WebSocket may serve again.
    pub aborted: Option<String>,
}

impl Outcome {
    /// Both directions ended cleanly.
    pub fn clean(&self) -> bool {
        self.aborted.is_none()
    }
}

/// The two ends of a stream and how long it may stay silent.
pub struct Ends<'w, 's> {
    /// The WebSocket's socket (plain or TLS), borrowed for the stream.
    pub ws: End<'w>,
    /// Which end of the WebSocket this side is (who masks).
    pub role: Role,
    /// Bytes the WebSocket's reader had already read past the heads.
    pub ws_unread: Vec<u8>,
    /// The other socket: the caller's, or the internal service's.
    pub socket: End<'s>,
    /// Bytes of the stream read from the other socket with the head (a CONNECT's early
    /// data, what the internal API sent right behind its 101): sent first.
    pub early: Vec<u8>,
    /// Silence both ways for this long aborts the stream.
    pub idle_timeout: Duration,
}

/// Relays until both directions have ended or the stream aborts. Returns the outcome and
/// the bytes the WebSocket's reader read past the stream's end (the next request's, on
/// the client), to put back into the connection. The sockets' time-outs are the
/// stream's afterwards: the caller sets its own again.
///
/// # Errors
/// Only when the sockets cannot be set up; the stream then never started.
pub fn relay(ends: Ends<'_, '_>) -> io::Result<(Outcome, Vec<u8>)> {
    let Ends {
        ws,
        role,
        ws_unread,
        socket,
        early,
        idle_timeout,
    } = ends;
    let watch = Watch::new(idle_timeout);
    // A socket read wakes up at least every tick to look whether the stream is still
    // alive both ways. Once a message has begun, the rest of it must come within the
    // idle time-out (a read cannot be retried mid-frame).
    socket.socket().set_read_timeout(Some(watch.tick()))?;
    ws.socket().set_read_timeout(Some(idle_timeout))?;
    ws.socket().set_write_timeout(Some(idle_timeout))?;
    socket.socket().set_write_timeout(Some(idle_timeout))?;
    // Each piece leaves at once: a stream is often interactive (a shell, a WebSocket),
    // and a piece held back by Nagle until the peer's delayed ACK costs 40 ms.
    socket.socket().set_nodelay(true)?;
    ws.socket().set_nodelay(true)?;
    let mut ws_in = WsConn::with_leftover(ws.reader(), ws_unread, role);
    let mut ws_out = WsConn::new(ws.writer(), role);
    let abort = |e: &Error| {
        watch.abort(e, || {
            ws.abort();
            socket.abort();
        })
    };
    let (received, sent) = thread::scope(|scope| {
        let up = thread::Builder::new()
            .name("stream-up".into())
            .spawn_scoped(scope, || {
                let sent = send_all(&watch, socket.reader(), early, &mut ws_out);
                if let Err(e) = &sent {
                    abort(e);
                }
                sent
            });
        let received = receive_all(&watch, &mut ws_in, &socket);
        if let Err(e) = &received {
            abort(e);
        }
        let sent = match up {
            Ok(handle) => handle.join().unwrap_or(Err(Error::Closed)),
            Err(e) => {
                let e = Error::Io(e);
                abort(&e);
                Err(e)
            }
        };
        (received, sent)
    });
    // The first error is the cause; the other thread's follows from the abort.
    let aborted = match (&received, &sent) {
        (Ok(_), Ok(_)) if !watch.aborted() => None,
        (Ok(_), Ok(_)) => Some("aborted".to_string()),
        (Err(e), _) | (_, Err(e)) => Some(watch.cause.lock().take().unwrap_or(e.to_string())),
    };
    let outcome = Outcome {
        sent: watch.sent.load(Ordering::Relaxed),
        received: watch.received.load(Ordering::Relaxed),
        aborted,
    };
    let (_, unread) = ws_in.into_parts();
    Ok((outcome, unread))
}

/// Socket → WebSocket until the socket's end, then the end message.
fn send_all<W: Read + Write>(
    watch: &Watch,
    mut socket: EndReader<'_, '_>,
    early: Vec<u8>,
    ws: &mut WsConn<W>,
) -> Result<u64, Error> {
    if !early.is_empty() {
        send_piece(watch, ws, &early)?;
    }
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = match socket.read(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                watch.check()?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if n == 0 {
            // The end message: an empty binary message.
            ws.write_body(&mut io::empty(), Some(0))?;
            return Ok(watch.sent.load(Ordering::Relaxed));
        }
        send_piece(watch, ws, &buf[..n])?;
    }
}

fn send_piece<W: Read + Write>(
    watch: &Watch,
    ws: &mut WsConn<W>,
    piece: &[u8],
) -> Result<(), Error> {
    watch.check()?;
    ws.write_body(&mut &piece[..], Some(piece.len() as u64))?;
    watch.sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
    watch.heard();
    Ok(())
}

/// WebSocket → socket until the end message, then the socket's writing side is shut.
fn receive_all(
    watch: &Watch,
    ws: &mut WsConn<EndReader<'_, '_>>,
    socket: &End<'_>,
) -> Result<u64, Error> {
    let mut out = socket.writer();
    let mut buf = vec![0u8; PIECE];
    loop {
        // Bytes may wait above the socket: in the WebSocket's buffer, or in the TLS
        // end's (records read, plaintext decrypted). Only without them is the socket
        // waited on.
        while !ws.has_buffered()
            && !ws.get_ref().pending()
            && !poll::readable(ws.get_ref().socket(), watch.tick())?
        {
            watch.check()?;
        }
        let mut message = ws.body_reader();
        let mut length = 0u64;
        loop {
            let n = message.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            length += n as u64;
            watch.received.fetch_add(n as u64, Ordering::Relaxed);
            watch.heard();
        }
        if length == 0 {
            socket.shutdown_write();
            return Ok(watch.received.load(Ordering::Relaxed));
        }
    }
}

/// What both threads share: when either last carried a byte, whether the stream was
/// aborted, and the counts so far.
struct Watch {
    start: Instant,
    /// Milliseconds from `start` to the last byte carried either way.
    last: AtomicU64,
    idle_timeout: Duration,
    aborted: AtomicBool,
    /// What aborted the stream, said by the thread that saw it first.
    cause: Mutex<Option<String>>,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Watch {
    fn new(idle_timeout: Duration) -> Self {
        Watch {
            start: Instant::now(),
            last: AtomicU64::new(0),
            idle_timeout,
            aborted: AtomicBool::new(false),
            cause: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// How often a waiting read looks at the stream: often enough to notice the idle
    /// time-out in time, seldom enough to cost nothing.
    fn tick(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }

    fn heard(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// An error once the stream was aborted or has been silent both ways too long.
    fn check(&self) -> Result<(), Error> {
        if self.aborted() {
            return Err(Error::Closed);
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        let silent = self.start.elapsed().saturating_sub(last);
        if silent >= self.idle_timeout {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nothing either way for {} ms (streamidletimeout)",
                    silent.as_millis()
                ),
            )));
        }
        Ok(())
    }

    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// Ends the stream both ways (`shut`, which shuts both sockets down): the other
    /// thread's blocked read or write returns. The first cause is kept.
    fn abort(&self, cause: &Error, shut: impl FnOnce()) {
        if !self.aborted.swap(true, Ordering::Relaxed) {
            *self.cause.lock() = Some(cause.to_string());
        }
        shut();
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
