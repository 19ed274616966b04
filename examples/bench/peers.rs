//! The peer rows (issue 14): wsp next to the tunnel a user would pick instead, rathole, with
//! both of its transports, all in front of the same internal API, nginx. Four paths, one
//! after the other: straight to nginx, through wsp (a fresh `wsp_server` and `wsp_client`,
//! `GET /request` with `X-PROXY-DESTINATION`), through rathole with its TCP transport and
//! with its WebSocket transport (a fresh server and client each, callers on the server's
//! service port). Each path gets the same loads: wrk on nginx's 12-byte file at every
//! [`small::CONCURRENCY`], then [`RUNS`] downloads of nginx's 1 GiB file (`sendfile`) and
//! [`RUNS`] 1 GiB uploads into the benchmark's own sink ([`crate::sink`]), which answers
//! once it has read the whole body (nginx, like the test API's `/hello`, answers a `POST`
//! before it has read the body).
//!
//! For a tunnel path, its server's and client's CPU time is read around each wrk run (per
//! request: the "tunnel CPU / request"), and their peak RSS over all of the path's runs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::binaries::Binaries;
use crate::bulk::{self, Pattern, RUNS};
use crate::http;
use crate::nginx::{Nginx, BULK_FILE, SMALL_FILE};
use crate::procfs;
use crate::procs::Proc;
use crate::rathole::{self, Rathole, Transport};
use crate::sink::{self, Sink};
use crate::small;
use crate::stack::{Tunnel, TunnelSpec, Upstream};
use crate::wrk::{self, Load, WrkResult};

/// The path of the uploads (the sink answers any).
const SINK_PATH: &str = "/sink";

/// One way from the caller to nginx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Direct,
    Wsp,
    Rathole(Transport),
}

impl Route {
    pub const ALL: [Route; 4] = [
        Route::Direct,
        Route::Wsp,
        Route::Rathole(Transport::Tcp),
        Route::Rathole(Transport::WebSocket),
    ];

    /// Its column in the report.
    pub fn name(self) -> &'static str {
        match self {
            Route::Direct => "direct to nginx",
            Route::Wsp => "wsp",
            Route::Rathole(Transport::Tcp) => "rathole 0.5, TCP transport",
            Route::Rathole(Transport::WebSocket) => "rathole 0.5, WebSocket transport",
        }
    }

    /// Names its log files.
    fn tag(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Wsp => "wsp",
            Route::Rathole(Transport::Tcp) => "rathole-tcp",
            Route::Rathole(Transport::WebSocket) => "rathole-websocket",
        }
    }
}

/// What one path measured.
pub struct PathResult {
    pub route: Route,
    /// One wrk run per [`small::CONCURRENCY`].
    pub small: Vec<WrkResult>,
    /// The tunnel's CPU seconds (server + client) during each run of `small`; empty for
    /// the direct path.
    pub small_cpu_secs: Vec<f64>,
    /// During each run of `small`: the whole machine's busy CPU seconds (all cores), and
    /// how many of them wrk, nginx and the tunnel used.
    pub small_busy_secs: Vec<(f64, f64)>,
    pub download: Vec<Duration>,
    pub upload: Vec<Duration>,
    /// The tunnel's peak RSS (server, client) over all the path's runs, in KiB.
    pub peak_kib: Option<(u64, u64)>,
}

/// The peer rows.
pub struct PeersResult {
    /// e.g. `nginx/1.22.1`.
    pub nginx_version: String,
    /// e.g. `rathole 0.5.0`.
    pub rathole_version: String,
    /// One per [`Route::ALL`], in that order.
    pub paths: Vec<PathResult>,
}

/// Everything a path needs.
struct Bench<'a> {
    bins: &'a Binaries,
    log_dir: &'a Path,
    upstream: &'a Upstream,
    nginx: &'a Nginx,
    sink: &'a Sink,
    rathole: &'a Path,
    pattern: &'a Pattern,
    duration: Duration,
}

/// Where a caller sends one kind of request of a path.
struct Target {
    addr: SocketAddr,
    path: String,
    /// `X-PROXY-DESTINATION`, for wsp.
    destination: Option<String>,
}

impl Target {
    /// Straight to `addr` (nginx, the test API, or a rathole service that leads there).
    fn at(addr: SocketAddr, path: &str) -> Target {
        Target {
            addr,
            path: path.to_string(),
            destination: None,
        }
    }

    /// Through wsp's server at `addr` to `destination`.
    fn via_wsp(addr: SocketAddr, destination: String) -> Target {
        Target {
            addr,
            path: "/request".to_string(),
            destination: Some(destination),
        }
    }
}

/// A path's three targets.
struct Targets {
    small: Target,
    download: Target,
    upload: Target,
}

/// A tunnel's server and client, killed when dropped (client first).
struct Pair {
    client: Proc,
    server: Proc,
}

impl Pair {
    fn pids(&self) -> [u32; 2] {
        [self.server.pid(), self.client.pid()]
    }

    fn cpu_secs(&self) -> Result<f64, String> {
        let [server, client] = self.pids();
        Ok(procfs::precise_cpu_secs(server)? + procfs::precise_cpu_secs(client)?)
    }
}

