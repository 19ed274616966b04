//! The benchmark's result as markdown: the machine and the command, then ONE table whose
//! rows put direct and tunnel side by side with their ratio, the server's and the client's
//! resources during the tunnel half, the project's target and whether it was met; then the
//! details a reader needs to trust the table (every bulk run, the latency maxima). The
//! registration row's cells and notes are [`crate::register_report`]'s.

use std::fmt::Write;
use std::time::Duration;

use crate::bulk::{BulkResult, Kind, BULK_LEN, RUNS};
use crate::console::ConsoleResult;
use crate::console_report;
use crate::idle::{IdleResult, IDLE};
use crate::long::{self, LongResult};
use crate::machine::Machine;
use crate::peers::PeersResult;
use crate::peers_report;
use crate::register::RegisterResult;
use crate::register_report;
use crate::small::{Budget, SmallResult, SMALL_PATH};
use crate::stack::Usage;
use crate::units::{mib, micros, signed_mib, signed_micros, thousands};
use crate::wrk::{self, WrkResult};

/// Through-the-tunnel requests/s the c=16 and c=64 rows aim for.
const TARGET_RATE: f64 = 20_000.0;
/// ... and the share of direct they aim for.
const TARGET_SHARE: f64 = 0.30;
/// Largest p99 at c=64, µs.
const TARGET_P99_C64_US: u64 = 10_000;
/// Largest tunnel p50 minus direct p50 at c=1, µs.
const TARGET_ADDED_P50_US: i64 = 70;
/// Bulk MiB/s each way (1.5 GiB/s).
const TARGET_BULK_MIBPS: f64 = 1536.0;
/// Largest peak RSS of server and client in the bulk rows, and with 1,000 idle connections.
const TARGET_RSS_KIB: u64 = 16 * 1024;
/// Largest RSS growth from 10,000 to 1,000,000 requests.
const TARGET_GROWTH_KIB: i64 = 2 * 1024;

/// Everything the report shows.
pub struct Results {
    pub machine: Machine,
    /// How the benchmark was run, e.g. "make bench (BENCH_SECS=10)".
    pub command: String,
    /// `None` when neither the small-request rows nor the long row ran.
    pub wrk_version: Option<String>,
    pub secs: u64,
    pub small: Vec<SmallResult>,
    pub bulk: Vec<BulkResult>,
    /// `None` for the groups of rows that `BENCH_ONLY` left out.
    pub idle: Option<IdleResult>,
    /// The error instead when the row could not be measured.
    pub register: Option<Result<RegisterResult, String>>,
    /// `None` when `BENCH_LONG` was not set.
    pub long: Option<LongResult>,
    /// `None` for the groups of rows that `BENCH_ONLY` left out.
    pub peers: Option<PeersResult>,
    /// `None` for the groups of rows that `BENCH_ONLY` left out.
    pub console: Option<ConsoleResult>,
    pub server_bytes: u64,
    pub client_bytes: u64,
}

/// One line of the table.
pub struct Row {
    pub name: String,
    pub direct: String,
    pub tunnel: String,
    pub ratio: String,
    pub server: String,
    pub client: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(name: String) -> Row {
        Row {
            name,
            direct: "—".into(),
            tunnel: "—".into(),
            ratio: "—".into(),
            server: String::new(),
            client: String::new(),
            target: "—".into(),
            met: None,
        }
    }
}

pub fn render(results: &Results) -> String {
    let mut md = String::new();
    preamble(&mut md, results);
    let mut rows = Vec::new();
    for small in &results.small {
        rows.extend(small_rows(small));
    }
    rows.extend(results.bulk.iter().map(bulk_row));
    rows.extend(results.idle.as_ref().map(idle_row));
    if let Some(register) = &results.register {
        rows.extend(register_report::rows(register));
    }
    // Its "not run" line is only worth showing beside the small-request rows it extends.
    if results.long.is_some() || !results.small.is_empty() {
        rows.push(long_row(results.long.as_ref()));
    }
    rows.push(size_row(results));
    table(&mut md, &rows);
    details(&mut md, results);
    if let Some(register) = &results.register {
        register_report::notes(&mut md, register);
    }
    if let Some(peers) = &results.peers {
        peers_report::render(&mut md, peers, results.secs);
    }
    if let Some(console) = &results.console {
        console_report::render(&mut md, console, results.secs);
    }
    md
}

