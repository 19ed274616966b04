//! The registration row (issue 13): what one `/register` costs the server as its number
//! of WebSockets grows. A fresh `wsp_server` (no client) is sent raw WebSockets
//! ([`crate::rawws`]) in three batches: the first [`BATCH`], the ones up to [`BATCH`]
//! before the end, and the last [`BATCH`] (from 9,000 to 10,000 already registered).
//! Each batch is timed from its first connect until the server's `/status.json` counts
//! all of its WebSockets idle, and the server's CPU time over that span is divided by the
//! WebSockets the batch added. Then the server's RSS and threads are read with all of
//! them idle, once they have stood still.
//!
//! The WebSockets are never read: the server runs with a ping interval of an hour
//! ([`NO_PING_MS`]), so that no ping needs an answer during the row, and the CPU measured
//! is the registrations', not that of pinging those already in. They all greet as one
//! client whose announced pool size is the row's count, so none is "in excess" and closed.
//!
//! This program holds one descriptor per WebSocket, the server at least one (today's
//! three): the open-file limit is raised to the hard limit before the server starts,
//! which inherits it. When the limit is too low for [`COUNT`] in this program, or in the
//! server at the rate of descriptors per WebSocket it showed in the first batch, the row
//! registers the most whole batches that fit, and says why.

use std::fmt::Write;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use wsp::protocol::Greeting;

use crate::binaries::Binaries;
use crate::procfs::{self, Snapshot};
use crate::procs::Proc;
use crate::units::thousands;
use crate::{http, idle, rawws, stack};

/// WebSockets registered in all, unless `BENCH_REGISTER_MAX` or the open-file limit say
/// fewer; at most the greeting's largest pool size.
pub const COUNT: usize = 10_000;
/// WebSockets in the first and in the last batch.
pub const BATCH: usize = 1000;
/// How long each batch may take, from its first connect until the server counts it.
pub const BATCH_WITHIN: Duration = Duration::from_secs(120);
/// Descriptors kept free beside the WebSockets, in this program and in the server
/// (logs, listeners, `/status.json` requests, the other rows' children).
const FD_HEADROOM: usize = 200;
/// The open-file limit taken when the hard limit is unlimited: Linux's default
/// `fs.nr_open`, above which no limit can be set.
const UNLIMITED_FILES: usize = 1 << 20;
/// The server's `--ping-interval` and `--ping-timeout`, ms: an hour, longer than the row.
pub const NO_PING_MS: &str = "3600000";
/// The client id of every WebSocket.
const CLIENT_ID: &str = "bench-register";
/// First and longest pause between two reads of `/status.json`: short enough for the wall
/// time of a fast batch, long enough to cost a slow server little.
const STATUS_FIRST_PAUSE: Duration = Duration::from_millis(1);
const STATUS_MAX_PAUSE: Duration = Duration::from_millis(10);

/// One batch: from `from` registered WebSockets towards `to`.
pub struct Batch {
    pub from: usize,
    pub to: usize,
    /// What the server counted when the batch ended.
    pub reached: usize,
    /// From the first connect until the server counted `reached`.
    pub took: Duration,
    /// The server's CPU time (user + system) meanwhile, in seconds.
    pub cpu_secs: f64,
    /// Why `reached` is short of `to`, when it is.
    pub shortfall: Option<String>,
}

impl Batch {
    /// Server CPU seconds per WebSocket the batch added.
    pub fn cpu_per_registration(&self) -> Option<f64> {
        let added = self.reached.saturating_sub(self.from);
        (added > 0).then(|| self.cpu_secs / added as f64)
    }
}

/// The row's figures.
pub struct RegisterResult {
    /// WebSockets aimed at: [`COUNT`] or fewer.
    pub count: usize,
    /// Why `count` is below [`COUNT`], when it is.
    pub capped_by: Option<String>,
    /// In order; a batch that fell short is the last.
    pub batches: Vec<Batch>,
    /// The server with every registered WebSocket idle.
    pub server: Snapshot,
    /// Whether its RSS and threads stood still before it was read (see [`idle::settle`]).
    pub settled: bool,
}

