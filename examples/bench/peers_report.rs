//! The peer rows in the report: a table of their own under the main one, a column per path
//! (direct to nginx, wsp, rathole's two transports) and a row per figure, with "wsp / best
//! peer": wsp's figure over the better of rathole's two. Then how the paths were set up,
//! and every run behind the medians.

use std::fmt::Write;
use std::time::Duration;

use crate::bulk::RUNS;
use crate::peers::{PathResult, PeersResult, Route};
use crate::rathole::{self, Transport};
use crate::report::{median, mib_per_sec, rate_cell, speeds};
use crate::small::CONCURRENCY;
use crate::units::{mib, micros};

/// Which way a figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// One line: a figure per path, and how wsp's compares with the best peer's.
struct Line {
    name: String,
    cells: Vec<String>,
    ratio: String,
}

pub fn render(md: &mut String, peers: &PeersResult, secs: u64) {
    preamble(md, peers, secs);
    let mut lines = Vec::new();
    for (i, c) in CONCURRENCY.iter().enumerate() {
        lines.push(rate_line(peers, i, *c));
    }
    lines.push(cpu_line(peers));
    lines.push(bulk_line(
        peers,
        "download 1 GiB from nginx (`sendfile`): MiB/s",
        |p| &p.download,
    ));
    lines.push(bulk_line(
        peers,
        "upload 1 GiB into the benchmark's sink: MiB/s",
        |p| &p.upload,
    ));
    lines.push(rss_line(peers));
    let header: Vec<&str> = Route::ALL.iter().map(|r| r.name()).collect();
    let _ = writeln!(
        md,
        "| figure | {} | wsp / best peer |\n|---|{}---|",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for line in &lines {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            line.name,
            line.cells.join(" | "),
            line.ratio
        );
    }
    details(md, peers);
}

fn preamble(md: &mut String, peers: &PeersResult, secs: u64) {
    let _ = writeln!(
        md,
        "\nPeers (issue 14): the same requests to **{}** (one worker, `sendfile`, no access \
         log) straight, through wsp (a fresh `wsp_server` and `wsp_client`, `/request` with \
         `X-PROXY-DESTINATION`) and through **{}** with its TCP and its plain WebSocket \
         transport (a fresh server and client each, default settings). rathole is a \
         benchmark peer that `scripts/bench.sh` installs from the crate registry into \
         `target/{}/` (`cargo install rathole --version {}`), never a dependency of wsp. \
         Small requests: wrk as above, `GET /small` (nginx's 12-byte file), {secs} s per \
         cell. Bulk: the benchmark's client, {RUNS} transfers per path, median shown; \
         downloads of nginx's 1 GiB file; uploads into the benchmark's own sink, which \
         answers with the count once it has read the whole body (nginx and the test API's \
         `/hello` answer before reading it, and rathole's WebSocket transport then cuts the \
         upload when the upstream closes). Tunnel CPU: server + client, user + system, per request of each wrk run. \
         The Go wsp is not installed here: its row of the issue is not measured.\n",
        peers.nginx_version,
        peers.rathole_version,
        rathole::INSTALL_DIR,
        rathole::VERSION,
    );
}

fn path(peers: &PeersResult, route: Route) -> Option<&PathResult> {
    peers.paths.iter().find(|p| p.route == route)
}

/// wsp's figure over the better peer's, e.g. `0.58× TCP's (behind)`.
fn ratio(
    peers: &PeersResult,
    better: Better,
    figure: impl Fn(&PathResult) -> Option<f64>,
) -> String {
    let Some(wsp) = path(peers, Route::Wsp).and_then(&figure) else {
        return "—".into();
    };
    let mut best: Option<(Transport, f64)> = None;
    for transport in [Transport::Tcp, Transport::WebSocket] {
        let Some(value) = path(peers, Route::Rathole(transport)).and_then(&figure) else {
            continue;
        };
        let wins = match (best, better) {
            (None, _) => true,
            (Some((_, b)), Better::Higher) => value > b,
            (Some((_, b)), Better::Lower) => value < b,
        };
        if wins {
            best = Some((transport, value));
        }
    }
    let Some((transport, best)) = best else {
        return "—".into();
    };
    let r = wsp / best.max(1e-9);
    let ahead = match better {
        Better::Higher => r >= 1.0,
        Better::Lower => r <= 1.0,
    };
    let peer = match transport {
        Transport::Tcp => "TCP",
        Transport::WebSocket => "WebSocket",
    };
    let word = if ahead { "ahead" } else { "behind" };
    format!("{r:.2}× {peer}'s ({word})")
}