fn preamble(md: &mut String, r: &Results) {
    let _ = writeln!(md, "Machine: {}.\n", r.machine.line());
    let _ = writeln!(md, "Command: `{}`.\n", r.command);
    let Some(wrk_version) = &r.wrk_version else {
        return;
    };
    if r.small.is_empty() && r.bulk.is_empty() {
        let _ = writeln!(
            md,
            "Load generator **{wrk_version}** with `--latency`, keep-alive, `-t1` at c=1 \
             and `-t{}` above. All on 127.0.0.1, all sharing the machine's {} cores.\n",
            wrk::threads(64),
            r.machine.cores
        );
        return;
    }
    let _ = writeln!(
        md,
        "Small requests: `GET {SMALL_PATH}` (12-byte body), load generator **{}** with \
         `--latency`, keep-alive, `-t1` at c=1 and `-t{}` above, {} s per row and path. \
         Bulk: 1 GiB per transfer by the benchmark's own client (raw `TcpStream`, HTTP/1.1, \
         256 KiB buffers, every byte checked), {RUNS} transfers per path, median shown. \
         Every tunnel row has a fresh `wsp_server` and `wsp_client` (default pool: \
         `--pool-idle-size 10 --pool-max-size 100`; log level `warn`); their columns show \
         peak RSS (`VmHWM`, reset when the row starts) and CPU time (user + system) during \
         the tunnel half of the row. All on 127.0.0.1, all sharing the machine's {} cores.\n",
        wrk_version,
        wrk::threads(64),
        r.secs,
        r.machine.cores
    );
}

fn table(md: &mut String, rows: &[Row]) {
    let _ = writeln!(
        md,
        "| row | direct | through the tunnel | tunnel / direct | wsp_server | wsp_client | target | met? |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {met} |",
            row.name, row.direct, row.tunnel, row.ratio, row.server, row.client, row.target
        );
    }
}

fn small_rows(s: &SmallResult) -> [Row; 2] {
    let c = s.connections;
    let mut rate = Row::new(format!("GET 12 B, c={c}: requests/s"));
    rate.direct = rate_cell(&s.direct);
    rate.tunnel = rate_cell(&s.tunnel);
    let share = s.tunnel.rate() / s.direct.rate().max(1e-9);
    rate.ratio = format!("{:.0} %", share * 100.0);
    let per_request = |cpu: f64| cpu * 1e6 / s.tunnel.requests.max(1) as f64;
    rate.server = usage_cell(s.usage.server_peak_kib, s.usage.server_cpu_secs)
        + &format!(" ({:.0} µs/req)", per_request(s.usage.server_cpu_secs));
    rate.client = usage_cell(s.usage.client_peak_kib, s.usage.client_cpu_secs)
        + &format!(" ({:.0} µs/req)", per_request(s.usage.client_cpu_secs));
    if c > 1 {
        rate.target = format!(
            "≥ {} req/s and ≥ {:.0} % of direct",
            thousands(TARGET_RATE as u64),
            TARGET_SHARE * 100.0
        );
        rate.met =
            Some(s.tunnel.rate() >= TARGET_RATE && share >= TARGET_SHARE && s.tunnel.errors() == 0);
    }
    let mut latency = Row::new(format!("GET 12 B, c={c}: latency p50 / p99"));
    latency.direct = format!("{} / {}", micros(s.direct.p50_us), micros(s.direct.p99_us));
    latency.tunnel = format!("{} / {}", micros(s.tunnel.p50_us), micros(s.tunnel.p99_us));
    let added_p50 = s.tunnel.p50_us as i64 - s.direct.p50_us as i64;
    let added_p99 = s.tunnel.p99_us as i64 - s.direct.p99_us as i64;
    latency.ratio = format!(
        "{} / {} added",
        signed_micros(added_p50),
        signed_micros(added_p99)
    );
    if c == 1 {
        latency.target = format!("added p50 < {TARGET_ADDED_P50_US} µs");
        latency.met = Some(added_p50 < TARGET_ADDED_P50_US);
    } else if c == 64 {
        latency.target = format!("p99 < {}", micros(TARGET_P99_C64_US));
        latency.met = Some(s.tunnel.p99_us < TARGET_P99_C64_US);
    }
    [rate, latency]
}

