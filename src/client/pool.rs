//! The connections to one server (a target, at one of its addresses): a supervisor
//! thread keeps `poolidlesize` of them idle and never more than `poolmaxsize` in all,
//! until the client stops or the pool is drained ([`super::fleet`] no longer wants it).
//!
//! Each connection runs on its own thread ([`super::connection`]) and reports its state
//! changes here. The supervisor wakes when a change leaves a connection to open, and at
//! least once a second, to open what is missing. While no connection is up it dials one
//! at a time. A failed dial waits before giving its place up: `reconnectdelay`, doubled
//! at each failure in a row up to `reconnectmaxdelay`, times a random factor in [0.5, 1]
//! so that many clients cut off together do not come back in step. An unreachable
//! server is thus retried about once a second at most, never hammered, and a server
//! that comes back is found within `reconnectmaxdelay`.
//!
//! The pool, not each connection, tells the log how the target stands (see [`Link`]): one
//! `info` line when it is first full, one `warn` when its last connection is gone, one
//! `info` when it is full again. Single connections coming and going are `debug`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use url::{Host, Url};

use super::{connection, dial, Live, Settings};
use crate::config::ClientConfig;
use crate::protocol::Greeting;

/// How often the supervisor checks the pool even when nothing happened.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the supervisor returns freed heap memory to the system.
const TRIM_INTERVAL: Duration = Duration::from_secs(10);
/// Stack size of connection threads: bodies go through heap buffers.
const THREAD_STACK_SIZE: usize = 256 * 1024;

/// Where one connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Idle,
    Busy,
    Gone,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    connecting: usize,
    idle: usize,
    busy: usize,
    link: Link,
}

/// How the target stands, as the log tells it. A pool of 100 connections would log 100
/// lines for one event if each connection spoke for itself; this tells it once.
#[derive(Debug, Default, Clone, Copy)]
enum Link {
    /// Never full yet.
    #[default]
    Starting,
    /// Full at least once since it started or was last lost.
    Up,
    /// Every connection gone, since this instant.
    Lost(Instant),
}

/// What a change of [`Link`] tells the log.
#[derive(Debug, Clone, Copy)]
enum News {
    /// Full for the first time, with this many connections.
    Up(usize),
    /// Full again, with this many connections, after being lost this long.
    Back(usize, Duration),
    /// Every connection gone.
    Lost,
}

impl Counts {
    fn total(&self) -> usize {
        self.connecting + self.idle + self.busy
    }

    /// How many connections to open now: enough to reach `poolidlesize` idle ones,
    /// within `poolmaxsize`, and only one while none is up.
    fn missing(&self, config: &ClientConfig) -> usize {
        if self.idle + self.busy == 0 {
            return usize::from(self.connecting == 0);
        }
        let wanted = config
            .pool_idle_size
            .saturating_sub(self.idle + self.connecting);
        wanted.min(config.pool_max_size.saturating_sub(self.total()))
    }

    /// Moves [`Link`] along after a state change, and returns what to log. Full means
    /// `poolidlesize` connections up (one when it is 0), idle or busy.
    fn news(&mut self, config: &ClientConfig) -> Option<News> {
        let up = self.idle + self.busy;
        let full = config.pool_idle_size.max(1);
        let news = match self.link {
            Link::Starting if up >= full => News::Up(up),
            Link::Lost(since) if up >= full => News::Back(up, since.elapsed()),
            Link::Up if up == 0 => News::Lost,
            _ => return None,
        };
        self.link = match news {
            News::Lost => Link::Lost(Instant::now()),
            News::Up(_) | News::Back(..) => Link::Up,
        };
        Some(news)
    }

    fn slot(&mut self, state: State) -> Option<&mut usize> {
        match state {
            State::Connecting => Some(&mut self.connecting),
            State::Idle => Some(&mut self.idle),
            State::Busy => Some(&mut self.busy),
            State::Gone => None,
        }
    }
}

/// One pool, shared by its supervisor and connection threads.
pub struct TargetPool {
    pub target: Url,
    /// The server's address, the target's host resolved (see [`super::fleet`]).
    pub addr: SocketAddr,
    /// How the log names the pool: the target, and the address when the host is a name.
    pub name: String,
    live: Arc<Live>,
    counts: Mutex<Counts>,
    wake: (Sender<()>, Receiver<()>),
    /// Disconnects when the client shuts down (see [`super::Client`]).
    stop: Receiver<()>,
    /// Disconnects when the pool is drained (see [`super::fleet`]).
    drain: Receiver<()>,
    /// Dials failed in a row, for the back-off.
    failures: Mutex<u32>,
    /// A connection freed memory worth returning to the system (see [`TargetPool::freed`]).
    freed: AtomicBool,
}