fn cells(peers: &PeersResult, cell: impl Fn(&PathResult) -> String) -> Vec<String> {
    Route::ALL
        .iter()
        .map(|&route| path(peers, route).map_or("—".into(), &cell))
        .collect()
}

fn rate_line(peers: &PeersResult, i: usize, c: usize) -> Line {
    let name = if c == 1 {
        "GET 12 B, c=1: requests/s (p50)".to_string()
    } else {
        format!("GET 12 B, c={c}: requests/s")
    };
    let cells = cells(peers, |p| {
        let w = &p.small[i];
        if c == 1 {
            format!("{} ({})", rate_cell(w), micros(w.p50_us))
        } else {
            rate_cell(w)
        }
    });
    let mut ratio = ratio(peers, Better::Higher, |p| Some(p.small[i].rate()));
    if c == 1 {
        let p50 = self::ratio(peers, Better::Lower, |p| Some(p.small[i].p50_us as f64));
        ratio = format!("{ratio}; p50 {p50}");
    }
    Line { name, cells, ratio }
}

/// CPU µs per request of the tunnel in the wrk run `i`, if the path has a tunnel.
fn cpu_per_request(p: &PathResult, i: usize) -> Option<f64> {
    let cpu = p.small_cpu_secs.get(i)?;
    Some(cpu * 1e6 / p.small[i].requests.max(1) as f64)
}

fn cpu_line(peers: &PeersResult) -> Line {
    let list = |p: &PathResult| -> Option<Vec<String>> {
        (0..CONCURRENCY.len())
            .map(|i| cpu_per_request(p, i).map(|us| format!("{us:.0}")))
            .collect()
    };
    let cells = cells(peers, |p| {
        list(p).map_or("—".into(), |l| format!("{} µs", l.join(" / ")))
    });
    let ratios: Vec<String> = (0..CONCURRENCY.len())
        .map(|i| ratio(peers, Better::Lower, |p| cpu_per_request(p, i)))
        .collect();
    let levels: Vec<String> = CONCURRENCY.iter().map(|c| format!("c={c}")).collect();
    Line {
        name: format!(
            "tunnel CPU / request (server + client), {}",
            levels.join(" / ")
        ),
        cells,
        ratio: ratios.join("; "),
    }
}

fn bulk_line(
    peers: &PeersResult,
    name: &str,
    runs: impl Fn(&PathResult) -> &Vec<Duration>,
) -> Line {
    let speed = |p: &PathResult| mib_per_sec(median(runs(p)));
    Line {
        name: name.to_string(),
        cells: cells(peers, |p| format!("{:.0} MiB/s", speed(p))),
        ratio: ratio(peers, Better::Higher, |p| Some(speed(p))),
    }
}

fn rss_line(peers: &PeersResult) -> Line {
    let sum = |p: &PathResult| p.peak_kib.map(|(s, c)| (s + c) as f64);
    Line {
        name: "tunnel peak RSS over the path's runs, server / client".into(),
        cells: cells(peers, |p| {
            p.peak_kib
                .map_or("—".into(), |(s, c)| format!("{} / {}", mib(s), mib(c)))
        }),
        ratio: ratio(peers, Better::Lower, sum) + " (sum)",
    }
}

fn details(md: &mut String, peers: &PeersResult) {
    let _ = writeln!(md, "\nPeer details:\n");
    for p in &peers.paths {
        let latency: Vec<String> = CONCURRENCY
            .iter()
            .zip(&p.small)
            .map(|(c, w)| format!("c={c} {} / {}", micros(w.p99_us), micros(w.max_us)))
            .collect();
        let busy: Vec<String> = CONCURRENCY
            .iter()
            .zip(p.small.iter().zip(&p.small_busy_secs))
            .map(|(c, (w, (machine, ours)))| {
                let wall = w.duration.as_secs_f64().max(1e-3);
                format!("c={c} {:.2} ({:.2})", machine / wall, ours / wall)
            })
            .collect();
        let _ = writeln!(
            md,
            "- {}: latency p99 / max {}; machine busy, cores on average (of them wrk, nginx \
             and the tunnel) {}; every 1 GiB run in MiB/s: down {}; up {}.",
            p.route.name(),
            latency.join(", "),
            busy.join(", "),
            speeds(&p.download),
            speeds(&p.upload)
        );
    }
}
