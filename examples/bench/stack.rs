//! The processes measured: the test API (one for the whole run: it is the upstream of the
//! direct and of the tunnel rows alike) and, for each tunnel row, a fresh `wsp_server` and
//! `wsp_client` pair on 127.0.0.1 with ephemeral ports, so that every row's peak memory and
//! CPU time are its own. Every process is killed when its handle is dropped.

use std::net::SocketAddr;
use std::path::Path;

use crate::binaries::Binaries;
use std::thread;
use std::time::{Duration, Instant};

use crate::http;
use crate::procfs::{self, Snapshot};
use crate::procs::{Proc, POLL_INTERVAL};

/// How long a process may take to listen, or the relay to answer.
pub const READY: Duration = Duration::from_secs(30);
/// The key the server and the client share.
const SECRET: &str = "bench-secret";

/// The test API, started once.
pub struct Upstream {
    pub addr: SocketAddr,
    proc: Proc,
}

impl Upstream {
    pub fn start(bins: &Binaries, log_dir: &Path) -> Result<Upstream, String> {
        let args = ["--port", "0"].map(String::from);
        let mut proc = Proc::spawn("test_api", 1, &bins.test_api, &args, log_dir)?;
        let line = proc.wait_log("listening on http://", READY)?;
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("no address in {line:?} logged by {proc}"))?;
        Ok(Upstream { addr, proc })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// `http://<test API>/<path>`, a destination for the tunnel.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// How a tunnel's processes are started.
pub struct TunnelSpec<'a> {
    /// Names the log files: `server-<tag>-1.log`, `client-<tag>-1.log`.
    pub tag: &'a str,
    pub server_log_level: &'a str,
    /// Flags added to the server's (e.g. `--admin 127.0.0.1:0`).
    pub server_flags: &'a [&'a str],
    /// Flags added to the client's (e.g. the pool sizes).
    pub client_flags: &'a [&'a str],
}

/// One `wsp_server` and one `wsp_client` registered to it.
pub struct Tunnel {
    pub addr: SocketAddr,
    /// The admin listener's address, when the server has `--admin`.
    pub admin: Option<SocketAddr>,
    // The client first: dropped (killed) before the server it talks to.
    pub client: Proc,
    pub server: Proc,
}

impl Tunnel {
    /// Starts the server, finds its port, starts the client; does not wait for the client.
    pub fn start(bins: &Binaries, log_dir: &Path, spec: &TunnelSpec) -> Result<Tunnel, String> {
        let mut server_args = [
            "--port",
            "0",
            "--secret-key",
            SECRET,
            "--log-level",
            spec.server_log_level,
        ]
        .map(String::from)
        .to_vec();
        server_args.extend(spec.server_flags.iter().map(|f| f.to_string()));
        let name = format!("server-{}", spec.tag);
        let mut server = Proc::spawn(&name, 1, &bins.server, &server_args, log_dir)?;
        let (addr, admin) = if spec.server_flags.contains(&"--admin") {
            let (addr, admin) = wait_listening_with_admin(&mut server)?;
            (addr, Some(admin))
        } else {
            (wait_listening(&mut server)?, None)
        };
        let mut client_args = [
            "--target",
            &format!("ws://{addr}/register"),
            "--id",
            &format!("bench-{}", spec.tag),
            "--secret-key",
            SECRET,
            "--log-level",
            "warn",
        ]
        .map(String::from)
        .to_vec();
        client_args.extend(spec.client_flags.iter().map(|f| f.to_string()));
        let name = format!("client-{}", spec.tag);
        let client = Proc::spawn(&name, 1, &bins.client, &client_args, log_dir)?;
        Ok(Tunnel {
            addr,
            admin,
            client,
            server,
        })
    }

    /// Starts a tunnel and waits until a relayed `GET /hello` answers 200.
    pub fn start_ready(
        bins: &Binaries,
        log_dir: &Path,
        spec: &TunnelSpec,
        upstream: &Upstream,
    ) -> Result<Tunnel, String> {
        let tunnel = Tunnel::start(bins, log_dir, spec)?;
        tunnel.wait_relay(upstream)?;
        Ok(tunnel)
    }

    /// Polls a relayed `GET /hello` until it answers 200, or fails after [`READY`].
    pub fn wait_relay(&self, upstream: &Upstream) -> Result<(), String> {
        let destination = upstream.url("/hello");
        let deadline = Instant::now() + READY;
        let mut last = String::new();
        while Instant::now() < deadline {
            match http::get(self.addr, "/request", Some(&destination)) {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => {
                    last = format!("status {status}: {}", String::from_utf8_lossy(&body))
                }
                Err(e) => last = e,
            }
            thread::sleep(POLL_INTERVAL);
        }
        Err(format!(
            "the relay did not answer 200 within {READY:?}; last: {last}"
        ))
    }

    /// `http://<server>/request`
    pub fn request_url(&self) -> String {
        format!("http://{}/request", self.addr)
    }

    /// Starts the peak memory of both processes afresh and returns where they stand.
    pub fn begin_row(&self) -> Result<(Snapshot, Snapshot), String> {
        procfs::reset_peak(self.server.pid())?;
        procfs::reset_peak(self.client.pid())?;
        Ok((
            procfs::snapshot(self.server.pid())?,
            procfs::snapshot(self.client.pid())?,
        ))
    }

    /// What the server and client used since `begin`: peak RSS and CPU seconds.
    pub fn end_row(&self, begin: (Snapshot, Snapshot)) -> Result<Usage, String> {
        let server = procfs::snapshot(self.server.pid())?;
        let client = procfs::snapshot(self.client.pid())?;
        Ok(Usage {
            server_peak_kib: server.peak_rss_kib,
            server_cpu_secs: server.cpu_secs - begin.0.cpu_secs,
            client_peak_kib: client.peak_rss_kib,
            client_cpu_secs: client.cpu_secs - begin.1.cpu_secs,
        })
    }
}

/// Resources of the server and the client during one row.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub server_peak_kib: u64,
    pub server_cpu_secs: f64,
    pub client_peak_kib: u64,
    pub client_cpu_secs: f64,
}

/// Polls `/proc` until the server listens; fails when it exits first or after [`READY`].
pub fn wait_listening(server: &mut Proc) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + READY;
    loop {
        if let Some(addr) = procfs::listening_addr(server.pid()) {
            return Ok(addr);
        }
        if let Some(status) = server.exited() {
            return Err(format!("{server} exited ({status}) before listening"));
        }
        if Instant::now() >= deadline {
            return Err(format!("{server} did not listen within {READY:?}"));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// [`wait_listening`] for a server with `--admin`: at `warn` it logs neither address, so
/// once it has two listening sockets the one whose `/api/stats` answers 200 is the admin
/// listener (the public port answers 404 there). Returns (public, admin).
pub fn wait_listening_with_admin(server: &mut Proc) -> Result<(SocketAddr, SocketAddr), String> {
    let deadline = Instant::now() + READY;
    loop {
        if let [a, b] = procfs::listening_addrs(server.pid())[..] {
            match (is_admin(a), is_admin(b)) {
                (true, false) => return Ok((b, a)),
                (false, true) => return Ok((a, b)),
                _ => {}
            }
        }
        if let Some(status) = server.exited() {
            return Err(format!("{server} exited ({status}) before listening"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{server} did not listen on its port and its admin listener within {READY:?}"
            ));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn is_admin(addr: SocketAddr) -> bool {
    matches!(http::get(addr, "/api/stats", None), Ok((200, _)))
}