impl RegisterResult {
    /// The first batch and the last, when the row got that far.
    pub fn first_and_last(&self) -> (Option<&Batch>, Option<&Batch>) {
        let first = self.batches.first();
        let last = self.batches.last().filter(|b| b.to == self.count);
        (first, last)
    }
}

/// Runs the row; `max` is `BENCH_REGISTER_MAX`.
pub fn measure(
    bins: &Binaries,
    log_dir: &Path,
    max: Option<usize>,
) -> Result<RegisterResult, String> {
    let fd_limit = raise_fd_limit()?;
    let (mut count, mut capped_by) = plan(max, fd_limit)?;
    let mut run = Run::start(bins, log_dir, count, fd_limit)?;
    let fds_at_start = procfs::open_files(run.server.pid())?;
    let mut batches = Vec::new();
    let mut to = BATCH;
    loop {
        eprintln!(
            "bench: registering WebSockets {} to {to}",
            run.sockets.len()
        );
        let batch = run.batch(to)?;
        let short = batch.reached < to;
        batches.push(batch);
        if batches.len() == 1 && !short {
            // The server may hold more than one descriptor per WebSocket (today's holds
            // three): fit the rest of the row to its limit.
            let added = procfs::open_files(run.server.pid())?.saturating_sub(fds_at_start);
            let per_socket = added as f64 / BATCH as f64;
            let fits = fit(fd_limit.saturating_sub(fds_at_start), per_socket);
            if fits < count {
                count = fits;
                capped_by = Some(format!(
                    "the server holds {per_socket:.1} descriptors per WebSocket: its \
                     open-file limit ({}, `ulimit -Hn`) fits {}",
                    thousands(fd_limit as u64),
                    thousands(fits as u64)
                ));
            }
        }
        if short || to >= count || count < 2 * BATCH {
            break;
        }
        to = if to < count - BATCH {
            count - BATCH
        } else {
            count
        };
    }
    let (snapshots, settled) = idle::settle(&[run.server.pid()])?;
    Ok(RegisterResult {
        count,
        capped_by,
        batches,
        server: snapshots[0],
        settled,
    })
}

/// How many WebSockets the row registers as far as this program's open-file limit goes
/// (one descriptor each), and what capped it below [`COUNT`].
fn plan(max: Option<usize>, fd_limit: usize) -> Result<(usize, Option<String>), String> {
    let mut count = COUNT;
    let mut capped_by = None;
    if let Some(max) = max.filter(|&m| m < count) {
        count = max;
        capped_by = Some(format!("`BENCH_REGISTER_MAX={max}`"));
    }
    let fits = fit(fd_limit, 1.0);
    if fits < count {
        count = fits;
        capped_by = Some(format!(
            "the open-file limit ({}, `ulimit -Hn`) fits {}",
            thousands(fd_limit as u64),
            thousands(fits as u64)
        ));
    }
    if count < 2 * BATCH {
        return Err(format!(
            "the open-file limit ({fd_limit}, `ulimit -Hn`) is too low for {} WebSockets",
            2 * BATCH
        ));
    }
    Ok((count, capped_by))
}

/// Whole batches of WebSockets that `free` descriptors hold, at `per_socket` each,
/// keeping [`FD_HEADROOM`].
fn fit(free: usize, per_socket: f64) -> usize {
    let sockets = free.saturating_sub(FD_HEADROOM) as f64 / per_socket.max(1.0);
    sockets as usize / BATCH * BATCH
}

/// The server of the row and the WebSockets registered to it so far.
struct Run {
    server: Proc,
    addr: SocketAddr,
    greeting: String,
    fd_limit: usize,
    sockets: Vec<TcpStream>,
}

impl Run {
    /// Starts the server (it inherits the raised open-file limit) and waits until it
    /// listens; `count` is the pool size the WebSockets announce.
    fn start(
        bins: &Binaries,
        log_dir: &Path,
        count: usize,
        fd_limit: usize,
    ) -> Result<Run, String> {
        let args = [
            "--port",
            "0",
            "--log-level",
            "warn",
            "--ping-interval",
            NO_PING_MS,
            "--ping-timeout",
            NO_PING_MS,
        ]
        .map(String::from);
        let mut server = Proc::spawn("server-register", 1, &bins.server, &args, log_dir)?;
        let addr = stack::wait_listening(&mut server)?;
        let greeting = Greeting {
            id: CLIENT_ID.into(),
            size: count,
        };
        Ok(Run {
            server,
            addr,
            greeting: greeting.to_string(),
            fd_limit,
            sockets: Vec::with_capacity(count),
        })
    }

