//! wsp patch: TLS with rustls 0.23 (upstream: rustls 0.20, PEM parsed here with
//! rustls-pemfile, `expect()` on a bad key). See PATCHES.md, 12.
//!
//! - The caller builds the `rustls::ServerConfig` (certificates, key, crypto provider):
//!   nothing is parsed here, and nothing here can panic on a bad file.
//! - The handshake is made on the connection's thread at its first read or write (never
//!   on the accept thread), and must end within [`HEADER_TIMEOUT`] of the accept: its
//!   reads wait at most what is left of that, so a client trickling its handshake a byte
//!   at a time is cut like one trickling its request head.
//! - Reads and writes are done here on the `ServerConnection` rather than through
//!   `rustls::StreamOwned`, whose `write` goes on to *read* the socket when a write would
//!   block (and so doubles a write time-out) and, given nothing to write, reads instead.
//!   Here a write only writes, a read only reads (once the handshake is done).
//! - The reader and the writer halves share the stream behind a mutex. tiny_http (in wsp's
//!   handler mode) and wsp use a connection from one thread at a time, so the lock is
//!   never contended; a poisoned lock is an `io::Error`, not a panic.
//! - A peer that closes without `close_notify` reads as an end of stream, as over TCP:
//!   HTTP and WebSocket framing detect a truncation themselves.
//! - Dropping the writer half sends `close_notify` (best effort, never waiting), so that
//!   a close-delimited response is not mistaken for a truncated one.

use crate::connection::Connection;
use crate::limits::HEADER_TIMEOUT;
use crate::util::refined_tcp_stream::Stream as RefinedStream;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A rustls server connection over an accepted socket, shared by the reader and writer
/// halves of a tiny_http connection.
pub(crate) struct RustlsStream(Arc<Mutex<Tls>>);

struct Tls {
    conn: rustls::ServerConnection,
    /// The connection's one socket, shared with its time-out handle (see
    /// `ClientConnection`): setting a time-out needs no lock on the TLS state.
    sock: Arc<Connection>,
    /// When the handshake must be done by: [`HEADER_TIMEOUT`] after the accept.
    handshake_deadline: Instant,
    /// Set once the handshake failed: every later read or write fails at once, without
    /// waiting on the socket again.
    handshake_failed: bool,
}

impl RustlsStream {
    fn lock(&self) -> io::Result<MutexGuard<'_, Tls>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("TLS stream unusable: a thread panicked using it"))
    }

    pub(crate) fn peer_addr(&mut self) -> io::Result<Option<SocketAddr>> {
        self.lock()?.sock.peer_addr()
    }

    /// The stream as the sole owner of the connection: for a protocol upgrade, once both
    /// halves and the time-out handle have let go of it. `None` while another holder is
    /// left.
    pub(crate) fn into_owned(self) -> Option<TlsStream> {
        let tls = Arc::try_unwrap(self.0).ok()?.into_inner().ok()?;
        (Arc::strong_count(&tls.sock) == 1).then_some(TlsStream(tls))
    }

    /// Shuts the socket down; when the write side goes, `close_notify` is sent first if
    /// the handshake was done.
    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        let mut tls = self.lock()?;
        if how != Shutdown::Read && !tls.conn.is_handshaking() {
            tls.close_notify();
        }
        tls.sock.shutdown(how)
    }
}

impl Clone for RustlsStream {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Read for RustlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock()?.read(buf)
    }
}

impl Write for RustlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut tls = self.lock()?;
        tls.flush()
    }
}

/// wsp patch: a TLS connection handed over by [`crate::Request::upgrade`], owned: the
/// socket (one file descriptor) and its rustls state, with nothing shared and no lock.
/// Reads and writes behave as on the connection before (see the module doc).
pub struct TlsStream(Tls);

impl TlsStream {
    /// The TCP socket under the TLS layer: for its options, and to wait on it. Reading or
    /// writing it directly breaks the TLS stream. `None` over a Unix socket.
    pub fn tcp(&self) -> Option<&std::net::TcpStream> {
        self.0.sock.tcp()
    }

