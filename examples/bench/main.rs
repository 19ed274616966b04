//! `bench`: how fast and how big the proxy is, next to the same requests sent straight to
//! the upstream (`make bench`). It prints one markdown table (also written to
//! `target/bench-report.md`) with, for every row, the direct figure, the figure through the
//! tunnel, their ratio, the server's and the client's resources, the project's target and
//! whether it was met. See the "Benchmark" section of BENCHMARKS.md for what each row is.
//!
//! It starts, from `target/release/`, on 127.0.0.1 with ephemeral ports: the test API
//! (once), and for every tunnel row a fresh `wsp_server` and `wsp_client` at log level
//! `warn`. Readiness is polled with deadlines; every child is killed when its handle is
//! dropped, by the kernel when this program dies ([`os::kill_with_parent`]), and by the
//! terminal's SIGINT on Ctrl-C (they share its process group). Children's output goes to
//! `target/bench-logs/`, with wrk's scripts and reports.
//!
//! The peer rows ([`peers`]) run the same requests through rathole, the tunnel a user would
//! compare wsp with, in front of nginx: rathole is a benchmark peer that
//! `scripts/bench.sh` installs into `target/bench-peers/`, never a dependency of wsp.
//! The console rows ([`console`]) show what the operator console (`--admin`, `--inspect`)
//! costs the server per request.
//!
//! `BENCH_SECS` sets each wrk run's length (default 10); `BENCH_LONG=1` adds the
//! 1,000,000-request memory row (a few minutes). `BENCH_ONLY` names the groups of rows to
//! run (comma-separated: `small`, `bulk`, `idle`, `register`, `peers`, `console`; default
//! all), e.g.
//! `BENCH_ONLY=register`; `BENCH_REGISTER_MAX` (2,000 to 10,000) caps the WebSockets of
//! the registration row.

#[path = "../test_api/routes.rs"]
mod routes;

#[allow(dead_code)]
#[path = "../soak/os.rs"]
mod os;
#[allow(dead_code)]
#[path = "../soak/procs.rs"]
mod procs;

#[path = "../soak/binaries.rs"]
mod binaries;

mod bulk;
mod console;
mod console_report;
mod http;
mod idle;
mod long;
mod machine;
mod nginx;
mod peers;
mod peers_report;
mod procfs;
mod rathole;
mod rawws;
mod register;
mod register_report;
mod report;
mod sink;
mod small;
mod stack;
mod units;
mod wrk;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use binaries::{fresh_dir, release_dir, Binaries};
use stack::Upstream;

/// Length of each wrk run when `BENCH_SECS` is not set.
const DEFAULT_SECS: u64 = 10;

/// The groups of rows `BENCH_ONLY` can name (the long row has `BENCH_LONG`).
const GROUPS: [&str; 6] = ["small", "bulk", "idle", "register", "peers", "console"];

/// What the environment asked for.
struct Settings {
    secs: u64,
    long: bool,
    /// `BENCH_ONLY`'s groups (names from [`GROUPS`]); `None` runs them all.
    only: Option<Vec<String>>,
    /// `BENCH_REGISTER_MAX`.
    register_max: Option<usize>,
}

impl Settings {
    fn runs(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|g| g == group))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let settings = settings()?;
    let release_dir = release_dir()?;
    let target_dir = release_dir.parent().unwrap_or(&release_dir).to_path_buf();
    let log_dir = fresh_dir(&target_dir.join("bench-logs"))?;
    let bins = Binaries::beside(&release_dir)?;
    // wrk runs the small-request rows, the peer rows, the console rows and the long row.
    let wrk_version = if ["small", "peers", "console"]
        .iter()
        .any(|g| settings.runs(g))
        || settings.long
    {
        Some(wrk::version()?)
    } else {
        None
    };
    let machine = machine::describe();
    eprintln!("bench: {}", machine.line());
    let upstream = Upstream::start(&bins, &log_dir)?;
    eprintln!(
        "bench: test API on {}, logs in {}",
        upstream.addr,
        log_dir.display()
    );
    let small = if settings.runs("small") {
        small_rows(&bins, &log_dir, &upstream, &settings)?
    } else {
        Vec::new()
    };
    let bulk = if settings.runs("bulk") {
        bulk_rows(&bins, &log_dir, &upstream)?
    } else {
        Vec::new()
    };
    let idle = if settings.runs("idle") {
        eprintln!("bench: {} idle pooled connections", idle::IDLE);
        Some(idle::measure(&bins, &log_dir)?)
    } else {
        None
    };
    // A row that today's server may not finish: its failure is reported in its row.
    let register = settings
        .runs("register")
        .then(|| register::measure(&bins, &log_dir, settings.register_max));
    let long = if settings.long {
        let rate = small
            .iter()
            .find(|s| s.connections == long::CONNECTIONS)
            .map_or(1000.0, |s| s.tunnel.rate());
        eprintln!("bench: {} requests through the tunnel", long::TOTAL);
        Some(long::measure(&bins, &log_dir, &upstream, rate)?)
    } else {
        None
    };
    let peers = if settings.runs("peers") {
        let duration = Duration::from_secs(settings.secs);
        Some(peers::measure(
            &bins,
            &log_dir,
            &upstream,
            &target_dir,
            duration,
        )?)
    } else {
        None
    };
    let console = if settings.runs("console") {
        let duration = Duration::from_secs(settings.secs);
        Some(console::measure(&bins, &log_dir, &upstream, duration)?)
    } else {
        None
    };
    let results = report::Results {
        machine,
        command: command(&settings),
        wrk_version,
        secs: settings.secs,
        small,
        bulk,
        idle,
        register,
        long,
        peers,
        console,
        server_bytes: file_size(&bins.server)?,
        client_bytes: file_size(&bins.client)?,
    };
    let markdown = report::render(&results);
    println!("{markdown}");
    let path = target_dir.join("bench-report.md");
    std::fs::write(&path, &markdown).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("bench: report written to {}", path.display());
    Ok(())
}

