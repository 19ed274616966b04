//! The private side: keeps WebSockets open to each target server and performs the
//! requests that come over them against internal APIs.
//!
//! A reload (SIGHUP, [`ReloadHandle`]) puts a new configuration in force without
//! dropping a connection or a request in flight.
//!
//! Shutdown is graceful: on [`ShutdownHandle::shutdown`] no connection is opened any
//! more, idle connections are closed with a close frame (1001, going away), busy ones
//! first finish their exchange, and [`Client::run`] returns once all are closed or
//! `shutdowntimeout` has passed.
//!
//! - [`fleet`]: the pools: one per address of each target's host name, followed as the
//!   addresses and the targets change.
//! - [`pool`]: a supervisor keeping one pool at its configured size.
//! - [`dial`]: opening one WebSocket (TCP, TLS for `wss://`, handshake, greeting).
//! - [`stream`]: the stream under a WebSocket, plain or TLS.
//! - [`tls`]: whom TLS trusts (`cafile`, `insecure`), for servers and internal APIs.
//! - [`connection`]: one connection's thread, serving exchanges one after another.
//! - [`connect`]: a `CONNECT` stream: the `connect` rules, the TCP connection, the bytes.
//! - [`upgrade`]: a caller's WebSocket handshake, sent to the internal API; a 101 opens a
//!   stream.
//! - [`executor`]: performs each request with ureq, an agent per connection.
//! - [`upstream`]: the agents' TCP connections, checked for reuse in one system call.

// The list above links to modules internal to the crate, which public docs leave out:
// `cargo doc --document-private-items` shows them.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod executor;
pub(crate) mod fleet;
pub(crate) mod pool;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod upgrade;
pub(crate) mod upstream;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::config::ClientConfig;
use fleet::Fleet;
pub use fleet::Resolve;
use tls::Tls;

/// What can go wrong on the client side.
#[derive(Debug)]
pub enum Error {
    /// Opening a connection to a target failed.
    Dial { target: String, why: String },
    /// The TLS settings are not usable (`cafile`).
    Tls { why: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Dial { target, why } => write!(f, "connecting to {target}: {why}"),
            Error::Tls { why } => write!(f, "TLS set-up: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// What the client runs with: the configuration and whom TLS trusts, replaced whole by
/// a reload.
pub(crate) struct Settings {
    pub config: ClientConfig,
    pub tls: Tls,
}

/// The settings in force, shared by every pool and connection.
pub(crate) type Live = crate::live::Live<Settings>;

/// A client: pools of connections to its targets' servers, one per address.
pub struct Client {
    live: Arc<Live>,
    resolver: Arc<dyn Resolve>,
    /// Dropping this sender is the stop signal: every receiver (supervisors, connection
    /// threads waiting) sees the channel disconnect at once. Nothing is ever sent.
    stop: Arc<Mutex<Option<Sender<()>>>>,
    stopped: Receiver<()>,
    /// A reload took: the targets are looked at again at once.
    reloaded: (Sender<()>, Receiver<()>),
}

/// Stops a running client from another thread.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Mutex<Option<Sender<()>>>>);

impl ShutdownHandle {
    /// Starts the graceful shutdown; [`Client::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.0.lock().take();
    }
}

/// Reloads a running client's configuration from another thread (SIGHUP).
#[derive(Clone)]
pub struct ReloadHandle {
    live: Arc<Live>,
    reloaded: Sender<()>,
}

impl ReloadHandle {
    /// Puts `loaded` in force, or logs in one line why it cannot be and keeps the
    /// running configuration. `cafile` is read again (a renewed CA takes); `id` stays as
    /// it was, as the servers know the client by it. Connections stay: each takes the
    /// new settings at its next exchange, and new dials use them. Pools of targets
    /// removed drain and close, new targets get pools.
    pub fn reload(&self, loaded: Result<ClientConfig, String>) {
        let settings = loaded.and_then(|mut config| {
            let running = self.live.get();
            keep_id(&mut config, &running.config.id);
            let tls = Tls::new(config.ca_file.as_deref(), config.insecure);
            let tls = tls.map_err(|e| e.to_string())?;
            Ok(Settings { config, tls })
        });
        match settings {
            Ok(settings) => {
                log::set_max_level(settings.config.log_level);
                self.live.set(settings);
                let _ = self.reloaded.try_send(());
                log::info!("configuration reloaded");
            }
            Err(why) => log::error!("reload refused, the running configuration stays: {why}"),
        }
    }
}

/// Keeps the running `id` in `config`: the servers know the client's connections by it,
/// and a change would take only for new ones. A file with no `id` gives a new random one
/// at each load, which is no change the operator made: only another id is warned about.
fn keep_id(config: &mut ClientConfig, running: &str) {
    let generated = uuid::Uuid::parse_str(&config.id).is_ok_and(|id| id.get_version_num() == 4);
    if config.id != running && !generated {
        log::warn!("reload: id changes only at a restart; kept as it was");
    }
    running.clone_into(&mut config.id);
}

impl Client {
    /// Checks the settings; nothing is dialed before [`Client::run`].
    ///
    /// # Errors
    /// TLS that cannot be set up (`cafile`).
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        Client::with_resolver(config, Arc::new(fleet::SystemResolver))
    }

    /// [`Client::new`], with targets' host names resolved by `resolver` (tests give a
    /// resolver whose answer they change).
    ///
    /// # Errors
    /// TLS that cannot be set up (`cafile`).
    pub fn with_resolver(
        config: ClientConfig,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Client, Error> {
        let tls = Tls::new(config.ca_file.as_deref(), config.insecure)?;
        let (stop, stopped) = bounded::<()>(0);
        Ok(Client {
            live: Arc::new(Live::new(Settings { config, tls })),
            resolver,
            stop: Arc::new(Mutex::new(Some(stop))),
            stopped,
            reloaded: bounded(1),
        })
    }

    /// A handle to stop [`Client::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// A handle to reload the configuration from another thread.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            live: self.live.clone(),
            reloaded: self.reloaded.0.clone(),
        }
    }

    /// Keeps pools to every target's servers until shut down, then waits for the
    /// connections to finish their exchanges and close, at most `shutdowntimeout`.
    pub fn run(&self) {
        let fleet = Fleet::new(
            self.live.clone(),
            self.resolver.clone(),
            self.stopped.clone(),
        );
        let pools = fleet.run(&self.reloaded.1);
        let deadline = Instant::now() + self.live.get().config.shutdown_timeout;
        let unfinished: usize = pools.iter().map(|pool| pool.wait_closed(deadline)).sum();
        if unfinished > 0 {
            log::warn!("shutdown: {unfinished} connections still busy, giving up on them");
        }
        log::info!("client stopped");
    }
}