impl TargetPool {
    pub fn new(
        target: Url,
        addr: SocketAddr,
        live: Arc<Live>,
        stop: Receiver<()>,
        drain: Receiver<()>,
    ) -> Arc<TargetPool> {
        let name = match target.host() {
            Some(Host::Domain(_)) => format!("{target} ({addr})"),
            _ => target.to_string(),
        };
        Arc::new(TargetPool {
            target,
            addr,
            name,
            live,
            counts: Mutex::new(Counts::default()),
            wake: bounded(1),
            stop,
            drain,
            failures: Mutex::new(0),
            freed: AtomicBool::new(false),
        })
    }

    /// The settings in force: see [`Live`].
    pub fn settings(&self) -> Arc<Settings> {
        self.live.get()
    }

    /// Whether the client is shutting down or the pool is drained: its connections
    /// finish what they are doing and close.
    pub fn stopping(&self) -> bool {
        let gone =
            |signal: &Receiver<()>| matches!(signal.try_recv(), Err(TryRecvError::Disconnected));
        gone(&self.stop) || gone(&self.drain)
    }

    /// Waits up to `timeout`; cut short when the client stops or the pool is drained.
    fn pause(&self, timeout: Duration) {
        crossbeam_channel::select! {
            recv(self.stop) -> _ => {},
            recv(self.drain) -> _ => {},
            default(timeout) => {},
        }
    }

    /// Connections open or opening.
    pub fn open(&self) -> usize {
        self.counts.lock().total()
    }

    /// Records a connection moving from one state to another, and wakes the supervisor
    /// when that leaves it something to do: a connection to open, or one gone (which a
    /// shutdown waits for). A request taken or finished with the pool still full wakes
    /// nobody: waking a thread twice per request would cost more than the request.
    pub fn set_state(&self, from: State, to: State) {
        let config = &self.settings().config;
        let (wake, news) = {
            let mut counts = self.counts.lock();
            if let Some(n) = counts.slot(from) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = counts.slot(to) {
                *n += 1;
            }
            let wake = to == State::Gone || (to == State::Busy && counts.missing(config) > 0);
            (wake, counts.news(config))
        };
        if let Some(news) = news {
            self.log_news(news);
        }
        if wake {
            let _ = self.wake.0.try_send(());
        }
    }

    /// Tells the log how the target stands now (outside the lock: logging is I/O). The
    /// connections a shutdown closes are no loss to warn about.
    fn log_news(&self, news: News) {
        let target = &self.name;
        match news {
            News::Up(n) => log::info!("connected to {target}: {}", connections(n)),
            News::Back(n, down) => log::info!(
                "connected to {target} again after {:.1} s: {}",
                down.as_secs_f64(),
                connections(n)
            ),
            News::Lost if self.stopping() => {}
            News::Lost => log::warn!("lost every connection to {target}: redialing"),
        }
    }

    /// The supervisor: runs until the client shuts down or the pool is drained.
    pub fn supervise(self: &Arc<Self>) {
        log::info!("connecting to {}", self.name);
        let mut next_trim = Instant::now() + TRIM_INTERVAL;
        loop {
            if Instant::now() >= next_trim || self.freed.swap(false, Ordering::Relaxed) {
                // Idle connections give their buffers back after a quiet second, and their
                // agents after a few more: return the freed memory to the system.
                crate::sys::heap::trim();
                next_trim = Instant::now() + TRIM_INTERVAL;
            }
            // A stop or drain may have come since the last wait: open nothing more.
            if self.stopping() {
                return;
            }
            for _ in 0..self.missing() {
                self.spawn_connection();
            }
            crossbeam_channel::select! {
                recv(self.stop) -> _ => return,
                recv(self.drain) -> _ => return,
                recv(self.wake.1) -> _ => {},
                default(CHECK_INTERVAL) => {},
            }
        }
    }

    /// Says that a connection freed memory worth giving back now (its agent, with the
    /// upstream connection's buffers): the supervisor trims the heap within
    /// [`CHECK_INTERVAL`], not at its next [`TRIM_INTERVAL`].
    pub fn freed(&self) {
        self.freed.store(true, Ordering::Relaxed);
    }

