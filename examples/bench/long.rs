//! The long row (`BENCH_LONG=1`): does memory stay flat? A fresh tunnel relays the small
//! request from wrk at 16 connections: first exactly [`FIRST`] requests, then, in runs of
//! at most [`CHUNK`], until [`TOTAL`] have been relayed; RSS of the server and the client
//! is read between runs (while wrk is not running, so at the same point of a request's
//! life every time). Every sample goes to `target/bench-logs/long-rss.tsv`.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::binaries::Binaries;
use crate::procfs::{self, Snapshot};
use crate::small::SMALL_PATH;
use crate::stack::{Tunnel, TunnelSpec, Upstream};
use crate::wrk::{self, Load};

/// Requests before the first sample.
pub const FIRST: u64 = 10_000;
/// Requests before the last sample.
pub const TOTAL: u64 = 1_000_000;
/// wrk's connections.
pub const CONNECTIONS: usize = 16;
/// Longest wrk run between two samples.
const CHUNK: Duration = Duration::from_secs(30);
/// Most wrk runs; reached only when the relay is far slower than any machine makes it.
const MAX_RUNS: usize = 200;

/// RSS of both processes after some number of requests.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub requests: u64,
    pub server: Snapshot,
    pub client: Snapshot,
}

pub struct LongResult {
    pub samples: Vec<Sample>,
    /// Answers other than 2xx/3xx, and socket errors, over all runs.
    pub errors: u64,
    pub took: Duration,
}

impl LongResult {
    pub fn first(&self) -> Option<&Sample> {
        self.samples.first()
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.last()
    }
}

/// Runs the row; `rate` (requests/s at 16 connections through the tunnel, from the small
/// rows) sizes the wrk runs.
pub fn measure(
    bins: &Binaries,
    log_dir: &Path,
    upstream: &Upstream,
    rate: f64,
) -> Result<LongResult, String> {
    let spec = TunnelSpec {
        tag: "long",
        server_log_level: "warn",
        server_flags: &[],
        client_flags: &[],
    };
    let tunnel = Tunnel::start_ready(bins, log_dir, &spec, upstream)?;
    let started = Instant::now();
    let destination = upstream.url(SMALL_PATH);
    let url = tunnel.request_url();
    let mut rate = rate.max(100.0);
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut total = 0;
    for run in 0..MAX_RUNS {
        let first = run == 0;
        let wanted = if first { FIRST } else { TOTAL - total };
        // The first run stops by count and needs slack; the others stop by time.
        let secs = if first {
            2.0 * wanted as f64 / rate + 2.0
        } else {
            (wanted as f64 / rate).ceil().min(CHUNK.as_secs_f64())
        };
        let threads = wrk::threads(CONNECTIONS) as u64;
        let result = wrk::run(&Load {
            url: &url,
            destination: Some(&destination),
            connections: CONNECTIONS,
            duration: Duration::from_secs_f64(secs.max(1.0)),
            stop_after_per_thread: first.then_some(FIRST / threads),
            post_bytes: None,
            log_base: &log_dir.join(format!("wrk-long-{run:03}")),
        })?;
        if result.requests == 0 {
            return Err(format!("wrk run {run} of the long row relayed no request"));
        }
        if !first {
            rate = result.rate();
        }
        errors += result.errors();
        total += result.requests;
        samples.push(Sample {
            requests: total,
            server: procfs::snapshot(tunnel.server.pid())?,
            client: procfs::snapshot(tunnel.client.pid())?,
        });
        if total >= TOTAL {
            write_tsv(log_dir, &samples)?;
            return Ok(LongResult {
                samples,
                errors,
                took: started.elapsed(),
            });
        }
    }
    Err(format!(
        "the long row relayed only {total} requests in {MAX_RUNS} wrk runs"
    ))
}

fn write_tsv(log_dir: &Path, samples: &[Sample]) -> Result<(), String> {
    let mut tsv =
        String::from("requests\tserver_rss_kib\tserver_threads\tclient_rss_kib\tclient_threads\n");
    for s in samples {
        let _ = writeln!(
            tsv,
            "{}\t{}\t{}\t{}\t{}",
            s.requests, s.server.rss_kib, s.server.threads, s.client.rss_kib, s.client.threads
        );
    }
    let path = log_dir.join("long-rss.tsv");
    std::fs::write(&path, tsv).map_err(|e| format!("writing {}: {e}", path.display()))
}
