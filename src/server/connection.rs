//! One registered WebSocket as the server keeps it: the stream (which owns its socket),
//! its client, and the checks that tell whether the client is still there (pongs heard, a
//! close seen, silence past `pingtimeout`). Where connections wait, and who takes them, is
//! [`super::pool`]'s job; who watches them while idle, [`super::watcher`]'s.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::ClientStats;
use crate::protocol::{Idle, WsConn};
use crate::sys::poll;

/// The upgraded stream tiny_http hands over for a `/register` request: the socket itself
/// (or the TLS stream over it), by value.
pub type Stream = tiny_http::UpgradedStream;

/// One registered WebSocket.
pub struct Connection {
    /// The WebSocket, positioned between exchanges whenever the connection is idle.
    pub ws: WsConn<Stream>,
    /// Its place among the connections the server allows open at once
    /// (`maxconnections`): held as long as the connection.
    _slot: tiny_http::ConnectionSlot,
    /// The id of the client that opened it.
    pub client_id: Arc<str>,
    /// Its client's counters, so that a request counts itself without a look-up.
    pub stats: Arc<ClientStats>,
    /// Its client announced streams (`X-WSP-Streams`) when registering it.
    pub streams: bool,
    /// Names the connection to the idle watcher; unique in the server's life.
    pub(super) token: u64,
    /// Whether its socket is in the idle watcher's epoll set (armed or spent).
    pub(super) registered: bool,
    /// Whether the idle watcher was armed for it since it went idle: then bytes arriving
    /// on its socket are read at once, and a check need not look at the socket.
    pub(super) armed: bool,
    /// When it last went idle: beyond the pool sizes, the longest idle go first.
    pub(super) idle_since: Instant,
    /// When the client was last heard from: a frame read while idle, or registration.
    last_heard: Instant,
}

impl Connection {
    /// A connection fresh from registration, holding its `slot`.
    pub fn new(
        ws: WsConn<Stream>,
        slot: tiny_http::ConnectionSlot,
        client_id: Arc<str>,
        stats: Arc<ClientStats>,
    ) -> Self {
        Connection {
            ws,
            _slot: slot,
            client_id,
            stats,
            streams: false,
            token: 0,
            registered: false,
            armed: false,
            idle_since: Instant::now(),
            last_heard: Instant::now(),
        }
    }

    /// The socket's descriptor, to watch it.
    pub(super) fn fd(&self) -> RawFd {
        self.ws.get_ref().as_fd().as_raw_fd()
    }

    /// Whether the client is still there: answers the pings that came in while the
    /// connection sat idle, spots a peer that closed or died, and one silent for longer
    /// than `ping_timeout` (it no longer answers our pings).
    ///
    /// Bytes already read (by the WebSocket's buffer, or by rustls, which may hold records
    /// decrypted with the end of the last exchange) are always looked at: nothing on the
    /// socket would announce them. The socket itself is looked at only when the idle
    /// watcher was not armed for it (armed, it reads whatever arrives at once), at the
    /// cost of one system call when quiet.
    pub(super) fn check(&mut self, ping_timeout: Duration) -> Result<(), String> {
        if self.has_buffered() || (!self.armed && self.socket_readable()) {
            self.read_pending()?;
        }
        let silent = self.last_heard.elapsed();
        if silent > ping_timeout {
            return Err(format!(
                "no answer to pings for {} ms (pingtimeout {} ms)",
                silent.as_millis(),
                ping_timeout.as_millis()
            ));
        }
        Ok(())
    }

    /// Reads what the client sent that is already buffered above the socket, if anything:
    /// for a connection going idle, as the watcher would not hear of it.
    pub(super) fn read_buffered(&mut self) -> Result<(), String> {
        match self.has_buffered() {
            true => self.read_pending(),
            false => Ok(()),
        }
    }

    fn has_buffered(&mut self) -> bool {
        self.ws.has_buffered() || self.ws.get_mut().has_buffered()
    }

    /// Whether the socket has bytes or an end to read (true when it cannot tell).
    fn socket_readable(&self) -> bool {
        poll::readable(self.ws.get_ref(), Duration::ZERO).unwrap_or(true)
    }

    /// Reads, without waiting, what the client sent while the connection was idle:
    /// control frames (a ping is answered), or its end.
    pub(super) fn read_pending(&mut self) -> Result<(), String> {
        set_nonblocking(&self.ws, true)?;
        let idle = self.ws.check_idle();
        let restored = set_nonblocking(&self.ws, false);
        match idle {
            Idle::Gone => return Err("closed by the client".into()),
            Idle::Heard => self.last_heard = Instant::now(),
            Idle::Quiet => {}
        }
        restored
    }

    /// Checks the connection as [`Connection::check`] does, then pings it so that the
    /// pong, heard by the watcher or the next check, shows the client is still there. The
    /// ping goes out without blocking: a client whose socket buffer is full is not
    /// answering anyway.
    pub(super) fn probe(&mut self, ping_timeout: Duration) -> Result<(), String> {
        self.check(ping_timeout)?;
        set_nonblocking(&self.ws, true)?;
        let pinged = self.ws.ping();
        let _ = set_nonblocking(&self.ws, false);
        pinged.map_err(|e| format!("cannot ping: {e}"))
    }

    /// Ends the connection: a close frame with `code` (RFC 6455 §7.4), then the socket
    /// shut down.
    pub(super) fn close(mut self, code: u16, reason: &str) {
        self.ws.close(code, reason);
        self.shut_down();
    }

    /// Ends the connection without a word: for one dropped mid-exchange.
    pub(super) fn shut_down(&mut self) {
        let _ = self.ws.get_mut().shutdown();
    }
}

/// Switches the connection's socket to non-blocking mode or back.
fn set_nonblocking(ws: &WsConn<Stream>, on: bool) -> Result<(), String> {
    ws.get_ref()
        .set_nonblocking(on)
        .map_err(|e| format!("socket unusable: {e}"))
}
