//! The connections of one target server: a supervisor thread keeps `poolidlesize` of
//! them idle and never more than `poolmaxsize` in all.
//!
//! Each connection runs on its own thread ([`super::connection`]) and reports its state
//! changes here. The supervisor wakes on every change, and at least once a second, to
//! open what is missing. While no connection is up it dials one at a time on its own
//! thread, so an unreachable server is retried about once a second, not hammered.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use url::Url;

use super::{connection, dial};
use crate::config::ClientConfig;
use crate::protocol::Greeting;

/// How often the supervisor checks the pool even when nothing happened.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Stack size of connection threads: bodies go through heap buffers.
pub const THREAD_STACK_SIZE: usize = 256 * 1024;

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
}

impl Counts {
    fn total(&self) -> usize {
        self.connecting + self.idle + self.busy
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

/// One target's pool, shared by its supervisor and connection threads.
pub struct TargetPool {
    pub target: Url,
    pub config: Arc<ClientConfig>,
    pub agent: ureq::Agent,
    counts: Mutex<Counts>,
    wake: (Sender<()>, Receiver<()>),
}

impl TargetPool {
    pub fn new(target: Url, config: Arc<ClientConfig>, agent: ureq::Agent) -> Arc<TargetPool> {
        Arc::new(TargetPool {
            target,
            config,
            agent,
            counts: Mutex::new(Counts::default()),
            wake: bounded(1),
        })
    }

    /// Records a connection moving from one state to another and wakes the supervisor.
    pub fn set_state(&self, from: State, to: State) {
        {
            let mut counts = self.counts.lock();
            if let Some(n) = counts.slot(from) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = counts.slot(to) {
                *n += 1;
            }
        }
        let _ = self.wake.0.try_send(());
    }

    /// The supervisor: runs until `stop` receives or disconnects.
    pub fn supervise(self: &Arc<Self>, stop: &Receiver<()>) {
        log::info!("connecting to {}", self.target);
        loop {
            for _ in 0..self.missing() {
                self.spawn_connection();
            }
            crossbeam_channel::select! {
                recv(stop) -> _ => return,
                recv(self.wake.1) -> _ => {},
                default(CHECK_INTERVAL) => {},
            }
        }
    }

    /// How many connections to open now: enough to reach `poolidlesize` idle ones,
    /// within `poolmaxsize`, and only one while none is up.
    fn missing(&self) -> usize {
        let counts = *self.counts.lock();
        if counts.idle + counts.busy == 0 {
            return usize::from(counts.connecting == 0);
        }
        let wanted = self
            .config
            .pool_idle_size
            .saturating_sub(counts.idle + counts.connecting);
        wanted.min(self.config.pool_max_size.saturating_sub(counts.total()))
    }

    fn spawn_connection(self: &Arc<Self>) {
        self.set_state(State::Gone, State::Connecting);
        let pool = self.clone();
        let spawned = thread::Builder::new()
            .name("connection".into())
            .stack_size(THREAD_STACK_SIZE)
            .spawn(move || pool.run_connection());
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
            self.set_state(State::Connecting, State::Gone);
        }
    }

    fn run_connection(self: Arc<Self>) {
        let greeting = Greeting {
            id: self.config.id.clone(),
            size: self.config.pool_idle_size,
        };
        match dial::dial(&self.target, &self.config.secret_key, &greeting) {
            Ok(ws) => {
                log::debug!("connected to {}", self.target);
                self.set_state(State::Connecting, State::Idle);
                connection::serve(&self, ws);
            }
            Err(e) => {
                log::warn!("{e}");
                // Stay counted as connecting a moment, so that the retry waits.
                thread::sleep(CHECK_INTERVAL);
                self.set_state(State::Connecting, State::Gone);
            }
        }
    }
}
