//! The server's pools: for each client id, the WebSockets it registered, idle or busy.
//!
//! A [`Connection`] has exactly one owner. Idle, it sits in its client's `idle` vector;
//! busy, it is inside the one [`Lease`] relaying a request; broken, it is dropped. A
//! request that finds no idle connection leaves a one-slot channel in `waiters`, and the
//! next connection to become idle is handed straight to it: no polling, no thread woken
//! for nothing. A request pinned to one client (`X-PROXY-CLIENT`) takes and waits for
//! that client's connections only. The lock is held only to move connections in and out,
//! never across I/O (but for arming an idle connection with the watcher: see
//! [`Watcher::arm`]).
//!
//! Idle connections can also be found by token, for the [`Watcher`] to take out the one
//! something arrived on: `idle_at` says where each sits. A connection released by a
//! request is armed with the watcher only once it has stayed idle for [`ARM_AFTER`]
//! (`to_arm` queues them): under load a connection is leased again long before, and
//! neither its release nor its next lease costs a system call for the watcher. Until it
//! is armed, it is checked (one `poll`) when leased, as without a watcher.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use super::connection::Connection;
use super::watcher::Watcher;
use crate::protocol::ws::{CLOSE_GOING_AWAY, CLOSE_NORMAL};

/// How long a released connection stays idle before the watcher is told of it.
pub const ARM_AFTER: Duration = Duration::from_millis(50);

/// Most connections queued for arming; under load the queue holds those released in the
/// last [`ARM_AFTER`] (a few thousand at most).
const MAX_TO_ARM: usize = 1 << 16;

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// No client is registered at all.
    NoClient,
    /// Every connection stayed busy until the deadline.
    Timeout,
    /// The client the request asked for has no connection registered.
    UnknownClient,
    /// The request opens a stream, and no client it may use announced streams.
    NoStreams,
}

/// One pooled client's connections, for the status endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooled {
    pub id: Arc<str>,
    pub idle: usize,
    pub busy: usize,
    /// The idle size the client announced (its `poolidlesize`). `idle` may be above it:
    /// a client opens a new connection whenever one turns busy (as the Go client does),
    /// and the server closes those beyond the size only once idle for `idletimeout`.
    pub size: usize,
}

/// Which clients a request may use.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// Only this client (the caller's `X-PROXY-CLIENT`), or any when `None`.
    pub only: Option<&'a str>,
    /// A client whose connection just failed (it may be dying): used only when no other
    /// has an idle connection.
    pub avoid: Option<&'a str>,
    /// Only clients that announced streams at registration (a `CONNECT`).
    pub streams: bool,
}

/// A request waiting for a connection: the next one to become idle, of `client` if set,
/// is sent down `tx`.
struct Waiter {
    tx: Sender<Connection>,
    client: Option<Arc<str>>,
    /// Only a connection of a client that announced streams.
    streams: bool,
}

impl Waiter {
    fn wants(&self, conn: &Connection) -> bool {
        let client_ok = self.client.as_deref().is_none_or(|c| *c == *conn.client_id);
        client_ok && (!self.streams || conn.streams)
    }
}