    /// Registers WebSockets until the server counts `to` of them, or [`BATCH_WITHIN`] has
    /// passed.
    fn batch(&mut self, to: usize) -> Result<Batch, String> {
        let pid = self.server.pid();
        let from = self.sockets.len();
        let started = Instant::now();
        let deadline = started + BATCH_WITHIN;
        let cpu_before = procfs::precise_cpu_secs(pid)?;
        let opened = rawws::open(self.addr, to - from, &self.greeting, deadline);
        self.sockets.extend(opened.sockets);
        let expected = self.sockets.len();
        let (reached, waited) = wait_counted(&mut self.server, self.addr, expected, deadline);
        let took = started.elapsed();
        let cpu_secs = procfs::precise_cpu_secs(pid)? - cpu_before;
        let mut why = Vec::new();
        if opened.failed > 0 {
            let first = opened.first_error.unwrap_or_default();
            why.push(format!(
                "{} upgrades failed (first: {first})",
                opened.failed
            ));
        }
        why.extend(waited.err());
        if reached < to {
            if let Ok(open) = procfs::open_files(pid) {
                why.push(format!(
                    "the server has {open} files open, its limit is {}",
                    self.fd_limit
                ));
            }
        }
        Ok(Batch {
            from,
            to,
            reached,
            took,
            cpu_secs,
            shortfall: (reached < to).then(|| why.join("; ")),
        })
    }
}

/// Polls `/status.json` until it counts `expected` idle WebSockets of [`CLIENT_ID`];
/// returns the last count, and why it stopped short if it did.
fn wait_counted(
    server: &mut Proc,
    addr: SocketAddr,
    expected: usize,
    deadline: Instant,
) -> (usize, Result<(), String>) {
    let mut pause = STATUS_FIRST_PAUSE;
    let mut counted = 0;
    let mut last_error = None;
    loop {
        // A failed read is tried again: a busy server may refuse one.
        match idle_count(addr) {
            Ok(n) if n >= expected => return (n, Ok(())),
            Ok(n) => counted = n,
            Err(e) => last_error = Some(e),
        }
        if let Some(status) = server.exited() {
            return (counted, Err(format!("{server} exited ({status})")));
        }
        if Instant::now() >= deadline {
            let mut why = format!("the server counted {counted} of {expected} in time");
            if let Some(e) = last_error {
                let _ = write!(why, " (last failed read of /status.json: {e})");
            }
            return (counted, Err(why));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(STATUS_MAX_PAUSE);
    }
}

/// The idle WebSockets of [`CLIENT_ID`] that `/status.json` counts.
fn idle_count(addr: SocketAddr) -> Result<usize, String> {
    let (status, body) = http::get(addr, "/status.json", None)?;
    if status != 200 {
        return Err(format!("/status.json answered {status}"));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("/status.json: {e}"))?;
    let clients = json["clients"]
        .as_array()
        .ok_or("/status.json has no clients list")?;
    let idle = clients
        .iter()
        .filter(|c| c["id"] == CLIENT_ID)
        .filter_map(|c| c["idle"].as_u64())
        .sum::<u64>();
    Ok(idle as usize)
}

/// Raises this process's open-file limit to the hard limit (children started afterwards
/// inherit it; an unlimited one counts as [`UNLIMITED_FILES`]); returns the new limit.
fn raise_fd_limit() -> Result<usize, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one `rlimit`, which we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let e = io::Error::last_os_error();
        return Err(format!("reading RLIMIT_NOFILE: {e}"));
    }
    let hard = limit.rlim_max.min(UNLIMITED_FILES as libc::rlim_t);
    if limit.rlim_cur < hard {
        limit.rlim_cur = hard;
        // SAFETY: setrlimit(2) reads one `rlimit`, which we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            let e = io::Error::last_os_error();
            return Err(format!("raising RLIMIT_NOFILE to {hard}: {e}"));
        }
    }
    Ok(usize::try_from(limit.rlim_cur).unwrap_or(UNLIMITED_FILES))
}
