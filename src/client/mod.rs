//! The private side: keeps WebSockets open to each target server and performs the
//! requests that come over them against internal APIs.
//!
//! Shutdown is graceful: on [`ShutdownHandle::shutdown`] no connection is opened any
//! more, idle connections are closed with a close frame (1001, going away), busy ones
//! first finish their exchange, and [`Client::run`] returns once all are closed or
//! `shutdowntimeout` has passed.
//!
//! - [`pool`]: per target, a supervisor keeping the pool at its configured size.
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
pub(crate) mod pool;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod upgrade;
pub(crate) mod upstream;

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;
use url::Url;

use crate::config::ClientConfig;
use pool::TargetPool;

/// What can go wrong on the client side.
#[derive(Debug)]
pub enum Error {
    /// A target URL is not usable.
    Target { target: String, why: String },
    /// Opening a connection to a target failed.
    Dial { target: String, why: String },
    /// The TLS settings are not usable (`cafile`).
    Tls { why: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Target { target, why } => write!(f, "target {target}: {why}"),
            Error::Dial { target, why } => write!(f, "connecting to {target}: {why}"),
            Error::Tls { why } => write!(f, "TLS set-up: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A client: one pool of connections per target.
pub struct Client {
    pools: Vec<Arc<TargetPool>>,
    config: Arc<ClientConfig>,
    /// Dropping this sender is the stop signal: every receiver (supervisors, connection
    /// threads waiting) sees the channel disconnect at once. Nothing is ever sent.
    stop: Arc<Mutex<Option<Sender<()>>>>,
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

impl Client {
    /// Checks the targets and prepares a pool for each.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let tls = Arc::new(tls::Tls::new(config.ca_file.as_deref(), config.insecure)?);
        let config = Arc::new(config);
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let pools = config
            .targets
            .iter()
            .map(|t| {
                let url = Url::parse(t).map_err(|e| Error::Target {
                    target: t.clone(),
                    why: e.to_string(),
                })?;
                Ok(TargetPool::new(
                    url,
                    config.clone(),
                    tls.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Client {
            pools,
            config,
            stop: Arc::new(Mutex::new(Some(stop_tx))),
        })
    }

    /// A handle to stop [`Client::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Runs every target's supervisor until shut down, then waits for the connections
    /// to finish their exchanges and close, at most `shutdowntimeout`.
    pub fn run(&self) {
        thread::scope(|scope| {
            for pool in &self.pools {
                scope.spawn(move || pool.supervise());
            }
        });
        let deadline = Instant::now() + self.config.shutdown_timeout;
        let mut unfinished = 0;
        for pool in &self.pools {
            unfinished += pool.wait_closed(deadline);
        }
        if unfinished > 0 {
            log::warn!("shutdown: {unfinished} connections still busy, giving up on them");
        }
        log::info!("client stopped");
    }
}
