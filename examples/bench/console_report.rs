//! The console rows in the report: a table of their own, a line per load and server
//! configuration, each cell the mean of the rounds then every round, and "vs console off":
//! the server's added CPU per request, round by round against the same round's baseline.
//! Then what it means, and every run.

use std::fmt::Write;

use crate::console::{ConsoleResult, Kind, Mode, Run, CONNECTIONS, POST_BYTES, POST_PATH, ROUNDS};
use crate::report::rate_cell;
use crate::small::SMALL_PATH;
use crate::units::{micros, thousands};

pub fn render(md: &mut String, console: &ConsoleResult, secs: u64) {
    preamble(md, secs);
    let _ = writeln!(
        md,
        "| load, server | requests/s | wsp_server CPU / request | wsp_client CPU / request | \
         wsp_server peak RSS | server CPU / request vs console off |\n\
         |---|---|---|---|---|---|"
    );
    for kind in Kind::ALL {
        for mode in Mode::ALL {
            let runs = console.runs_of(mode, kind);
            if !runs.is_empty() {
                line(md, console, kind, mode, &runs);
            }
        }
    }
    meaning(md, console);
    details(md, console);
}

fn preamble(md: &mut String, secs: u64) {
    let _ = writeln!(
        md,
        "\nConsole (issue 16): what recording exchanges costs the server. A fresh \
         `wsp_server` and `wsp_client` per path (default pool, log level `warn`), the server \
         with no console, with `--admin 127.0.0.1:0` (every exchange's heads kept in the \
         ring) and with `--admin 127.0.0.1:0 --inspect` (bodies too, up to 64 KiB each). \
         wrk at c={CONNECTIONS}, {secs} s per run: `GET {SMALL_PATH}`, then, with no \
         console and with `--inspect`, a `POST` of {} KiB to `{POST_PATH}` (the test API \
         reads it all). The paths run interleaved, {ROUNDS} times (off, `--admin`, \
         `--inspect`, off, ...). Each cell: the mean of the {ROUNDS} runs, then each run in \
         order. CPU: user + system from the processes' CPU-time clocks over each wrk run, \
         per request; peak RSS: `VmHWM`, reset when each run starts. \"vs console off\": \
         each run minus the same round's run with no console, the mean of those, and its \
         share of the console-off mean.\n",
        POST_BYTES / 1024
    );
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// `mean unit (a · b)`, each number written by `show`.
fn cell(values: &[f64], unit: &str, show: impl Fn(f64) -> String) -> String {
    let each: Vec<String> = values.iter().map(|&v| show(v)).collect();
    format!("{} {unit} ({})", show(mean(values)), each.join(" · "))
}

fn one_decimal(v: f64) -> String {
    format!("{v:.1}")
}

fn us(v: f64) -> String {
    format!("{v:.1} µs")
}

/// `+1.2` or `−1.2` (a minus sign, as [`crate::units::signed_micros`] writes).
fn signed(v: f64) -> String {
    let sign = if v < 0.0 { "−" } else { "+" };
    format!("{sign}{:.1}", v.abs())
}

fn signed_us(v: f64) -> String {
    format!("{} µs", signed(v))
}

/// The server's CPU µs per request of each round's `mode` run minus the same round's
/// console-off run, with the console-off mean; `None` when a round lacks either.
fn added(console: &ConsoleResult, kind: Kind, mode: Mode) -> Option<(Vec<f64>, f64)> {
    let off = console.runs_of(Mode::Off, kind);
    let on = console.runs_of(mode, kind);
    let diffs = (1..=ROUNDS)
        .map(|round| {
            let of = |runs: &[&Run]| {
                runs.iter()
                    .find(|r| r.round == round)
                    .map(|r| r.server_us())
            };
            Some(of(&on)? - of(&off)?)
        })
        .collect::<Option<Vec<f64>>>()?;
    let base: Vec<f64> = off.iter().map(|r| r.server_us()).collect();
    Some((diffs, mean(&base)))
}

fn line(md: &mut String, console: &ConsoleResult, kind: Kind, mode: Mode, runs: &[&Run]) {
    let field = |f: fn(&Run) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let rates = field(|r| r.wrk.rate());
    let mut rate = cell(&rates, "req/s", |v| thousands(v.round() as u64));
    for r in runs.iter().filter(|r| r.wrk.errors() > 0) {
        // rate_cell spells out a run's errors.
        let _ = write!(rate, "; round {}: {}", r.round, rate_cell(&r.wrk));
    }
    let server = cell(&field(Run::server_us), "µs", one_decimal);
    let client = cell(&field(Run::client_us), "µs", one_decimal);
    let rss = cell(
        &field(|r| r.server_peak_kib as f64 / 1024.0),
        "MiB",
        one_decimal,
    );
    let versus = if mode == Mode::Off {
        "baseline".to_string()
    } else {
        match added(console, kind, mode) {
            Some((diffs, base)) => {
                let each: Vec<String> = diffs.iter().map(|&d| signed(d)).collect();
                let d = mean(&diffs);
                format!(
                    "**{} ({} %)** ({})",
                    signed_us(d),
                    signed(d / base.max(1e-9) * 100.0),
                    each.join(" · ")
                )
            }
            None => "—".into(),
        }
    };
    let _ = writeln!(
        md,
        "| {}, {} | {rate} | {server} | {client} | {rss} | {versus} |",
        kind.name(),
        mode.name()
    );
}

/// The largest gap between two runs of one configuration: what the machine's noise alone
/// does to the server's CPU per request.
fn noise(console: &ConsoleResult, kind: Kind) -> f64 {
    Mode::ALL
        .iter()
        .map(|&mode| {
            let v: Vec<f64> = console
                .runs_of(mode, kind)
                .iter()
                .map(|r| r.server_us())
                .collect();
            let max = v.iter().copied().fold(f64::MIN, f64::max);
            let min = v.iter().copied().fold(f64::MAX, f64::min);
            if v.len() > 1 {
                max - min
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

fn meaning(md: &mut String, console: &ConsoleResult) {
    let mut parts = Vec::new();
    for kind in Kind::ALL {
        let noise = noise(console, kind);
        for mode in [Mode::Heads, Mode::Inspect] {
            let Some((diffs, base)) = added(console, kind, mode) else {
                continue;
            };
            let d = mean(&diffs);
            let verdict = if d.abs() <= noise {
                format!("within the noise: runs of one configuration differ by up to {noise:.1} µs")
            } else {
                format!("more than the {noise:.1} µs between runs of one configuration")
            };
            parts.push(format!(
                "with {}, {} per {} ({} % of {} with no console; {verdict})",
                mode.name(),
                signed_us(d),
                kind.name(),
                signed(d / base.max(1e-9) * 100.0),
                us(base),
            ));
        }
    }
    let _ = writeln!(
        md,
        "\nWhat it means: the server's added CPU time per request with the console on: {}. \
         Console off is the baseline, a server with no ring at all, which the request path \
         skips; it is not compared here with a build without the console.",
        parts.join("; ")
    );
}

fn details(md: &mut String, console: &ConsoleResult) {
    let _ = writeln!(md, "\nConsole details, every run in the order they ran:\n");
    for r in &console.runs {
        let wall = r.wrk.duration.as_secs_f64().max(1e-3);
        let recorded = match r.recorded {
            Some(n) => format!(
                "; the console listed {} exchanges after it",
                thousands(n as u64)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            md,
            "- round {}, {}, {}: {} requests, {} errors, latency p50 / p99 / max {} / {} / {}; \
             machine busy {:.2} cores on average, {:.2} of them by wrk, the test API and the \
             tunnel{recorded}.",
            r.round,
            r.mode.name(),
            r.kind.name(),
            thousands(r.wrk.requests),
            r.wrk.errors(),
            micros(r.wrk.p50_us),
            micros(r.wrk.p99_us),
            micros(r.wrk.max_us),
            r.machine_secs / wall,
            r.ours_secs / wall,
        );
    }
}
