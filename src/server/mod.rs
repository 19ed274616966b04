//! The public side: one HTTP listener with `/register`, `/request` and `/status`.
//!
//! tiny_http accepts connections and parses requests; [`Server::run`] hands each request
//! to a thread of its own, which runs one of the handlers below to the end. Shared state
//! is the immutable [`ServerConfig`] and the [`pool::Hub`] of registered connections.
//!
//! - [`register`]: `/register`, a client offers a WebSocket.
//! - [`request`]: `/request`, checks and dispatch.
//! - [`relay`]: the exchange over one WebSocket.
//! - [`respond`]: the relayed response, streamed to the caller.
//! - [`pool`]: idle and busy connections per client.
//! - [`socket`]: the TCP socket behind a tiny_http connection.

pub mod pool;
pub mod register;
pub mod relay;
pub mod request;
pub mod respond;
pub mod socket;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use tiny_http::{Header, Response};

use crate::config::ServerConfig;
use pool::Hub;

/// Stack size of request and registration threads. Bodies are copied through heap
/// buffers, so a small stack is plenty, and thousands of threads stay cheap.
pub const THREAD_STACK_SIZE: usize = 256 * 1024;
/// The status wsp answers when it refuses or fails to relay a request, or a registration.
pub const STATUS_PROXY_ERROR: u16 = 526;
/// How often idle connections beyond a client's pool size are looked for (Go: 5 s).
pub const CLEAN_UP_INTERVAL: Duration = Duration::from_secs(5);

/// What can stop the server or one of its handlers.
#[derive(Debug)]
pub enum Error {
    /// The listener could not be bound or set up.
    Bind { addr: String, source: io::Error },
    /// tiny_http could not start on the listener.
    Start(String),
    /// A registration was refused or failed.
    Register(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Start(why) => write!(f, "cannot start HTTP server: {why}"),
            Error::Register(why) => write!(f, "registration refused: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// State every handler thread sees.
pub struct Shared {
    pub config: ServerConfig,
    pub hub: Hub,
    /// The port we listen on, to find accepted sockets (see [`socket`]).
    pub local_port: u16,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    http: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: (Sender<()>, Receiver<()>),
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    http: Arc<tiny_http::Server>,
    stop: Sender<()>,
}

impl ShutdownHandle {
    /// Makes [`Server::run`] return: no new request is accepted.
    pub fn shutdown(&self) {
        let _ = self.stop.try_send(());
        self.http.unblock();
    }
}

impl Server {
    /// Binds `host:port` from the config.
    pub fn bind(config: ServerConfig) -> Result<Server, Error> {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr).map_err(|source| Error::Bind { addr, source })?;
        Server::from_listener(listener, config)
    }

    /// Serves on a listener bound by the caller (tests bind `127.0.0.1:0`).
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Result<Server, Error> {
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: "listener".into(),
            source,
        })?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::Start(e.to_string()))?;
        let shared = Shared {
            config,
            hub: Hub::default(),
            local_port: addr.port(),
        };
        Ok(Server {
            http: Arc::new(http),
            shared: Arc::new(shared),
            addr,
            stop: bounded(1),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            http: self.http.clone(),
            stop: self.stop.0.clone(),
        }
    }

    /// Serves until shut down: each request on a thread of its own.
    pub fn run(&self) {
        let cleaner = self.spawn_cleaner();
        for request in self.http.incoming_requests() {
            let shared = self.shared.clone();
            let spawned = thread::Builder::new()
                .name("request".into())
                .stack_size(THREAD_STACK_SIZE)
                .spawn(move || route(&shared, request));
            if let Err(e) = spawned {
                log::error!("cannot start a request thread: {e}");
            }
        }
        let _ = self.stop.0.try_send(());
        if let Ok(handle) = cleaner {
            let _ = handle.join();
        }
        self.shared.hub.close_idle();
    }

    fn spawn_cleaner(&self) -> io::Result<thread::JoinHandle<()>> {
        let shared = self.shared.clone();
        let stop = self.stop.1.clone();
        thread::Builder::new()
            .name("clean-up".into())
            .spawn(move || {
                while stop.recv_timeout(CLEAN_UP_INTERVAL).is_err() {
                    shared.hub.clean_up(shared.config.idle_timeout);
                }
            })
    }
}

/// Sends a request to its handler by path.
fn route(shared: &Shared, request: tiny_http::Request) {
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    match path.as_str() {
        "/register" => {
            if let Err(e) = register::handle_register(shared, request) {
                log::warn!("{e}");
            }
        }
        "/request" => request::handle_request(shared, request),
        "/status" => {
            // Exactly `ok`, no newline: what Go's wsp answers and health checks expect.
            let _ = request.respond(plain_response(200, "ok".into()));
        }
        _ => {
            let _ = request.respond(text_response(404, "404 page not found"));
        }
    }
}

/// wsp's plain-text answer: the message and a newline.
pub fn text_response(status: u16, text: &str) -> Response<io::Cursor<Vec<u8>>> {
    plain_response(status, format!("{text}\n"))
}

fn plain_response(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    let mut response = Response::from_data(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=utf-8"[..]) {
        response.add_header(h);
    }
    response
}

/// The first value of a request header.
pub fn request_header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}