/// All clients' pools.
pub struct Hub {
    state: Mutex<State>,
    /// An idle connection silent for longer than this is dead (`pingtimeout`).
    ping_timeout: Duration,
    /// Watches idle connections, if the system allows.
    watcher: Option<Arc<Watcher>>,
    /// Times a request passed over a client at `clientmaxinflight`.
    capped: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct State {
    clients: HashMap<Arc<str>, ClientPool>,
    waiters: VecDeque<Waiter>,
    /// Rotates the starting point among equally busy clients.
    turn: usize,
    /// Where each idle connection sits: its client and its index in that client's `idle`.
    idle_at: HashMap<u64, (Arc<str>, usize)>,
    /// The last token given to a connection.
    last_token: u64,
    /// Connections released by a request, in order: when, and which. Each is armed with
    /// the watcher once idle for [`ARM_AFTER`], if it still is (the same `idle_since`).
    to_arm: VecDeque<(Instant, u64)>,
    /// The hub's `clientmaxinflight`.
    max_inflight: Option<usize>,
}

#[derive(Default)]
struct ClientPool {
    idle: Vec<Connection>,
    busy: usize,
    /// The idle size the client announced in its greeting.
    size: usize,
    /// Whether its last registered connection announced streams.
    streams: bool,
}

impl Hub {
    /// An empty hub; idle connections silent for longer than `ping_timeout` are dead.
    /// `watcher`, if any, is told of every connection going idle.
    pub fn new(ping_timeout: Duration, watcher: Option<Arc<Watcher>>) -> Hub {
        Hub {
            state: Mutex::default(),
            ping_timeout,
            watcher,
            capped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Caps the requests in flight over each client's connections: a client at the cap
    /// is passed over, and a request finding every client there waits as for a busy
    /// pool.
    pub fn with_max_inflight(mut self, max: Option<usize>) -> Hub {
        self.state.get_mut().max_inflight = max;
        self
    }

    /// Changes the cap (a reload); requests already in flight are not touched.
    pub fn set_max_inflight(&self, max: Option<usize>) {
        self.state.lock().max_inflight = max;
    }

    /// Times a request passed over a client at `clientmaxinflight`.
    pub fn capped(&self) -> u64 {
        self.capped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds a freshly registered connection as idle (or hands it to a waiting request).
    /// Returns whether the client had no connection pooled before (for the metrics).
    pub fn add(&self, mut conn: Connection, announced_size: usize) -> bool {
        let mut state = self.state.lock();
        state.last_token += 1;
        conn.token = state.last_token;
        let fresh = !state.clients.contains_key(&conn.client_id);
        let pool = state.clients.entry(conn.client_id.clone()).or_default();
        pool.size = announced_size;
        pool.streams = conn.streams;
        pool.busy += 1;
        state.put_idle(conn, Arm::Now(self.watcher.as_deref()));
        fresh
    }

    /// Each pooled client's connection counts, for the status endpoints.
    pub fn clients(&self) -> Vec<Pooled> {
        let state = self.state.lock();
        let clients = state.clients.iter();
        clients
            .map(|(id, pool)| Pooled {
                id: id.clone(),
                idle: pool.idle.len(),
                busy: pool.busy,
                size: pool.size,
            })
            .collect()
    }

    /// Takes an idle connection of a client `choice` allows, waiting until `deadline` for
    /// one if all are busy. Among clients with an idle connection, the least busy one is
    /// chosen, and `choice.avoid` only when no other has one. A connection found dead
    /// while idle is dropped and another one taken, so a caller never pays for a client
    /// that died before its request arrived.
    pub fn acquire(
        &self,
        deadline: Instant,
        choice: Choice<'_>,
    ) -> Result<Lease<'_>, AcquireError> {
        loop {
            let idle = {
                let mut state = self.state.lock();
                state.check_known(choice)?;
                match state.take_idle(choice, &self.capped) {
                    Some(conn) => conn,
                    None => {
                        let (tx, rx) = bounded(1);
                        let client = choice.only.map(Arc::from);
                        state.waiters.push_back(Waiter {
                            tx: tx.clone(),
                            client,
                            streams: choice.streams,
                        });
                        drop(state);
                        return self.wait((tx, rx), deadline);
                    }
                }
            };
            let mut lease = self.lease(idle);
            match lease.conn().check(self.ping_timeout) {
                Ok(()) => return Ok(lease),
                Err(why) => log::info!(
                    "client {}: dropping an idle connection: {why}",
                    lease.conn().client_id
                ),
            }
        }
    }

    /// Pings every idle connection, and drops those found closed or silent for longer
    /// than the ping time-out; those kept give their buffers back. Each is taken out of
    /// the pool while it is looked at (one at a time, so requests find the others), and
    /// waiting requests get them as they come back.
    pub fn ping_idle(&self) {
        let tokens: Vec<u64> = self.state.lock().idle_at.keys().copied().collect();
        for token in tokens {
            let Some(mut conn) = self.take_idle_by_token(token) else {
                continue;
            };
            match conn.probe(self.ping_timeout) {
                Ok(()) => {
                    // Idle for a while: its buffers are better given back.
                    conn.ws.release_buffers();
                    self.put_back(conn);
                }
                Err(why) => {
                    log::warn!("client {}: connection dead: {why}", conn.client_id);
                    self.forget(&conn.client_id);
                    conn.close(CLOSE_GOING_AWAY, "no answer to pings");
                }
            }
        }
    }

    /// Takes the idle connection `token` out of the pool, as busy; `None` if it is not
    /// idle (leased since, or gone).
    pub(super) fn take_idle_by_token(&self, token: u64) -> Option<Connection> {
        let mut state = self.state.lock();
        let conn = state.remove_idle(token)?;
        if let Some(pool) = state.clients.get_mut(&conn.client_id) {
            pool.busy += 1;
        }
        Some(conn)
    }

    /// Returns a connection taken out by [`Hub::take_idle_by_token`], as idle (since when
    /// it was before), armed with the watcher at once.
    pub(super) fn put_back(&self, conn: Connection) {
        self.state
            .lock()
            .put_idle(conn, Arm::Now(self.watcher.as_deref()));
    }

    /// Arms with the watcher every connection released at least [`ARM_AFTER`] ago and
    /// idle since; returns when the next one will be due, if any.
    pub(super) fn arm_due(&self, watcher: &Watcher) -> Option<Instant> {
        let mut state = self.state.lock();
        let now = Instant::now();
        while let Some(&(since, token)) = state.to_arm.front() {
            let due = since + ARM_AFTER;
            if due > now {
                return Some(due);
            }
            state.to_arm.pop_front();
            if let Some(conn) = state.idle_mut(token) {
                if conn.idle_since == since && !conn.armed {
                    watcher.arm(conn);
                }
            }
        }
        None
    }

    /// Forgets a connection taken out of the pool that will not come back.
    /// Says so when that was the client's last connection: one line when a client goes
    /// away, where each of its connections has a debug line.
    pub(super) fn forget(&self, client_id: &str) {
        if self.state.lock().discard(client_id) {
            log::info!("client {client_id}: its last connection closed");
        }
    }

    fn wait(
        &self,
        (tx, rx): (Sender<Connection>, Receiver<Connection>),
        deadline: Instant,
    ) -> Result<Lease<'_>, AcquireError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if let Ok(conn) = rx.recv_timeout(timeout) {
            return Ok(self.lease(conn));
        }
        // Leave the queue under the lock, so that nothing can be handed over after; a
        // connection handed over just before is still ours.
        self.state
            .lock()
            .waiters
            .retain(|w| !w.tx.same_channel(&tx));
        match rx.try_recv() {
            Ok(conn) => Ok(self.lease(conn)),
            Err(_) => Err(AcquireError::Timeout),
        }
    }

