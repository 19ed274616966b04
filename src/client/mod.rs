//! The private side: keeps WebSockets open to each target server and performs the
//! requests that come over them against internal APIs.
//!
//! - [`pool`]: per target, a supervisor keeping the pool at its configured size.
//! - [`dial`]: opening one WebSocket (TCP, handshake, greeting).
//! - [`connection`]: one connection's thread, serving exchanges one after another.
//! - [`executor`]: the ureq agent that performs each request.

pub mod connection;
pub mod dial;
pub mod executor;
pub mod pool;

use std::fmt;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Target { target, why } => write!(f, "target {target}: {why}"),
            Error::Dial { target, why } => write!(f, "connecting to {target}: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A client: one pool per target, all sharing one ureq agent.
pub struct Client {
    pools: Vec<Arc<TargetPool>>,
    stop: (Sender<()>, Receiver<()>),
}

/// Stops a running client from another thread.
#[derive(Clone)]
pub struct ShutdownHandle(Sender<()>);

impl ShutdownHandle {
    /// Makes [`Client::run`] return.
    pub fn shutdown(&self) {
        let _ = self.0.try_send(());
    }
}

impl Client {
    /// Checks the targets and prepares a pool for each.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let config = Arc::new(config);
        let agent = executor::agent();
        let pools = config
            .targets
            .iter()
            .map(|t| {
                let url = Url::parse(t).map_err(|e| Error::Target {
                    target: t.clone(),
                    why: e.to_string(),
                })?;
                Ok(TargetPool::new(url, config.clone(), agent.clone()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Client {
            pools,
            stop: bounded(0),
        })
    }

    /// A handle to stop [`Client::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.0.clone())
    }

    /// Runs every target's supervisor until shut down.
    pub fn run(&self) {
        thread::scope(|scope| {
            for pool in &self.pools {
                let stop = self.stop.1.clone();
                scope.spawn(move || pool.supervise(&stop));
            }
        });
    }
}
