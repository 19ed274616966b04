//! The public side: one HTTP listener with `/register`, `/request` and `/status`, and
//! an HTTP proxy for requests in absolute form.
//!
//! tiny_http accepts connections and parses requests, each connection on a thread of its
//! own, and calls `handle` on that thread for each request (no queue, no hand-off), which
//! runs one of the handlers below to the end. Shared state
//! is the immutable [`ServerConfig`] and the [`pool::Hub`] of registered connections. A
//! housekeeping thread pings idle connections and closes those beyond the pool sizes.
//!
//! Shutdown is graceful: the listener closes first, requests still arriving on open
//! connections are answered 503, in-flight ones get `shutdowntimeout` to finish, and the
//! idle WebSockets are closed with a close frame.
//!
//! - [`register`]: `/register`, a client offers a WebSocket.
//! - [`request`]: `/request`, checks and dispatch.
//! - [`proxy`]: HTTP proxy mode, requests in absolute form, dispatched as `/request`'s.
//! - [`stream`]: `CONNECT`, a stream through a client that allows it.
//! - [`retry`]: a request over one connection after another, while failures allow.
//! - [`relay`]: the exchange over one WebSocket.
//! - [`respond`]: the relayed response, streamed to the caller.
//! - [`reply`]: the answers wsp makes itself (526, 4xx, 503).
//! - [`pool`]: idle and busy connections per client.
//! - [`connection`]: one registered WebSocket and its liveness checks.
//! - [`status`]: `/status`, `/status.json` and `/metrics`.
//! - [`metrics`]: the counters behind them.
//! - [`watcher`]: one thread watching every idle WebSocket (pings answered at once).
//! - [`tls`]: the certificate and key the server terminates TLS with, if configured.

// The list above links to modules internal to the crate, which public docs leave out:
// `cargo doc --document-private-items` shows them.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod admin;
pub(crate) mod capture;
pub(crate) mod connection;
pub(crate) mod limits;
pub(crate) mod metrics;
pub(crate) mod pool;
pub(crate) mod proxy;
pub(crate) mod register;
pub(crate) mod relay;
pub(crate) mod reply;
pub(crate) mod request;
pub(crate) mod respond;
pub(crate) mod retry;
pub(crate) mod status;
pub(crate) mod stream;
pub mod tls;
pub(crate) mod watcher;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};

use crate::config::ServerConfig;
use crate::live::Live;
use metrics::Metrics;
use pool::Hub;
use reply::{retry_later, text_response};

/// How often idle connections beyond a client's pool size are looked for (Go: 5 s).
pub const CLEAN_UP_INTERVAL: Duration = Duration::from_secs(5);
/// During shutdown, how often the count of in-flight requests is looked at (a few
/// checks over a bounded time: not worth a condition variable on every request).
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Connections refused past `maxconnections` are logged once every this many: a flood
/// must not flood the log too.
const REFUSALS_PER_LOG: u64 = 1000;