    /// Lends `conn`, taken out of the watcher's set first: taken from the idle ones or
    /// handed over by [`State::put_idle`], whether from a release, a registration or the
    /// watcher itself (which hands over a connection it just read, still registered).
    fn lease(&self, mut conn: Connection) -> Lease<'_> {
        if let Some(watcher) = &self.watcher {
            watcher.disarm(&mut conn);
        }
        Lease {
            hub: self,
            conn: Some(conn),
        }
    }

    /// Closes idle connections beyond each client's announced size that have been idle
    /// longer than `idle_timeout`, and forgets clients with no connection left.
    pub fn clean_up(&self, idle_timeout: Duration) {
        let expired = {
            let mut state = self.state.lock();
            let mut expired = Vec::new();
            let mut overfull: Vec<u64> = Vec::new();
            for pool in state.clients.values() {
                let mut by_age: Vec<&Connection> = pool.idle.iter().collect();
                by_age.sort_unstable_by_key(|c| c.idle_since);
                let beyond = pool.idle.len().saturating_sub(pool.size);
                let old = by_age.into_iter().take(beyond);
                overfull.extend(
                    old.take_while(|c| c.idle_since.elapsed() > idle_timeout)
                        .map(|c| c.token),
                );
            }
            for token in overfull {
                expired.extend(state.remove_idle(token));
            }
            state
                .clients
                .retain(|_, p| p.busy > 0 || !p.idle.is_empty());
            expired
        };
        if !expired.is_empty() {
            log::debug!(
                "closing {} connections idle beyond pool size",
                expired.len()
            );
        }
        for conn in expired {
            conn.close(CLOSE_NORMAL, "idle");
        }
    }

