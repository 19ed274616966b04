//! The idle row: a client asked to keep [`IDLE`] pooled connections open to the server,
//! and what that costs both of them in memory and threads once all are registered.
//!
//! This row's server logs at `debug`, whose "registered a connection" line for each
//! registration tells exactly when all of them are in (no request is relayed, so the level
//! adds no log lines to the measurement). Then the benchmark waits until both processes'
//! RSS and thread counts have stopped moving, so that a connection still being set up on
//! either side is not missed.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries::Binaries;
use crate::procfs::{self, Snapshot};
use crate::stack::{Tunnel, TunnelSpec};

/// Idle pooled connections of this row.
pub const IDLE: usize = 1000;
/// How long the connections may take to register.
const REGISTER_WITHIN: Duration = Duration::from_secs(120);
/// How long RSS and threads must stay the same to count as settled: longer than the
/// 5 s tiny_http keeps a spare thread after a burst of registrations, and than the 1 s
/// after which an idle client connection gives back its buffers and stack pages.
const STEADY_FOR: Duration = Duration::from_secs(6);
/// How long they may take to settle.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);
/// How often they are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The server and the client holding [`IDLE`] idle connections.
pub struct IdleResult {
    pub server: Snapshot,
    pub client: Snapshot,
    /// Whether RSS and threads stayed the same for [`STEADY_FOR`] before the deadline.
    pub settled: bool,
    /// From the client's start to the last registration.
    pub register_time: Duration,
}

pub fn measure(bins: &Binaries, log_dir: &Path) -> Result<IdleResult, String> {
    let size = IDLE.to_string();
    let spec = TunnelSpec {
        tag: "idle",
        server_log_level: "debug",
        server_flags: &[],
        client_flags: &["--pool-idle-size", &size, "--pool-max-size", &size],
    };
    let mut tunnel = Tunnel::start(bins, log_dir, &spec)?;
    let started = Instant::now();
    wait_registered(&mut tunnel)?;
    let register_time = started.elapsed();
    let (snapshots, settled) = settle(&[tunnel.server.pid(), tunnel.client.pid()])?;
    Ok(IdleResult {
        server: snapshots[0],
        client: snapshots[1],
        settled,
        register_time,
    })
}

/// Polls the server's log until it has [`IDLE`] registrations.
fn wait_registered(tunnel: &mut Tunnel) -> Result<(), String> {
    let deadline = Instant::now() + REGISTER_WITHIN;
    loop {
        let log = fs::read_to_string(&tunnel.server.log).unwrap_or_default();
        let registered = log.matches("registered a connection").count();
        if registered >= IDLE {
            return Ok(());
        }
        for proc in [&mut tunnel.server, &mut tunnel.client] {
            if let Some(status) = proc.exited() {
                return Err(format!(
                    "{proc} exited ({status}) with {registered} registered"
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "only {registered} of {IDLE} connections registered within {REGISTER_WITHIN:?}"
            ));
        }
        thread::sleep(SAMPLE_EVERY);
    }
}

/// Samples the processes `pids` until the RSS and threads of all are unchanged for
/// [`STEADY_FOR`], or [`SETTLE_WITHIN`] has passed; returns the last samples (in the
/// order of `pids`) and whether they settled. The registration row uses it too.
pub fn settle(pids: &[u32]) -> Result<(Vec<Snapshot>, bool), String> {
    let sample = || -> Result<Vec<Snapshot>, String> {
        pids.iter().map(|&pid| procfs::snapshot(pid)).collect()
    };
    let key =
        |s: &[Snapshot]| -> Vec<(u64, u64)> { s.iter().map(|s| (s.rss_kib, s.threads)).collect() };
    let deadline = Instant::now() + SETTLE_WITHIN;
    let mut last = sample()?;
    let mut steady_since = Instant::now();
    loop {
        thread::sleep(SAMPLE_EVERY);
        let now = sample()?;
        if key(&now) != key(&last) {
            steady_since = Instant::now();
        }
        last = now;
        if steady_since.elapsed() >= STEADY_FOR {
            return Ok((last, true));
        }
        if Instant::now() >= deadline {
            return Ok((last, false));
        }
    }
}