/// What can stop the server or one of its handlers.
#[derive(Debug)]
pub enum Error {
    /// The listener could not be bound or set up.
    Bind { addr: String, source: io::Error },
    /// tiny_http could not start on the listener.
    Start(String),
    /// A registration was refused or failed.
    Register(String),
    /// The TLS certificate or key could not be used.
    Tls(tls::TlsError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Start(why) => write!(f, "cannot start HTTP server: {why}"),
            Error::Register(why) => write!(f, "registration refused: {why}"),
            Error::Tls(why) => write!(f, "TLS set-up: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// State every handler thread sees.
pub struct Shared {
    /// The configuration in force: replaced whole by a reload (SIGHUP); a request reads
    /// it once per use ([`Shared::config`]).
    config: Live<ServerConfig>,
    pub hub: Hub,
    /// Counters for `/metrics` and `/status.json`.
    pub metrics: Metrics,
    /// The console's record of recent exchanges; `None` without `admin`.
    pub capture: Option<capture::Capture>,
    /// The certificate TLS serves, which a reload may replace.
    certificate: Option<Arc<tls::Certificate>>,
    /// The caller rate limits; `None` without `callerrate`.
    limits: RwLock<Option<Arc<limits::RateLimits>>>,
    /// Watches idle connections, where the system allows (see [`watcher`]).
    watcher: Option<Arc<watcher::Watcher>>,
    /// Requests being handled, for the graceful shutdown to wait on.
    in_flight: AtomicUsize,
    /// Set once the shutdown began: requests still arriving are turned away.
    draining: AtomicBool,
    /// Connections refused for being past `maxconnections`, for the log.
    refusals: AtomicU64,
    /// The cap on open connections in force: `maxconnections`, or drawn from the open
    /// file limit.
    max_connections: usize,
}

impl Shared {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.get()
    }

    /// A keeper for a body's first bytes, when the console inspects bodies.
    pub fn keeper(&self) -> Option<capture::Keeper> {
        self.capture.as_ref().and_then(|c| c.keeper())
    }

    /// The caller rate limits in force now, if any.
    pub fn limits(&self) -> Option<Arc<limits::RateLimits>> {
        self.limits.read().clone()
    }

    /// Puts `new` in force, for every request that starts from now on; the
    /// registered connections and the requests in flight carry on. Keys that can change
    /// only at a restart (the addresses, TLS, `maxconnections`, the console) are kept
    /// as they were, with a warning when the file changed them.
    fn reload(&self, mut new: ServerConfig) {
        let old = self.config();
        let fixed = [
            ("host", old.host != new.host),
            ("port", old.port != new.port),
            ("certfile/keyfile", old.tls != new.tls),
            ("maxconnections", old.max_connections != new.max_connections),
            ("admin, capture, inspect", !same_console(&old, &new)),
        ];
        for (key, changed) in fixed {
            if changed {
                log::warn!("reload: {key} changes only at a restart; kept as it was");
            }
        }
        new.host.clone_from(&old.host);
        new.port = old.port;
        new.tls.clone_from(&old.tls);
        new.max_connections = old.max_connections;
        // The console's listener and ring stay; its token may change.
        let token = new.console.as_ref().and_then(|c| c.token.clone());
        new.console.clone_from(&old.console);
        if let Some(console) = &mut new.console {
            console.token = token;
        }
        if new.caller_rate != old.caller_rate {
            let limits = new
                .caller_rate
                .map(|(r, b)| Arc::new(limits::RateLimits::new(r, b)));
            *self.limits.write() = limits;
        }
        self.hub.set_max_inflight(new.client_max_inflight);
        log::set_max_level(new.log_level);
        self.config.set(new);
    }
}

/// Whether the console's settings are the same (the token aside, which may change).
fn same_console(old: &ServerConfig, new: &ServerConfig) -> bool {
    match (&old.console, &new.console) {
        (Some(a), Some(b)) => {
            a.addr == b.addr && a.capture == b.capture && a.body_limit == b.body_limit
        }
        (None, None) => true,
        _ => false,
    }
}

/// Counts one request as in flight for as long as it is handled.
struct InFlight<'a>(&'a Shared);

impl InFlight<'_> {
    fn new(shared: &Shared) -> InFlight<'_> {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    http: tiny_http::Server,
    /// The admin listener (`admin`), if configured, and its address.
    admin: Option<(tiny_http::Server, SocketAddr)>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Disconnects when [`ShutdownHandle::shutdown`] drops the sender; nothing is sent.
    stop: Receiver<()>,
    stop_sender: Arc<Mutex<Option<Sender<()>>>>,
}

/// Connections the admin listener keeps open at once: a few operators' browsers.
const ADMIN_CONNECTIONS: usize = 64;

/// Binds and starts the admin listener, if `admin` is set: plain HTTP, its own threads.
fn start_admin(shared: &Arc<Shared>) -> Result<Option<(tiny_http::Server, SocketAddr)>, Error> {
    let config = shared.config();
    let Some(console) = &config.console else {
        return Ok(None);
    };
    let bind = |source| Error::Bind {
        addr: console.addr.clone(),
        source,
    };
    let listener = TcpListener::bind(&console.addr).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let handler = {
        let shared = shared.clone();
        Arc::new(move |request| admin::handle(&shared, request))
    };
    let server = tiny_http::Server::from_listener_with_handler(
        listener,
        None,
        handler,
        Some(ADMIN_CONNECTIONS),
    )
    .map_err(|e| Error::Start(e.to_string()))?;
    Ok(Some((server, addr)))
}

/// Reloads a running server's configuration from another thread (SIGHUP).
#[derive(Clone)]
pub struct ReloadHandle(Arc<Shared>);

