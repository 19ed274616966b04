//! The idle watcher: one thread waiting on every idle WebSocket at once.
//!
//! An idle connection has no thread of its own, yet its client may ping it (RFC 6455
//! §5.5.2 asks for the pong "as soon as practical"), answer our pings, or close it. The
//! watcher's `epoll` instance holds the socket of every connection idle for a while,
//! armed for one event ([`Watcher::arm`]): at registration, and once a connection a
//! request released has stayed idle for [`super::pool::ARM_AFTER`] (the pool queues them,
//! and the watcher arms those due each time it wakes). On an event the watcher takes the
//! connection out of the pool (a request cannot lease it meanwhile), reads what came
//! without waiting (a ping is answered, a pong heard), and puts it back, armed again, or
//! drops it if its client closed it. A request leasing an armed connection takes it out
//! of the set ([`Watcher::disarm`]), so a busy connection's traffic never wakes the
//! watcher; one leased again within `ARM_AFTER`, as under load, never enters it, and
//! costs no system call for it.
//!
//! Silence past `pingtimeout` is found by the housekeeping's ping rounds
//! ([`super::pool::Hub::ping_idle`]): the pongs they draw are what the watcher hears.
//!
//! Linux only (epoll); elsewhere [`Watcher::new`] fails, and idle connections are looked
//! at when leased and at each ping round, as before the watcher.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use super::connection::Connection;
use super::pool::Hub;
#[cfg(target_os = "linux")]
use crate::protocol::ws::CLOSE_GOING_AWAY;

/// The token of the waker: connection tokens count up from 1 and never reach it.
#[cfg(target_os = "linux")]
const WAKER: u64 = u64::MAX;
/// Most events taken from one wait.
#[cfg(target_os = "linux")]
const EVENTS_PER_WAIT: usize = 256;

/// The epoll instance of the idle connections, and the way to stop its thread.
pub struct Watcher {
    #[cfg(target_os = "linux")]
    epoll: crate::sys::epoll::Epoll,
    #[cfg(target_os = "linux")]
    waker: crate::sys::epoll::Waker,
    stop: AtomicBool,
}

impl Watcher {
    /// A watcher with nothing to watch yet.
    ///
    /// # Errors
    /// No epoll instance (out of descriptors), or not Linux.
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Watcher> {
        use crate::sys::epoll::{Epoll, Waker};
        let epoll = Epoll::new()?;
        let waker = Waker::new()?;
        epoll.add_persistent(waker.fd(), WAKER)?;
        Ok(Watcher {
            epoll,
            waker,
            stop: AtomicBool::new(false),
        })
    }

    /// See the Linux version: there is no epoll here.
    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Watcher> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the idle watcher needs epoll (Linux)",
        ))
    }

    /// Arms `conn`, which is idle, for its next event: adds its socket to the set first
    /// if need be. Called with the pool's lock held, so that the connection cannot be
    /// leased, used and dropped meanwhile (its descriptor number reused by another). A
    /// connection that cannot be watched (the system's watch limit) stays unarmed: checks
    /// then look at its socket, as without a watcher.
    pub(super) fn arm(&self, conn: &mut Connection) {
        #[cfg(target_os = "linux")]
        {
            let fd = conn.fd();
            let armed = match conn.registered {
                true => self.epoll.rearm(fd, conn.token),
                false => self.epoll.add(fd, conn.token),
            };
            conn.registered |= armed.is_ok();
            conn.armed = armed.is_ok();
            if let Err(e) = armed {
                log::warn!(
                    "client {}: cannot watch an idle connection: {e}",
                    conn.client_id
                );
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = conn;
    }

    /// Takes `conn`, just leased, out of the set if it is in it, so that its traffic does
    /// not wake the watcher. The lease owns the connection: no lock is needed.
    pub(super) fn disarm(&self, conn: &mut Connection) {
        #[cfg(target_os = "linux")]
        if conn.registered {
            let _ = self.epoll.remove(conn.fd());
        }
        conn.registered = false;
        conn.armed = false;
    }

    /// Wakes the watcher: a connection was queued for arming while it had none to wait
    /// for.
    pub(super) fn wake(&self) {
        #[cfg(target_os = "linux")]
        self.waker.wake();
    }

    /// Watches until [`Watcher::stop`]: reads each idle connection something arrived on,
    /// and puts it back in the pool or drops it.
    pub fn run(&self, hub: &Hub) {
        #[cfg(target_os = "linux")]
        {
            let mut tokens = Vec::with_capacity(EVENTS_PER_WAIT);
            while !self.stop.load(Ordering::SeqCst) {
                let next_due = hub.arm_due(self);
                let timeout = next_due.map(|due| {
                    // At most one wake-up per ARM_AFTER for arming: under load, the queue
                    // has an entry due every few microseconds.
                    let wait = due.saturating_duration_since(std::time::Instant::now());
                    wait.max(super::pool::ARM_AFTER / 2)
                });
                if let Err(e) = self.epoll.wait(&mut tokens, timeout) {
                    log::error!("idle watcher: cannot wait: {e}; idle connections are looked at when leased");
                    return;
                }
                for &token in &tokens {
                    match token {
                        WAKER => self.waker.clear(),
                        token => heard(hub, token),
                    }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = hub;
    }

    /// Ends [`Watcher::run`] soon.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// Something arrived on the idle connection `token` (unless a request leased it since).
#[cfg(target_os = "linux")]
fn heard(hub: &Hub, token: u64) {
    let Some(mut conn) = hub.take_idle_by_token(token) else {
        return;
    };
    match conn.read_pending() {
        Ok(()) => hub.put_back(conn),
        Err(why) => {
            log::debug!("client {}: idle connection ended: {why}", conn.client_id);
            hub.forget(&conn.client_id);
            conn.close(CLOSE_GOING_AWAY, "closed while idle");
        }
    }
}