pub fn rate_cell(w: &WrkResult) -> String {
    let mut cell = format!("{} req/s", thousands(w.rate().round() as u64));
    if w.errors() > 0 {
        let _ = write!(
            cell,
            " (**{} errors**: {} status, {} socket)",
            w.errors(),
            w.status_errors,
            w.socket_errors
        );
    }
    cell
}

fn bulk_row(b: &BulkResult) -> Row {
    let name = match b.kind {
        Kind::Download => "download 1 GiB (`/bytes`): MiB/s",
        Kind::UploadCounted => "upload 1 GiB to `/upload-count` (length + hash checked): MiB/s",
        Kind::UploadDiscarded => "upload 1 GiB to `/hello` (body discarded): MiB/s",
    };
    let mut row = Row::new(name.to_string());
    let direct = mib_per_sec(median(&b.direct));
    let tunnel = mib_per_sec(median(&b.tunnel));
    row.direct = format!("{direct:.0} MiB/s");
    row.tunnel = format!("{tunnel:.0} MiB/s");
    row.ratio = format!("{:.0} %", tunnel / direct.max(1e-9) * 100.0);
    let per_gib = |cpu: f64| cpu / RUNS as f64;
    let u = &b.usage;
    row.server = usage_cell(u.server_peak_kib, u.server_cpu_secs)
        + &format!(" ({:.2} s/GiB)", per_gib(u.server_cpu_secs));
    row.client = usage_cell(u.client_peak_kib, u.client_cpu_secs)
        + &format!(" ({:.2} s/GiB)", per_gib(u.client_cpu_secs));
    row.target = format!(
        "≥ {:.1} GiB/s; peak RSS < {} MiB each",
        TARGET_BULK_MIBPS / 1024.0,
        TARGET_RSS_KIB / 1024
    );
    row.met = Some(tunnel >= TARGET_BULK_MIBPS && bulk_rss_ok(u));
    row
}

fn bulk_rss_ok(u: &Usage) -> bool {
    u.server_peak_kib < TARGET_RSS_KIB && u.client_peak_kib < TARGET_RSS_KIB
}

fn idle_row(idle: &IdleResult) -> Row {
    let mut row = Row::new(format!(
        "{} idle pooled connections: RSS, threads",
        thousands(IDLE as u64)
    ));
    row.tunnel = format!(
        "all registered {:.1} s after the client started{}",
        idle.register_time.as_secs_f64(),
        if idle.settled {
            ""
        } else {
            " (RSS still moving after 30 s)"
        }
    );
    row.server = format!(
        "{}, {} threads",
        mib(idle.server.rss_kib),
        idle.server.threads
    );
    row.client = format!(
        "{}, {} threads",
        mib(idle.client.rss_kib),
        idle.client.threads
    );
    row.target = format!("RSS < {} MiB each", TARGET_RSS_KIB / 1024);
    row.met = Some(idle.server.rss_kib < TARGET_RSS_KIB && idle.client.rss_kib < TARGET_RSS_KIB);
    row
}

