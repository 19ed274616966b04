//! One registered WebSocket as the server keeps it: the stream (which owns its socket),
//! its client, and the checks that tell whether the client is still there
//! (pongs heard, a close seen, silence past `pingtimeout`). Where connections wait, and
//! who takes them, is [`super::pool`]'s job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::ClientStats;
use crate::poll;
use crate::protocol::{Idle, WsConn};

/// Close code for a connection closed because it is not needed (RFC 6455: normal).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code for a connection closed because we give it up (RFC 6455: going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The upgraded stream tiny_http hands over for a `/register` request: the socket itself
/// (or the TLS stream over it), by value.
pub type Stream = tiny_http::UpgradedStream;

/// One registered WebSocket.
pub struct Connection {
    /// The WebSocket, positioned between exchanges whenever the connection is idle.
    pub ws: WsConn<Stream>,
    /// The id of the client that opened it.
    pub client_id: Arc<str>,
    /// Its client's counters, so that a request counts itself without a look-up.
    pub stats: Arc<ClientStats>,
    /// Whether the WebSocket runs over TLS (the server's `certfile`): see
    /// [`Connection::check`].
    tls: bool,
    /// When it last went idle: beyond the pool sizes, the longest idle go first.
    pub(super) idle_since: Instant,
    /// When the client was last heard from: a frame read while idle, or registration.
    last_heard: Instant,
}

impl Connection {
    /// A connection fresh from registration; `tls` when it came over TLS.
    pub fn new(
        ws: WsConn<Stream>,
        client_id: Arc<str>,
        stats: Arc<ClientStats>,
        tls: bool,
    ) -> Self {
        Connection {
            ws,
            client_id,
            stats,
            tls,
            idle_since: Instant::now(),
            last_heard: Instant::now(),
        }
    }

    /// Whether the client is still there: answers the pings that came in while the
    /// connection sat idle, spots a peer that closed or died, and one silent for longer
    /// than `ping_timeout` (it no longer answers our pings). Over a Unix socket it cannot
    /// look, and assumes so.
    ///
    /// Over TLS the socket alone cannot tell: rustls may hold records it already
    /// decrypted (a ping or a close that came in the same read as the end of the last
    /// exchange) while the socket is quiet. Looking only at the socket, such a frame would
    /// wait for the next bytes to arrive: harmless for a ping (our own pings draw a pong
    /// within `pinginterval`, which brings it out) but a closed connection would be handed
    /// to a request. So a TLS connection is always read, without blocking: three system
    /// calls instead of one, on a path that also decrypts and encrypts each request.
    pub(super) fn check(&mut self, ping_timeout: Duration) -> Result<(), String> {
        let Some(socket) = self.ws.get_ref().tcp() else {
            return Ok(());
        };
        // The common case, a quiet socket, costs one system call; reading it without
        // blocking would cost three.
        let look = self.tls
            || self.ws.has_buffered()
            || poll::readable(socket, Duration::ZERO).unwrap_or(true);
        if look {
            set_nonblocking(&self.ws, true)?;
            let idle = self.ws.check_idle();
            let restored = set_nonblocking(&self.ws, false);
            match idle {
                Idle::Gone => return Err("closed by the client".into()),
                Idle::Heard => self.last_heard = Instant::now(),
                Idle::Quiet => {}
            }
            restored?;
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

    /// Checks the connection as [`Connection::check`] does, then pings it so that the
    /// next check hears the pong. The ping goes out without blocking: a client whose
    /// socket buffer is full is not answering anyway.
    pub(super) fn probe(&mut self, ping_timeout: Duration) -> Result<(), String> {
        self.check(ping_timeout)?;
        if self.ws.get_ref().tcp().is_none() {
            return Ok(());
        }
        let _ = set_nonblocking(&self.ws, true);
        let pinged = self.ws.ping();
        let _ = set_nonblocking(&self.ws, false);
        pinged.map_err(|e| format!("cannot ping: {e}"))
    }

    /// Ends the connection: a close frame with `code` (RFC 6455 §7.4), then the socket
    /// shut down.
    pub(super) fn close(mut self, code: u16, reason: &str) {
        self.ws.close(code, reason);
        let _ = self.ws.get_mut().shutdown();
    }
}

/// Switches the connection's socket to non-blocking mode or back.
fn set_nonblocking(ws: &WsConn<Stream>, on: bool) -> Result<(), String> {
    match ws.get_ref().tcp() {
        Some(socket) => socket
            .set_nonblocking(on)
            .map_err(|e| format!("socket unusable: {e}")),
        None => Ok(()),
    }
}
