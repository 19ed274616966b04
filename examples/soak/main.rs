//! `soak`: minutes of continuous load on the real binaries while clients are killed and
//! the server is restarted, then a markdown table of what the callers saw (`make soak`).
//!
//! It starts the test API, one `wsp_server` and two `wsp_client`s from `target/release/`
//! on 127.0.0.1 with ephemeral ports, loads the proxy from [`CALLERS`] threads, runs the
//! fault schedule ([`schedule`]), classifies every failure ([`classify`]) and prints the
//! report ([`report`]), also written to `target/soak-report.md`. The children's output goes
//! to `target/soak-logs/<name>-<generation>.log`, every failed request to
//! `target/soak-logs/failed-requests.tsv`, every memory and thread sample to
//! `target/soak-logs/samples.tsv`.
//!
//! `SOAK_SECS` sets the length of the load (default 300). The exit code is 1 when a
//! failure is not explained by a fault (class (c)) or a process exited by itself.

#[path = "../test_api/routes.rs"]
mod routes;

mod binaries;
mod classify;
mod dump;
mod load;
mod os;
mod procs;
mod report;
mod sample;
mod schedule;
mod stack;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binaries::{fresh_dir, release_dir, Binaries};
use load::{Record, Target};
use schedule::Timeline;
use stack::Stack;

/// Caller threads.
pub const CALLERS: usize = 16;
/// Length of the load when `SOAK_SECS` is not set.
const DEFAULT_SECS: u64 = 300;

fn main() -> ExitCode {
    match run() {
        Ok(report) if report.unexplained == 0 => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!(
                "soak: {} failure(s) or incident(s) not explained by a fault",
                report.unexplained
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<report::Report, String> {
    let duration = Duration::from_secs(soak_secs()?);
    let release_dir = release_dir()?;
    let target_dir = release_dir.parent().unwrap_or(&release_dir).to_path_buf();
    let log_dir = fresh_dir(&target_dir.join("soak-logs"))?;
    let mut stack = Stack::start(Binaries::beside(&release_dir)?, &log_dir)?;
    stack.wait_relay()?;
    eprintln!(
        "soak: server {}, test API {}, logs in {}; loading for {} s",
        stack.server_addr,
        stack.api_addr,
        log_dir.display(),
        duration.as_secs()
    );
    let (records, timeline) = load_with_faults(&mut stack, duration)?;
    drop(stack);
    let setup = report::Setup {
        duration,
        callers: CALLERS,
    };
    let report = report::build(&setup, &records, &timeline);
    let failed = dump::failures_tsv(&records, &timeline);
    write(&log_dir.join("failed-requests.tsv"), &failed)?;
    write(
        &log_dir.join("samples.tsv"),
        &dump::samples_tsv(&timeline.samples),
    )?;
    println!("{}", report.markdown);
    let path = target_dir.join("soak-report.md");
    write(&path, &report.markdown)?;
    eprintln!("soak: report written to {}", path.display());
    Ok(report)
}

/// Runs the callers for `duration` while the schedule does its faults.
fn load_with_faults(
    stack: &mut Stack,
    duration: Duration,
) -> Result<(Vec<Record>, Timeline), String> {
    let stop = Arc::new(AtomicBool::new(false));
    // Sets `stop` however this function ends, so that no caller outlives it.
    let _stop_guard = StopOnDrop(Arc::clone(&stop));
    let target = Target {
        server: stack.server_addr,
        api: stack.api_addr,
    };
    let t0 = Instant::now();
    let callers = load::spawn_callers(CALLERS, target, t0, &stop);
    let mut timeline = Timeline::default();
    let scheduled = schedule::run(stack, t0, duration, &mut timeline);
    stop.store(true, Ordering::Relaxed);
    let mut records = Vec::new();
    for (index, caller) in callers.into_iter().enumerate() {
        let done = caller
            .join()
            .map_err(|_| format!("caller {index} panicked"))?;
        records.extend(done);
    }
    scheduled?;
    Ok((records, timeline))
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn soak_secs() -> Result<u64, String> {
    match std::env::var("SOAK_SECS") {
        Err(_) => Ok(DEFAULT_SECS),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(secs),
            _ => Err(format!(
                "SOAK_SECS={text:?}: expected a positive number of seconds"
            )),
        },
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
