//! The registration row in the report: two lines of the table (CPU per registration
//! against the target; wall time, RSS and threads), with the Go wsp's figures of issue 13
//! in the `direct` column for reference, and a note under the table with every batch and
//! the full reference.

use std::fmt::Write;

use crate::register::{Batch, RegisterResult, BATCH, BATCH_WITHIN, COUNT, NO_PING_MS};
use crate::report::Row;
use crate::units::{mib, micros, thousands};

/// Largest server CPU time per registration with 10,000 registered, in seconds.
const TARGET_CPU_SECS: f64 = 0.1e-3;
/// Largest growth of it from the first 1,000 to the last (0.25: 25 %).
const TARGET_GROWTH: f64 = 0.25;

/// The Go wsp, measured for issue 13 (its figures, not this machine's).
const GO_CPU_CELL: &str = "Go wsp: 0.08 ms at 1,000, 0.06 ms at 5,000";
const GO_WALL_CELL: &str = "Go wsp: 10,000 in 0.73 s; RSS 172.7 MiB";
const GO_NOTE: &str = "Reference (issue 13, not measured here): the Go wsp spends 0.08 ms \
     of CPU per `/register` with 1,000 registered and 0.06 ms with 5,000, registers 10,000 \
     WebSockets in 0.73 s (0.061 ms of CPU each) and then has an RSS of 172.7 MiB. wsp \
     before the socket fix: 1.24 ms at 1,000, 4.7 ms at 5,000, 18.3 s to register 5,000, \
     RSS 39.6 MiB with 5,000.";

pub fn rows(result: &Result<RegisterResult, String>) -> Vec<Row> {
    match result {
        Ok(r) => vec![cpu_row(r), wall_row(r)],
        Err(e) => {
            let mut row = Row::new("register raw WebSockets".into());
            row.direct = GO_CPU_CELL.into();
            row.tunnel = format!("not measured: {e}");
            row.met = Some(false);
            vec![row]
        }
    }
}

fn cpu_row(r: &RegisterResult) -> Row {
    let mut row = Row::new(format!(
        "register {} raw WebSockets: server CPU per registration, first {} / {} → {}",
        thousands(r.count as u64),
        thousands(BATCH as u64),
        thousands((r.count - BATCH) as u64),
        thousands(r.count as u64)
    ));
    row.direct = GO_CPU_CELL.into();
    row.client = "— (raw WebSockets)".into();
    row.target = format!(
        "≤ {} at {}, and at most {:.0} % above the first",
        per_registration(TARGET_CPU_SECS),
        thousands(r.count as u64),
        TARGET_GROWTH * 100.0
    );
    let (first, last) = r.first_and_last();
    let per = |b: Option<&Batch>| b.and_then(Batch::cpu_per_registration);
    row.tunnel = format!("{} / {}", cpu_cell(first), cpu_cell(last));
    row.server = format!(
        "CPU {} / {}",
        first.map_or("—".into(), |b| format!("{:.2} s", b.cpu_secs)),
        last.map_or("—".into(), |b| format!("{:.2} s", b.cpu_secs))
    );
    row.met = Some(false);
    if let (Some(first_cpu), Some(last_cpu)) = (per(first), per(last)) {
        let growth = last_cpu / first_cpu.max(1e-12) - 1.0;
        row.ratio = format!("last {}", signed_percent(growth));
        let complete = r.batches.iter().all(|b| b.shortfall.is_none());
        row.met = Some(complete && last_cpu <= TARGET_CPU_SECS && growth <= TARGET_GROWTH);
    }
    row
}

fn wall_row(r: &RegisterResult) -> Row {
    let mut row = Row::new(format!(
        "register {} raw WebSockets: wall time; server RSS, threads with all idle",
        thousands(r.count as u64)
    ));
    row.direct = GO_WALL_CELL.into();
    row.client = "—".into();
    let (first, last) = r.first_and_last();
    let reached = r.batches.last().map_or(0, |b| b.reached);
    let total: f64 = r.batches.iter().map(|b| b.took.as_secs_f64()).sum();
    row.tunnel = format!(
        "first {} in {}; {} of {} in {total:.2} s; last {} in {}{}",
        thousands(BATCH as u64),
        took_cell(first),
        thousands(reached as u64),
        thousands(r.count as u64),
        thousands(BATCH as u64),
        took_cell(last),
        if r.capped_by.is_some() {
            format!(" (fewer than {}: see below)", thousands(COUNT as u64))
        } else {
            String::new()
        }
    );
    row.server = format!(
        "{}, {} threads with {} idle{}",
        mib(r.server.rss_kib),
        r.server.threads,
        thousands(reached as u64),
        if r.settled {
            ""
        } else {
            " (still moving after 30 s)"
        }
    );
    row
}

/// Under the table: how the row ran, every batch, and the Go wsp's figures.
pub fn notes(md: &mut String, result: &Result<RegisterResult, String>) {
    let _ = writeln!(md, "\nRegistration row:\n");
    if let Ok(r) = result {
        let _ = writeln!(
            md,
            "- {} raw WebSockets to a fresh `wsp_server` (`--ping-interval {NO_PING_MS}`: no \
             pings during the row), {} upgrades in flight, each batch timed until \
             `/status.json` counts it (at most {} s); server CPU from its \
             CPU-time clock (utime + stime to the ns).{}",
            thousands(r.count as u64),
            crate::rawws::IN_FLIGHT,
            BATCH_WITHIN.as_secs(),
            r.capped_by.as_ref().map_or(String::new(), |why| format!(
                " Fewer than {}: {why}.",
                thousands(COUNT as u64)
            ))
        );
        for b in &r.batches {
            let _ = writeln!(md, "- {}", batch_line(b));
        }
    }
    let _ = writeln!(md, "- {GO_NOTE}");
}

fn batch_line(b: &Batch) -> String {
    let mut line = format!(
        "from {} to {}: {} counted in {:.2} s, server CPU {:.3} s ({} per registration)",
        thousands(b.from as u64),
        thousands(b.to as u64),
        thousands(b.reached as u64),
        b.took.as_secs_f64(),
        b.cpu_secs,
        b.cpu_per_registration()
            .map_or("—".into(), per_registration)
    );
    if let Some(why) = &b.shortfall {
        let _ = write!(line, "; **stopped short**: {why}");
    }
    line
}

/// A batch's CPU per registration, or what it reached when it fell short.
fn cpu_cell(batch: Option<&Batch>) -> String {
    let Some(b) = batch else {
        return "not reached".into();
    };
    let per = b
        .cpu_per_registration()
        .map_or("—".into(), per_registration);
    match b.shortfall {
        None => per,
        Some(_) => format!("{per} (**{} of {} only**)", b.reached, b.to),
    }
}

fn took_cell(batch: Option<&Batch>) -> String {
    match batch {
        Some(b) if b.shortfall.is_none() => format!("{:.2} s", b.took.as_secs_f64()),
        Some(b) => format!("{:.2} s (**short**)", b.took.as_secs_f64()),
        None => "—".into(),
    }
}

/// Seconds as µs below a millisecond, else ms.
fn per_registration(secs: f64) -> String {
    micros((secs * 1e6).round() as u64)
}

fn signed_percent(share: f64) -> String {
    let sign = if share < 0.0 { "−" } else { "+" };
    format!("{sign}{:.0} %", share.abs() * 100.0)
}
