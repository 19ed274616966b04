//! Runs `wrk` (the load generator of the small-request rows) and reads its result.
//!
//! Each run gets a generated Lua script: it sets `X-PROXY-DESTINATION` for tunnel runs,
//! can stop each wrk thread after a number of answers (wrk itself only knows durations),
//! and prints one machine-readable `BENCH-RESULT` line from wrk's own summary and latency
//! histogram in microseconds, instead of the rounded figures of wrk's text report. wrk's
//! whole output is kept in the run's log file.

use std::fs;
use std::os::raw::{c_int, c_long};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::os;

#[repr(C)]
struct Timeval {
    sec: c_long,
    usec: c_long,
}

/// `struct rusage` of Linux: two times, then fourteen counters this program does not read.
#[repr(C)]
struct Rusage {
    user: Timeval,
    system: Timeval,
    counters: [c_long; 14],
}

extern "C" {
    fn getrusage(who: c_int, usage: *mut Rusage) -> c_int;
}

const RUSAGE_CHILDREN: c_int = -1;

/// The marker of the line the generated script prints.
const RESULT_MARKER: &str = "BENCH-RESULT";

/// The `done` hook of every script: one line of `key=value` from wrk's summary.
const DONE_HOOK: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f max_us=%.0f " ..
    "status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"#;

/// The version line of the installed wrk, or why there is none.
pub fn version() -> Result<String, String> {
    // wrk prints its version with the usage text and exits 1 on `--version`.
    let output = Command::new("wrk").arg("--version").output().map_err(|e| {
        format!("wrk not found ({e}): `make bench` installs it (apt-get install wrk)")
    })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    Ok(text
        .lines()
        .next()
        .map(|line| {
            line.split(" Copyright")
                .next()
                .unwrap_or(line)
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "wrk".to_string()))
}

/// One wrk run.
pub struct Load<'a> {
    pub url: &'a str,
    /// Sent as `X-PROXY-DESTINATION` (a tunnel run) when given.
    pub destination: Option<&'a str>,
    pub connections: usize,
    pub duration: Duration,
    /// Each wrk thread stops after this many answers, when given.
    pub stop_after_per_thread: Option<u64>,
    /// A `POST` with a body of this many bytes instead of a `GET`, when given.
    pub post_bytes: Option<usize>,
    /// Where the script and wrk's output go: `<log_base>.lua`, `<log_base>.log`.
    pub log_base: &'a Path,
}

/// wrk threads for `connections`: two at most, the machine has two cores to share with
/// the processes measured.
pub fn threads(connections: usize) -> usize {
    connections.clamp(1, 2)
}

/// What wrk measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct WrkResult {
    pub requests: u64,
    pub duration: Duration,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Answers other than 2xx/3xx.
    pub status_errors: u64,
    /// Connect, read, write errors and time-outs.
    pub socket_errors: u64,
    /// wrk's own CPU time (user + system), in seconds.
    pub cpu_secs: f64,
}

impl WrkResult {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    pub fn errors(&self) -> u64 {
        self.status_errors + self.socket_errors
    }
}

/// Runs wrk and returns its result; wrk's output is written to `<log_base>.log`.
pub fn run(load: &Load) -> Result<WrkResult, String> {
    let script = load.log_base.with_extension("lua");
    fs::write(&script, script_text(load))
        .map_err(|e| format!("writing {}: {e}", script.display()))?;
    let threads = threads(load.connections);
    // wrk takes whole seconds.
    let secs = load.duration.as_secs().max(1);
    let mut command = Command::new("wrk");
    os::kill_with_parent(&mut command)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{secs}s"))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(load.url)
        .stdin(Stdio::null());
    let cpu_before = reaped_children_cpu_secs();
    let output = command.output().map_err(|e| format!("running wrk: {e}"))?;
    // wrk is the only child reaped meanwhile: every other one lives until its row ends.
    let cpu_secs = reaped_children_cpu_secs() - cpu_before;
    let log = load.log_base.with_extension("log");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    fs::write(&log, &text).map_err(|e| format!("writing {}: {e}", log.display()))?;
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}); see {}",
            output.status,
            log.display()
        ));
    }
    let mut result = parse(&text)
        .ok_or_else(|| format!("no {RESULT_MARKER} line from wrk; see {}", log.display()))?;
    result.cpu_secs = cpu_secs;
    Ok(result)
}

/// CPU time of all the children this process has reaped so far, in seconds.
fn reaped_children_cpu_secs() -> f64 {
    let mut usage = Rusage {
        user: Timeval { sec: 0, usec: 0 },
        system: Timeval { sec: 0, usec: 0 },
        counters: [0; 14],
    };
    // SAFETY: getrusage(2) writes one `struct rusage`, which `Rusage` lays out exactly.
    if unsafe { getrusage(RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: &Timeval| t.sec as f64 + t.usec as f64 / 1e6;
    secs(&usage.user) + secs(&usage.system)
}

fn script_text(load: &Load) -> String {
    let mut lua = String::from("-- generated by the benchmark (examples/bench/wrk.rs)\n");
    if let Some(destination) = load.destination {
        lua.push_str(&format!(
            "wrk.headers[\"X-PROXY-DESTINATION\"] = \"{destination}\"\n"
        ));
    }
    if let Some(len) = load.post_bytes {
        // wrk adds the Content-Length of `wrk.body` to every request.
        lua.push_str(&format!(
            "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {len})\n"
        ));
    }
    if let Some(limit) = load.stop_after_per_thread {
        lua.push_str(&format!(
            "local seen = 0\nresponse = function(status, headers, body)\n  seen = seen + 1\n  \
             if seen == {limit} then wrk.thread:stop() end\nend\n"
        ));
    }
    lua.push_str(DONE_HOOK);
    lua
}

/// Reads the `BENCH-RESULT` line.
fn parse(output: &str) -> Option<WrkResult> {
    let line = output.lines().find(|l| l.starts_with(RESULT_MARKER))?;
    let value = |key: &str| -> Option<u64> {
        line.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
    };
    Some(WrkResult {
        requests: value("requests")?,
        duration: Duration::from_micros(value("duration_us")?),
        p50_us: value("p50_us")?,
        p99_us: value("p99_us")?,
        max_us: value("max_us")?,
        status_errors: value("status")?,
        socket_errors: value("connect")? + value("read")? + value("write")? + value("timeout")?,
        cpu_secs: 0.0,
    })
}