    /// Waits until every connection has closed, or `deadline`. Returns how many are
    /// still open.
    pub fn wait_closed(&self, deadline: Instant) -> usize {
        loop {
            let open = self.counts.lock().total();
            if open == 0 || self.wake.1.recv_deadline(deadline).is_err() {
                return open;
            }
        }
    }

    /// How many connections to open now; see [`Counts::missing`].
    fn missing(&self) -> usize {
        self.counts.lock().missing(&self.settings().config)
    }

    fn spawn_connection(self: &Arc<Self>) {
        self.set_state(State::Gone, State::Connecting);
        let pool = self.clone();
        if let Err(e) = spawn("dial", move || pool.dial()) {
            log::error!("cannot start a thread to dial: {e}");
            self.set_state(State::Connecting, State::Gone);
        }
    }

    /// Dials one connection and starts its serving thread. Runs on a thread of its own
    /// that ends once the connection is up: glibc caches freed blocks per thread, and the
    /// dial's (handshake buffers, strings) would otherwise stay with the serving thread,
    /// resident for the connection's whole life: 1.3 MiB for a thousand connections.
    fn dial(self: Arc<Self>) {
        let settings = self.settings();
        let config = &settings.config;
        let greeting = Greeting {
            id: config.id.clone(),
            size: config.pool_idle_size,
        };
        let server = dial::Server {
            url: &self.target,
            addr: self.addr,
            name: &self.name,
        };
        match dial::dial(&server, &settings.tls, &config.secret_key, &greeting) {
            Ok(ws) => {
                // One connection is debug: the pool says at info when it is full.
                let failed = std::mem::take(&mut *self.failures.lock());
                log::debug!(
                    "{}: connection registered ({failed} failed attempts before)",
                    self.name
                );
                self.set_state(State::Connecting, State::Idle);
                let pool = self.clone();
                // On failure the closure, and the connection in it, is dropped: closed.
                if let Err(e) = spawn("connection", move || connection::serve(&pool, ws)) {
                    log::error!("cannot start a connection thread: {e}");
                    self.set_state(State::Idle, State::Gone);
                }
            }
            Err(e) => {
                let (failures, delay) = self.next_delay(config);
                // Every failure until the second, then fewer: an outage logs a handful of
                // lines, not one a second.
                if failures.is_power_of_two() {
                    log::warn!(
                        "{e} (attempt {failures}, retrying in {} ms)",
                        delay.as_millis()
                    );
                } else {
                    log::debug!("{e} (attempt {failures})");
                }
                // Stay counted as connecting while waiting, so that no other dial starts;
                // a shutdown or a drain cuts the wait short.
                self.pause(delay);
                self.set_state(State::Connecting, State::Gone);
            }
        }
    }

    /// Counts one more failed dial and returns the count and the wait before the next.
    fn next_delay(&self, config: &ClientConfig) -> (u32, Duration) {
        let failures = {
            let mut failures = self.failures.lock();
            *failures = failures.saturating_add(1);
            *failures
        };
        let delay = backoff(
            config.reconnect_delay,
            config.reconnect_max_delay,
            failures,
            fastrand::f64(),
        );
        (failures, delay)
    }
}

/// "1 connection", "10 connections".
fn connections(n: usize) -> String {
    match n {
        1 => "1 connection".to_string(),
        n => format!("{n} connections"),
    }
}

/// Starts a thread with the small stack of connection threads.
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK_SIZE)
        .spawn(f)
        .map(drop)
}

/// The wait after `failures` failed dials in a row: `initial` doubled at each failure
/// after the first, capped at `max`, scaled by `0.5 + random / 2` (`random` in [0, 1)).
pub(super) fn backoff(initial: Duration, max: Duration, failures: u32, random: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1 << doublings).min(max);
    base.mul_f64(0.5 + random.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let ms = Duration::from_millis;
        let full = |n| backoff(ms(100), ms(1000), n, 1.0);
        let waits: Vec<_> = (1..=6).map(full).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(backoff(ms(100), ms(1000), 3, 0.0), ms(200), "half at least");
        assert_eq!(
            backoff(ms(100), ms(1000), u32::MAX, 0.5),
            ms(750),
            "no overflow"
        );
        assert_eq!(backoff(ms(100), ms(100), 1, 2.0), ms(100), "random clamped");
    }
}