impl ReloadHandle {
    /// Puts `loaded` in force when it loaded; otherwise says why in one line and keeps
    /// the running configuration. Counted in `/metrics` either way.
    pub fn reload(&self, loaded: Result<ServerConfig, String>) {
        // The certificate and key are read again from the same files (a renewal writes
        // them in place): one that does not load refuses the whole reload.
        let loaded = loaded.and_then(|config| {
            let files = (&self.0.certificate, &self.0.config().tls);
            if let (Some(certificate), Some(files)) = files {
                certificate.replace(files).map_err(|e| e.to_string())?;
            }
            Ok(config)
        });
        match loaded {
            Ok(config) => {
                self.0.reload(config);
                self.0.metrics.count_reload(true);
                log::info!("configuration reloaded");
            }
            Err(why) => {
                self.0.metrics.count_reload(false);
                log::error!("reload refused, the running configuration stays: {why}");
            }
        }
    }
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Mutex<Option<Sender<()>>>>);

impl ShutdownHandle {
    /// Starts the graceful shutdown; [`Server::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.0.lock().take();
    }
}

impl Server {
    /// Binds `host:port` from the config.
    pub fn bind(config: ServerConfig) -> Result<Server, Error> {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr).map_err(|source| Error::Bind { addr, source })?;
        Server::from_listener(listener, config)
    }

    /// Serves on a listener bound by the caller (tests bind `127.0.0.1:0`): HTTPS when the
    /// config has a certificate and key, which are read here.
    ///
    /// # Errors
    /// The listener's address unreadable, the TLS files unusable (the message names the
    /// file), or tiny_http not starting.
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Result<Server, Error> {
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: "listener".into(),
            source,
        })?;
        let (ssl, certificate) = match &config.tls {
            Some(files) => {
                let (rustls, certificate) = tls::load(files).map_err(Error::Tls)?;
                (Some(tiny_http::SslConfig { rustls }), Some(certificate))
            }
            None => (None, None),
        };
        let watcher = match watcher::Watcher::new() {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                log::warn!("idle connections are not watched ({e}): pings from clients are answered when the connection is next used");
                None
            }
        };
        let max = max_connections(config.max_connections);
        let limits = config
            .caller_rate
            .map(|(rate, burst)| limits::RateLimits::new(rate, burst));
        let capture = config
            .console
            .as_ref()
            .map(|c| capture::Capture::new(c.capture, c.body_limit));
        let shared = Arc::new(Shared {
            max_connections: max,
            hub: Hub::new(config.ping_timeout, watcher.clone())
                .with_max_inflight(config.client_max_inflight),
            watcher,
            config: Live::new(config),
            metrics: Metrics::default(),
            capture,
            limits: RwLock::new(limits.map(Arc::new)),
            certificate,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            refusals: AtomicU64::new(0),
        });
        let handler = {
            let shared = shared.clone();
            Arc::new(move |request| handle(&shared, request))
        };
        log::debug!("at most {max} connections open at once (maxconnections)");
        let http = tiny_http::Server::from_listener_with_handler(listener, ssl, handler, Some(max))
            .map_err(|e| Error::Start(e.to_string()))?;
        let admin = start_admin(&shared)?;
        let (stop_sender, stop) = bounded(0);
        Ok(Server {
            http,
            admin,
            shared,
            addr,
            stop,
            stop_sender: Arc::new(Mutex::new(Some(stop_sender))),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }

    /// `https` when the server terminates TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        match self.shared.config().tls {
            Some(_) => "https",
            None => "http",
        }
    }

    /// A handle to reload the configuration from another thread.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle(self.shared.clone())
    }

    /// A handle to stop [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop_sender.clone())
    }

    /// Serves until shut down, then shuts down gracefully (see the module doc).
    pub fn run(self) {
        let housekeeping = self.spawn_housekeeping();
        let watching = self.spawn_watcher();
        // Requests are handled on tiny_http's threads; this one only waits for the stop.
        let _ = self.stop.recv();
        self.drain();
        if let Ok(handle) = housekeeping {
            let _ = handle.join();
        }
        if let Some(watcher) = &self.shared.watcher {
            watcher.stop();
        }
        if let Some(Ok(handle)) = watching {
            let _ = handle.join();
        }
        self.shared.hub.close_idle();
        log::info!("server stopped");
    }

    /// Stops listening, turns away requests still coming on open connections (503), and
    /// waits up to `shutdowntimeout` for in-flight requests.
    fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        self.http.stop_accepting();
        if let Some((admin, _)) = &self.admin {
            admin.stop_accepting();
        }
        let deadline = Instant::now() + self.shared.config().shutdown_timeout;
        loop {
            let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
            if in_flight == 0 {
                return;
            }
            if Instant::now() >= deadline {
                log::warn!("shutdown: {in_flight} requests still in flight, giving up on them");
                return;
            }
            thread::sleep(DRAIN_POLL);
        }
    }

    /// Starts the idle watcher's thread, if there is a watcher.
    fn spawn_watcher(&self) -> Option<io::Result<thread::JoinHandle<()>>> {
        let shared = self.shared.clone();
        self.shared.watcher.as_ref()?;
        let spawned = thread::Builder::new()
            .name("idle-watcher".into())
            .spawn(move || {
                if let Some(watcher) = &shared.watcher {
                    watcher.run(&shared.hub);
                }
            });
        if let Err(e) = &spawned {
            log::error!("cannot start the idle watcher: {e}");
        }
        Some(spawned)
    }

    /// Pings idle connections every `pinginterval` and closes idle ones beyond the pool
    /// sizes every [`CLEAN_UP_INTERVAL`], until the server stops.
    fn spawn_housekeeping(&self) -> io::Result<thread::JoinHandle<()>> {
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                // Read at each round: a reload may change the intervals.
                let mut next_ping = Instant::now() + shared.config().ping_interval;
                let mut next_clean = Instant::now() + CLEAN_UP_INTERVAL;
                let due = |at: Instant| stop.recv_deadline(at) == Err(RecvTimeoutError::Timeout);
                while due(next_ping.min(next_clean)) {
                    let now = Instant::now();
                    if now >= next_ping {
                        shared.hub.ping_idle();
                        // The round gave idle connections' buffers back: return them.
                        crate::sys::heap::trim();
                        next_ping = now + shared.config().ping_interval;
                    }
                    if now >= next_clean {
                        shared.hub.clean_up(shared.config().idle_timeout);
                        next_clean = now + CLEAN_UP_INTERVAL;
                    }
                }
            })
    }
}

