//! The small-request rows: wrk on keep-alive connections, `GET /bytes?n=12` (a 12-byte
//! body; `/hello` answers 11), at 1, 16 and 64 connections, first straight to the test
//! API, then through a fresh tunnel whose server and client are measured.

use std::path::Path;
use std::time::Duration;

use crate::binaries::Binaries;
use crate::http;
use crate::procfs;
use crate::routes;
use crate::stack::{Tunnel, TunnelSpec, Upstream, Usage};
use crate::wrk::{self, Load, WrkResult};

/// The request of these rows.
pub const SMALL_PATH: &str = "/bytes?n=12";
/// The length of its body.
pub const SMALL_LEN: u64 = 12;
/// Keep-alive connections of the rows.
pub const CONCURRENCY: [usize; 3] = [1, 16, 64];

/// One small-request row.
pub struct SmallResult {
    pub connections: usize,
    pub direct: WrkResult,
    pub tunnel: WrkResult,
    pub usage: Usage,
    pub direct_budget: Budget,
    pub tunnel_budget: Budget,
}

/// Where the CPU time of one wrk run went, besides wrk (in [`WrkResult::cpu_secs`]) and
/// the tunnel (in [`Usage`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// The test API's CPU time.
    pub upstream_secs: f64,
    /// The whole machine's busy (or stolen) CPU time, all cores summed.
    pub machine_secs: f64,
}

/// Everything a small-request row needs.
pub struct Bench<'a> {
    pub bins: &'a Binaries,
    pub log_dir: &'a Path,
    pub upstream: &'a Upstream,
    pub duration: Duration,
}

/// Measures the row of `connections` connections.
pub fn measure(bench: &Bench, connections: usize) -> Result<SmallResult, String> {
    let direct_url = bench.upstream.url(SMALL_PATH);
    check_body(http::get(bench.upstream.addr, SMALL_PATH, None), "direct")?;
    let (direct, direct_budget) = budgeted(
        bench,
        &Load {
            url: &direct_url,
            destination: None,
            connections,
            duration: bench.duration,
            stop_after_per_thread: None,
            post_bytes: None,
            log_base: &bench.log_dir.join(format!("wrk-direct-c{connections}")),
        },
    )?;
    let spec = TunnelSpec {
        tag: &format!("c{connections}"),
        server_log_level: "warn",
        server_flags: &[],
        client_flags: &[],
    };
    let tunnel = Tunnel::start_ready(bench.bins, bench.log_dir, &spec, bench.upstream)?;
    let reply = http::get(tunnel.addr, "/request", Some(&direct_url));
    check_body(reply, "through the tunnel")?;
    let begin = tunnel.begin_row()?;
    let (through, tunnel_budget) = budgeted(
        bench,
        &Load {
            url: &tunnel.request_url(),
            destination: Some(&direct_url),
            connections,
            duration: bench.duration,
            stop_after_per_thread: None,
            post_bytes: None,
            log_base: &bench.log_dir.join(format!("wrk-tunnel-c{connections}")),
        },
    )?;
    let usage = tunnel.end_row(begin)?;
    Ok(SmallResult {
        connections,
        direct,
        tunnel: through,
        usage,
        direct_budget,
        tunnel_budget,
    })
}

/// Runs wrk and measures the CPU time the test API and the whole machine used meanwhile.
fn budgeted(bench: &Bench, load: &Load) -> Result<(WrkResult, Budget), String> {
    let upstream = procfs::cpu_secs(bench.upstream.pid())?;
    let machine = procfs::machine_busy_secs()?;
    let result = wrk::run(load)?;
    let budget = Budget {
        upstream_secs: procfs::cpu_secs(bench.upstream.pid())? - upstream,
        machine_secs: procfs::machine_busy_secs()? - machine,
    };
    Ok((result, budget))
}

/// wrk does not look at bodies: one request checked by hand shows that what it loads
/// answers the expected 12 bytes.
pub fn check_body(reply: Result<(u16, Vec<u8>), String>, via: &str) -> Result<(), String> {
    let (status, body) = reply.map_err(|e| format!("GET {SMALL_PATH} {via}: {e}"))?;
    let expected: Vec<u8> = (0..SMALL_LEN).map(routes::pattern_byte).collect();
    if status == 200 && body == expected {
        Ok(())
    } else {
        Err(format!(
            "GET {SMALL_PATH} {via} answered {status} with {body:?}; expected 200 with {expected:?}"
        ))
    }
}