    /// Closes every idle connection (shutdown).
    pub fn close_idle(&self) {
        let idle: Vec<Connection> = {
            let mut state = self.state.lock();
            state.idle_at.clear();
            state.to_arm.clear();
            state
                .clients
                .values_mut()
                .flat_map(|p| p.idle.drain(..))
                .collect()
        };
        for conn in idle {
            conn.close(CLOSE_GOING_AWAY, "server shutting down");
        }
    }
}

/// When a connection going idle is armed with the watcher.
enum Arm<'a> {
    /// At once, by this watcher (if any).
    Now(Option<&'a Watcher>),
    /// Once idle for [`ARM_AFTER`] (see [`Hub::arm_due`]).
    Later,
}

impl State {
    /// Moves a connection released by a request to idle, or straight to a waiting
    /// request; `watched` when the hub has a watcher, which arms it once due. Returns
    /// whether the watcher has to be woken: its queue of connections to arm was empty,
    /// so it may be waiting for nothing in particular.
    fn make_idle(&mut self, mut conn: Connection, watched: bool) -> bool {
        conn.idle_since = Instant::now();
        let was_empty = self.to_arm.is_empty();
        let arm = if watched { Arm::Later } else { Arm::Now(None) };
        self.put_idle(conn, arm);
        was_empty && !self.to_arm.is_empty()
    }

    /// The idle connection `token`.
    fn idle_mut(&mut self, token: u64) -> Option<&mut Connection> {
        let (client, i) = self.idle_at.get(&token)?;
        self.clients.get_mut(client)?.idle.get_mut(*i)
    }

    /// Refuses a request when no client is registered, or not the one it names, or, for
    /// a stream, none that it may use announced streams.
    fn check_known(&self, choice: Choice<'_>) -> Result<(), AcquireError> {
        match choice.only {
            _ if self.clients.is_empty() => return Err(AcquireError::NoClient),
            Some(id) if !self.clients.contains_key(id) => return Err(AcquireError::UnknownClient),
            _ => {}
        }
        let usable = |(id, pool): (&Arc<str>, &ClientPool)| {
            pool.streams && choice.only.is_none_or(|o| o == &**id)
        };
        if choice.streams && !self.clients.iter().any(usable) {
            return Err(AcquireError::NoStreams);
        }
        Ok(())
    }

    /// Hands a connection to the first request waiting for one of its client, or puts it
    /// in its client's idle vector, armed as `arm` says.
    fn put_idle(&mut self, mut conn: Connection, arm: Arm<'_>) {
        // Counted busy until it is idle: handed to a waiter, it stays busy. A fresh
        // registration would then put its client over `clientmaxinflight`.
        let pool = self.clients.get(&conn.client_id);
        let over = pool.is_some_and(|p| self.max_inflight.is_some_and(|m| p.busy > m));
        let mut i = if over { self.waiters.len() } else { 0 };
        while i < self.waiters.len() {
            if !self.waiters[i].wants(&conn) {
                i += 1;
                continue;
            }
            let Some(waiter) = self.waiters.remove(i) else {
                break;
            };
            match waiter.tx.try_send(conn) {
                Ok(()) => return,
                Err(e) => conn = e.into_inner(),
            }
        }
        if let Some(pool) = self.clients.get_mut(&conn.client_id) {
            pool.busy = pool.busy.saturating_sub(1);
            match arm {
                Arm::Now(Some(watcher)) => watcher.arm(&mut conn),
                Arm::Now(None) => {}
                Arm::Later => {
                    // Bounded, should the watcher stop: a connection whose entry is
                    // dropped stays unarmed, and is checked when leased.
                    if self.to_arm.len() == MAX_TO_ARM {
                        self.to_arm.pop_front();
                    }
                    self.to_arm.push_back((conn.idle_since, conn.token));
                }
            }
            let at = (conn.client_id.clone(), pool.idle.len());
            self.idle_at.insert(conn.token, at);
            pool.idle.push(conn);
        }
    }