fn small_rows(
    bins: &Binaries,
    log_dir: &Path,
    upstream: &Upstream,
    settings: &Settings,
) -> Result<Vec<small::SmallResult>, String> {
    let bench = small::Bench {
        bins,
        log_dir,
        upstream,
        duration: Duration::from_secs(settings.secs),
    };
    small::CONCURRENCY
        .iter()
        .map(|&connections| {
            eprintln!(
                "bench: GET {} at c={connections}, direct then through the tunnel, {} s each",
                small::SMALL_PATH,
                settings.secs
            );
            small::measure(&bench, connections)
        })
        .collect()
}

fn bulk_rows(
    bins: &Binaries,
    log_dir: &Path,
    upstream: &Upstream,
) -> Result<Vec<bulk::BulkResult>, String> {
    let pattern = bulk::Pattern::new();
    eprintln!("bench: hashing the 1 GiB upload body once, to check /upload-count's answer");
    let expected_fnv = pattern.fnv_of_bulk();
    let bench = bulk::Bench {
        bins,
        log_dir,
        upstream,
        pattern: &pattern,
        expected_fnv: &expected_fnv,
    };
    bulk::Kind::ALL
        .iter()
        .map(|&kind| {
            eprintln!(
                "bench: {kind:?}, {} × 1 GiB direct then through the tunnel",
                bulk::RUNS
            );
            bulk::measure(&bench, kind)
        })
        .collect()
}

fn settings() -> Result<Settings, String> {
    let secs = match std::env::var("BENCH_SECS") {
        Err(_) => DEFAULT_SECS,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => secs,
            _ => {
                return Err(format!(
                    "BENCH_SECS={text:?}: expected a positive number of seconds"
                ))
            }
        },
    };
    let long = match std::env::var("BENCH_LONG").as_deref().map(str::trim) {
        Err(_) | Ok("" | "0") => false,
        Ok("1") => true,
        Ok(other) => return Err(format!("BENCH_LONG={other:?}: expected 0 or 1")),
    };
    let only = match std::env::var("BENCH_ONLY").as_deref().map(str::trim) {
        Err(_) | Ok("") => None,
        Ok(text) => Some(groups(text)?),
    };
    let register_max = match std::env::var("BENCH_REGISTER_MAX")
        .as_deref()
        .map(str::trim)
    {
        Err(_) | Ok("") => None,
        Ok(text) => match text.parse::<usize>() {
            Ok(n) if (2 * register::BATCH..=register::COUNT).contains(&n) => Some(n),
            _ => {
                return Err(format!(
                    "BENCH_REGISTER_MAX={text:?}: expected a number from {} to {}",
                    2 * register::BATCH,
                    register::COUNT
                ))
            }
        },
    };
    Ok(Settings {
        secs,
        long,
        only,
        register_max,
    })
}

/// `BENCH_ONLY`'s comma-separated names, each one of [`GROUPS`].
fn groups(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .map(|name| {
            GROUPS
                .contains(&name)
                .then(|| name.to_string())
                .ok_or_else(|| format!("BENCH_ONLY={text:?}: {name:?} is not one of {GROUPS:?}"))
        })
        .collect()
}

/// The command line that reproduces this run.
fn command(settings: &Settings) -> String {
    let mut command = "make bench".to_string();
    if settings.secs != DEFAULT_SECS {
        command.push_str(&format!(" BENCH_SECS={}", settings.secs));
    }
    if settings.long {
        command.push_str(" BENCH_LONG=1");
    }
    if let Some(only) = &settings.only {
        command.push_str(&format!(" BENCH_ONLY={}", only.join(",")));
    }
    if let Some(max) = settings.register_max {
        command.push_str(&format!(" BENCH_REGISTER_MAX={max}"));
    }
    command
}

fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("reading the size of {}: {e}", path.display()))
}