    /// Switches the socket to non-blocking mode or back.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.0.sock.set_nonblocking(on)
    }

    /// Whether plaintext is already decrypted and waiting, so that a read returns it
    /// without touching the socket. Waiting on the socket alone would miss it: records
    /// read with the end of an earlier exchange are held here.
    pub fn has_buffered(&mut self) -> bool {
        match self.0.conn.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            // A bad record: the next read reports it.
            Err(_) => true,
        }
    }

    /// wsp patch: the rustls session and the TCP socket under it, borrowed, for a user
    /// that drives them itself: wsp splits a stream between a reading and a writing
    /// thread, sharing the session behind its own lock. `None` over a Unix socket. The
    /// session is past its handshake: an upgraded request was read through it.
    pub fn session(&mut self) -> Option<(&mut rustls::ServerConnection, &std::net::TcpStream)> {
        let Tls { conn, sock, .. } = &mut self.0;
        sock.tcp().map(|tcp| (conn, tcp))
    }

    /// Sends `close_notify` (without waiting) and shuts the socket down both ways.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if !self.0.conn.is_handshaking() {
            self.0.close_notify();
        }
        self.0.sock.shutdown(Shutdown::Both)
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for TlsStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.sock.as_fd()
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Tls {
    /// Plaintext from the peer: what rustls holds already, else the next records read
    /// from the socket (waiting as the socket's time-out allows).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.handshake()?;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // No plaintext yet: read records below.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The TCP stream ended without close_notify: an end, as over TCP.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Anything rustls must answer (a key update) goes first.
            self.send_pending()?;
            self.read_records()?;
        }
    }

    /// Encrypts `buf` and writes the records out, waiting as the socket's time-out allows.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.handshake()?;
        if buf.is_empty() {
            return Ok(0);
        }
        // What an earlier write left (its socket was full) goes first, so that rustls
        // never buffers more than one write's records.
        self.send_pending()?;
        let n = self.conn.writer().write(buf)?;
        self.send_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.handshake()?;
        self.send_pending()?;
        (&*self.sock).flush()
    }

    /// Reads once from the socket (an end of stream is recorded by rustls) and decrypts
    /// what came. A bad record is an error, after the alert saying so is sent.
    fn read_records(&mut self) -> io::Result<usize> {
        let n = self.conn.read_tls(&mut &*self.sock)?;
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.send_pending();
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
        Ok(n)
    }

    /// Writes out every record rustls has queued.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut &*self.sock)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Completes the handshake if it is not done yet, by its deadline: each read waits
    /// at most what is left of it (the socket's own read time-out is put back after).
    fn handshake(&mut self) -> io::Result<()> {
        if !self.conn.is_handshaking() {
            return Ok(());
        }
        if self.handshake_failed {
            return Err(io::Error::new(ErrorKind::NotConnected, "TLS handshake failed"));
        }
        let previous = self.sock.read_timeout()?;
        let result = self.drive_handshake();
        let restored = self.sock.set_read_timeout(previous);
        self.handshake_failed = result.is_err();
        result.and(restored)
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.send_pending()?;
            let left = self
                .handshake_deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| {
                    let why = format!(
                        "TLS handshake not done within {} s",
                        HEADER_TIMEOUT.as_secs()
                    );
                    io::Error::new(ErrorKind::TimedOut, why)
                })?;
            self.sock.set_read_timeout(Some(left))?;
            if self.read_records().map_err(handshake_error)? == 0 {
                let why = "peer closed the connection during the TLS handshake";
                return Err(io::Error::new(ErrorKind::UnexpectedEof, why));
            }
        }
        // The server's last flight (and TLS 1.3 session tickets).
        self.send_pending()
    }

    /// Best effort: queues close_notify and writes it without waiting (the socket is
    /// being shut down: a peer that reads nothing must not hold the thread here).
    fn close_notify(&mut self) {
        self.conn.send_close_notify();
        if self.sock.set_nonblocking(true).is_ok() {
            let _ = self.conn.write_tls(&mut &*self.sock);
            let _ = self.sock.set_nonblocking(false);
        }
    }
}

/// A handshake that failed says so; a time-out stays a time-out (`WouldBlock`), for
/// tiny_http to count it as one.
fn handshake_error(e: io::Error) -> io::Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => e,
        kind => io::Error::new(kind, format!("TLS handshake: {e}")),
    }
}

/// The rustls configuration every accepted connection starts from.
pub(crate) struct RustlsContext(Arc<rustls::ServerConfig>);

impl RustlsContext {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self(config)
    }

    /// Wraps an accepted socket; no I/O (the handshake is made at the first read or
    /// write), so the accept thread never waits on a client.
    pub(crate) fn accept(
        &self,
        sock: Arc<Connection>,
    ) -> Result<RustlsStream, Box<dyn std::error::Error + Send + Sync + 'static>> {
        let conn = rustls::ServerConnection::new(self.0.clone())?;
        Ok(RustlsStream(Arc::new(Mutex::new(Tls {
            conn,
            sock,
            handshake_deadline: Instant::now() + HEADER_TIMEOUT,
            handshake_failed: false,
        }))))
    }
}

impl From<RustlsStream> for RefinedStream {
    fn from(stream: RustlsStream) -> Self {
        Self::Https(stream)
    }
}