/// Measures the four paths. `target_dir` is where `scripts/bench.sh` installed rathole.
pub fn measure(
    bins: &Binaries,
    log_dir: &Path,
    upstream: &Upstream,
    target_dir: &Path,
    duration: Duration,
) -> Result<PeersResult, String> {
    let rathole = rathole::binary(target_dir)?;
    let rathole_version = rathole::version(&rathole)?;
    eprintln!(
        "bench: peers: {rathole_version} from {} (a benchmark peer installed by \
         scripts/bench.sh, never a dependency of wsp); writing nginx's 1 GiB file",
        rathole.display()
    );
    let pattern = Pattern::new();
    let nginx = Nginx::start(log_dir, &pattern)?;
    eprintln!("bench: peers: {} on {}", nginx.version, nginx.addr);
    let sink = Sink::start()?;
    let bench = Bench {
        bins,
        log_dir,
        upstream,
        nginx: &nginx,
        sink: &sink,
        rathole: &rathole,
        pattern: &pattern,
        duration,
    };
    let paths = Route::ALL
        .iter()
        .map(|&route| {
            eprintln!(
                "bench: peers: {}: GET {SMALL_FILE} at c={:?}, {} s each, then {RUNS} × 1 GiB \
                 each way",
                route.name(),
                small::CONCURRENCY,
                duration.as_secs()
            );
            measure_path(&bench, route)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(PeersResult {
        nginx_version: nginx.version.clone(),
        rathole_version,
        paths,
    })
}

/// Starts the path's tunnel, if it has one, and says where its requests go.
fn start(bench: &Bench, route: Route) -> Result<(Option<Pair>, Targets), String> {
    let nginx = bench.nginx;
    match route {
        Route::Direct => Ok((
            None,
            Targets {
                small: Target::at(nginx.addr, SMALL_FILE),
                download: Target::at(nginx.addr, BULK_FILE),
                upload: Target::at(bench.sink.addr, SINK_PATH),
            },
        )),
        Route::Wsp => {
            let spec = TunnelSpec {
                tag: "peers",
                server_log_level: "warn",
                server_flags: &[],
                client_flags: &[],
            };
            let Tunnel {
                addr,
                client,
                server,
                ..
            } = Tunnel::start_ready(bench.bins, bench.log_dir, &spec, bench.upstream)?;
            let targets = Targets {
                small: Target::via_wsp(addr, nginx.url(SMALL_FILE)),
                download: Target::via_wsp(addr, nginx.url(BULK_FILE)),
                upload: Target::via_wsp(addr, format!("http://{}{SINK_PATH}", bench.sink.addr)),
            };
            Ok((Some(Pair { client, server }), targets))
        }
        Route::Rathole(transport) => {
            let Rathole {
                nginx: to_nginx,
                sink: to_sink,
                client,
                server,
            } = Rathole::start(
                bench.rathole,
                bench.log_dir,
                transport,
                nginx.addr,
                bench.sink.addr,
            )?;
            let targets = Targets {
                small: Target::at(to_nginx, SMALL_FILE),
                download: Target::at(to_nginx, BULK_FILE),
                upload: Target::at(to_sink, SINK_PATH),
            };
            Ok((Some(Pair { client, server }), targets))
        }
    }
}

fn measure_path(bench: &Bench, route: Route) -> Result<PathResult, String> {
    let (pair, targets) = start(bench, route)?;
    let small = &targets.small;
    let reply = http::get(small.addr, &small.path, small.destination.as_deref());
    small::check_body(reply, route.name())?;
    if let Some(pair) = &pair {
        for pid in pair.pids() {
            procfs::reset_peak(pid)?;
        }
    }
    let mut result = PathResult {
        route,
        small: Vec::new(),
        small_cpu_secs: Vec::new(),
        small_busy_secs: Vec::new(),
        download: Vec::new(),
        upload: Vec::new(),
        peak_kib: None,
    };
    let url = format!("http://{}{}", small.addr, small.path);
    for connections in small::CONCURRENCY {
        let tunnel_before = pair.as_ref().map(Pair::cpu_secs).transpose()?;
        let nginx_before = bench.nginx.cpu_secs()?;
        let machine_before = procfs::machine_busy_secs()?;
        let run = wrk::run(&Load {
            url: &url,
            destination: small.destination.as_deref(),
            connections,
            duration: bench.duration,
            stop_after_per_thread: None,
            post_bytes: None,
            log_base: &bench
                .log_dir
                .join(format!("wrk-{}-c{connections}", route.tag())),
        })?;
        let machine = procfs::machine_busy_secs()? - machine_before;
        let mut ours = run.cpu_secs + bench.nginx.cpu_secs()? - nginx_before;
        if let (Some(pair), Some(before)) = (&pair, tunnel_before) {
            let tunnel = pair.cpu_secs()? - before;
            result.small_cpu_secs.push(tunnel);
            ours += tunnel;
        }
        result.small.push(run);
        result.small_busy_secs.push((machine, ours));
    }
    let fail = |what: &'static str| {
        let name = route.name();
        move |e: String| format!("{what} through {name}: {e}")
    };
    let (down, up) = (&targets.download, &targets.upload);
    for _ in 0..RUNS {
        let took = bulk::download(
            down.addr,
            &down.path,
            down.destination.as_deref(),
            bench.pattern,
        )
        .map_err(fail("1 GiB download"))?;
        result.download.push(took);
    }
    for _ in 0..RUNS {
        let destination = up.destination.as_deref();
        let took = sink::upload(up.addr, &up.path, destination, bench.pattern)
            .map_err(fail("1 GiB upload"))?;
        result.upload.push(took);
    }
    if let Some(pair) = &pair {
        let [server, client] = pair.pids();
        let peak = |pid| procfs::snapshot(pid).map(|s| s.peak_rss_kib);
        result.peak_kib = Some((peak(server)?, peak(client)?));
    }
    Ok(result)
}