fn long_row(long: Option<&LongResult>) -> Row {
    let mut row = Row::new(format!(
        "RSS after {} vs after {} requests (tunnel, c={})",
        thousands(long::TOTAL),
        thousands(long::FIRST),
        long::CONNECTIONS
    ));
    row.target = format!("within {} MiB", TARGET_GROWTH_KIB / 1024);
    let Some((first, last, result)) = long.and_then(|l| Some((l.first()?, l.last()?, l))) else {
        row.tunnel = "not run: `make bench BENCH_LONG=1` runs it (a few minutes)".into();
        return row;
    };
    row.tunnel = format!(
        "{} requests in {:.0} s{}",
        thousands(last.requests),
        result.took.as_secs_f64(),
        if result.errors > 0 {
            format!(", **{} errors**", result.errors)
        } else {
            String::new()
        }
    );
    let growth = |a: u64, b: u64| b as i64 - a as i64;
    let server = growth(first.server.rss_kib, last.server.rss_kib);
    let client = growth(first.client.rss_kib, last.client.rss_kib);
    row.server = format!(
        "{} → {} ({})",
        mib(first.server.rss_kib),
        mib(last.server.rss_kib),
        signed_mib(server)
    );
    row.client = format!(
        "{} → {} ({})",
        mib(first.client.rss_kib),
        mib(last.client.rss_kib),
        signed_mib(client)
    );
    row.met = Some(server.abs() <= TARGET_GROWTH_KIB && client.abs() <= TARGET_GROWTH_KIB);
    row
}

fn size_row(r: &Results) -> Row {
    let mut row = Row::new("stripped release binary size".to_string());
    row.server = format!("{} KiB", thousands(r.server_bytes / 1024));
    row.client = format!("{} KiB", thousands(r.client_bytes / 1024));
    row
}

fn details(md: &mut String, r: &Results) {
    if r.small.is_empty() && r.bulk.is_empty() && r.long.is_none() {
        return;
    }
    let _ = writeln!(md, "\nDetails:\n");
    for s in &r.small {
        let _ = writeln!(
            md,
            "- c={}, direct: {}\n- c={}, through the tunnel: {}",
            s.connections,
            budget_line(&s.direct, &s.direct_budget, None),
            s.connections,
            budget_line(&s.tunnel, &s.tunnel_budget, Some(&s.usage)),
        );
    }
    for b in &r.bulk {
        let _ = writeln!(
            md,
            "- {:?}: every run in MiB/s: direct {}; through the tunnel {}.",
            b.kind,
            speeds(&b.direct),
            speeds(&b.tunnel)
        );
    }
    if let Some(long) = &r.long {
        let curve: Vec<String> = long
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{}k: {} / {}",
                    s.requests / 1000,
                    mib(s.server.rss_kib),
                    mib(s.client.rss_kib)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "- RSS (server / client) after each wrk run of the long row: {}.",
            curve.join("; ")
        );
    }
}

/// Requests, latency max, and where the CPU time of a wrk run went, per request.
fn budget_line(w: &WrkResult, budget: &Budget, tunnel: Option<&Usage>) -> String {
    let per_request = |cpu: f64| format!("{:.0}", cpu * 1e6 / w.requests.max(1) as f64);
    let mut parts = vec![
        format!("wrk {}", per_request(w.cpu_secs)),
        format!("test API {}", per_request(budget.upstream_secs)),
    ];
    let mut ours = w.cpu_secs + budget.upstream_secs;
    if let Some(u) = tunnel {
        parts.push(format!("wsp_server {}", per_request(u.server_cpu_secs)));
        parts.push(format!("wsp_client {}", per_request(u.client_cpu_secs)));
        ours += u.server_cpu_secs + u.client_cpu_secs;
    }
    let wall = w.duration.as_secs_f64().max(1e-3);
    format!(
        "{} requests, latency max {}; CPU µs per request: {}; machine busy {:.2} cores on \
         average, {:.2} of them by these processes.",
        thousands(w.requests),
        micros(w.max_us),
        parts.join(", "),
        budget.machine_secs / wall,
        ours / wall
    )
}

fn usage_cell(peak_kib: u64, cpu_secs: f64) -> String {
    format!("peak {}, CPU {cpu_secs:.2} s", mib(peak_kib))
}

/// Each transfer's MiB/s, e.g. `895, 977, 943`.
pub fn speeds(durations: &[Duration]) -> String {
    durations
        .iter()
        .map(|t| format!("{:.0}", mib_per_sec(*t)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

pub fn mib_per_sec(took: Duration) -> f64 {
    BULK_LEN as f64 / (1024.0 * 1024.0) / took.as_secs_f64().max(1e-9)
}