/// The cap on open connections: `maxconnections`, or one drawn from the open file limit,
/// which is raised to its hard value first either way.
fn max_connections(configured: Option<usize>) -> usize {
    use crate::sys::fd_limit;
    let limit = fd_limit::raise_open_files();
    match (configured, limit) {
        (Some(max), Ok(limit)) => {
            if u64::try_from(max).unwrap_or(u64::MAX) >= limit {
                log::warn!(
                    "maxconnections {max} is not below the open file limit ({limit}): \
                     past about {limit} connections, new ones fail to be accepted"
                );
            }
            max
        }
        (Some(max), Err(_)) => max,
        (None, Ok(limit)) => fd_limit::default_max_connections(limit),
        (None, Err(e)) => {
            log::warn!("cannot read the open file limit ({e}): at most 1024 connections");
            1024
        }
    }
}

/// Handles one request, on the thread of the connection it came on.
fn handle(shared: &Shared, request: tiny_http::Request) {
    let _in_flight = InFlight::new(shared);
    if request.over_capacity() {
        return refuse_over_capacity(shared, request);
    }
    if shared.draining.load(Ordering::SeqCst) {
        let response = text_response(503, "wsp server is shutting down");
        let _ = request.respond(retry_later(response));
        return;
    }
    route(shared, request);
}

/// Answers a request that came on a connection past `maxconnections`: 503, and the
/// connection is closed.
fn refuse_over_capacity(shared: &Shared, request: tiny_http::Request) {
    let max = shared.max_connections;
    let refused = shared.refusals.fetch_add(1, Ordering::Relaxed) + 1;
    if refused % REFUSALS_PER_LOG == 1 {
        log::warn!("refusing connections: {max} open (maxconnections); {refused} refused so far");
    }
    let text =
        format!("wsp server: too many connections open ({max}); try again later (maxconnections)");
    let response = retry_later(text_response(503, &text)).with_connection_close();
    let _ = request.respond(response);
}

/// Sends a request to its handler: by the target's form first (an HTTP proxy's request
/// names a host, not a path), then by path.
fn route(shared: &Shared, request: tiny_http::Request) {
    if proxy::is_proxy_target(request.url()) {
        match request.method() {
            tiny_http::Method::Connect => stream::handle_connect(shared, request),
            _ => proxy::handle_proxy(shared, request),
        }
        return;
    }
    // Matched on the borrowed path: the request moves into its handler below.
    match request.url().split('?').next().unwrap_or_default() {
        "/register" => {
            if let Err(e) = register::handle_register(shared, request) {
                log::warn!("{e}");
            }
        }
        "/request" => request::handle_request(shared, request),
        "/status" => status::handle_status(shared, request, false),
        "/status.json" => status::handle_status(shared, request, true),
        "/metrics" => status::handle_metrics(shared, request),
        _ => {
            let _ = request.respond(text_response(404, "404 page not found"));
        }
    }
}