    /// Takes the idle connection `token` out of its client's `idle` (its place taken by
    /// the last one there), leaving the counts to the caller.
    fn remove_idle(&mut self, token: u64) -> Option<Connection> {
        let (client, i) = self.idle_at.remove(&token)?;
        let pool = self.clients.get_mut(&client)?;
        if i >= pool.idle.len() {
            return None;
        }
        let conn = pool.idle.swap_remove(i);
        if let Some(moved) = pool.idle.get(i) {
            self.idle_at.insert(moved.token, (client, i));
        }
        Some(conn)
    }

    /// Pops an idle connection of the least busy client that has one and that `choice`
    /// allows, `choice.avoid` last.
    fn take_idle(
        &mut self,
        choice: Choice<'_>,
        capped: &std::sync::atomic::AtomicU64,
    ) -> Option<Connection> {
        let max_inflight = self.max_inflight;
        let n = self.clients.len().max(1);
        self.turn = self.turn.wrapping_add(1);
        let turn = self.turn;
        let (_, pool) = self
            .clients
            .iter_mut()
            .enumerate()
            .filter(|(_, (id, p))| {
                !p.idle.is_empty()
                    && choice.only.is_none_or(|o| o == &***id)
                    && (!choice.streams || p.streams)
                    && (max_inflight.is_none_or(|m| p.busy < m) || {
                        capped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        false
                    })
            })
            .min_by_key(|(i, (id, p))| {
                let avoided = choice.avoid.is_some_and(|a| a == &***id);
                (avoided, p.busy, (i + n - turn % n) % n)
            })
            .map(|(_, entry)| entry)?;
        pool.busy += 1;
        let conn = pool.idle.pop()?;
        self.idle_at.remove(&conn.token);
        Some(conn)
    }

    /// Forgets a busy connection that was dropped.
    /// Returns whether that was its client's last connection (the client is forgotten).
    fn discard(&mut self, client_id: &str) -> bool {
        let Some(pool) = self.clients.get_mut(client_id) else {
            return false;
        };
        pool.busy = pool.busy.saturating_sub(1);
        let last = pool.busy == 0 && pool.idle.is_empty();
        if last {
            self.clients.remove(client_id);
        }
        last
    }
}

/// A busy connection, lent to one request. Dropping the lease drops the connection (it
/// may be mid-exchange); [`Lease::release`] returns it to the pool.
pub struct Lease<'a> {
    hub: &'a Hub,
    conn: Option<Connection>,
}

impl Lease<'_> {
    /// The connection lent.
    pub fn conn(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until consumed")
    }

    /// Returns the connection as idle: only when its exchange completed cleanly. What
    /// came after the exchange and is already buffered (a ping) is read first; a
    /// connection found closed that way is dropped.
    pub fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match conn.read_buffered() {
            Ok(()) => {
                let watcher = self.hub.watcher.as_deref();
                let wake = self.hub.state.lock().make_idle(conn, watcher.is_some());
                if let (true, Some(watcher)) = (wake, watcher) {
                    watcher.wake();
                }
            }
            Err(why) => {
                log::info!("client {}: dropping a connection: {why}", conn.client_id);
                self.hub.forget(&conn.client_id);
                conn.close(CLOSE_GOING_AWAY, "closed");
            }
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            self.hub.state.lock().discard(&conn.client_id);
            conn.shut_down();
        }
    }
}

#[cfg(test)]
mod tests;
