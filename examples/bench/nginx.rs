//! nginx as the internal API of the peer rows (Debian's binary, as a user would deploy
//! behind a tunnel): one master and one worker on 127.0.0.1, serving two static files of
//! the test API's pattern, [`SMALL_FILE`] (12 bytes, like the small rows' `/bytes?n=12`)
//! and [`BULK_FILE`] (1 GiB, sent with `sendfile`). Its prefix, generated `nginx.conf`,
//! log and files are under `target/bench-logs/nginx/`; the 1 GiB file is written afresh
//! (so that it is in the page cache for every path alike) and removed when nginx stops.
//!
//! nginx cannot listen on port 0, so its port is one the kernel just handed out to a
//! listener of ours ([`free_ports`]); should another program take it in between, nginx
//! exits saying so and the row fails with its log.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::bulk::{Pattern, BUF_LEN, BULK_LEN};
use crate::procfs;
use crate::procs::{Proc, POLL_INTERVAL};
use crate::small::SMALL_LEN;
use crate::stack::READY;

/// The 12-byte file of the small-request rows.
pub const SMALL_FILE: &str = "/small";
/// The 1 GiB file of the download row.
pub const BULK_FILE: &str = "/bulk";
/// Where nginx is looked for when it is not in `PATH` (Debian installs it in `/usr/sbin`),
/// as in `tests/integration/nginx/run.rs`.
const NGINX_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];
/// How long nginx may take to stop its worker and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// nginx running; stopped (master and worker) when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    /// `nginx -v`, e.g. `nginx/1.22.1`.
    pub version: String,
    proc: Proc,
    www: PathBuf,
}

impl Nginx {
    /// Writes the files and the configuration under `<log_dir>/nginx/` and starts nginx.
    pub fn start(log_dir: &Path, pattern: &Pattern) -> Result<Nginx, String> {
        let binary = binary()?;
        let version = version(&binary)?;
        let dir = log_dir.join("nginx");
        let www = dir.join("www");
        fs::create_dir_all(&www).map_err(|e| format!("creating {}: {e}", www.display()))?;
        write_pattern(&www.join(&SMALL_FILE[1..]), SMALL_LEN, pattern)?;
        write_pattern(&www.join(&BULK_FILE[1..]), BULK_LEN, pattern)?;
        let [addr] = free_ports()?;
        let conf = dir.join("nginx.conf");
        fs::write(&conf, config(&dir, &www, addr))
            .map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let args = [
            "-p".to_string(),
            format!("{}/", dir.display()),
            "-c".to_string(),
            conf.display().to_string(),
            "-e".to_string(),
            "stderr".to_string(),
        ];
        let proc = Proc::spawn("nginx", 1, &binary, &args, log_dir)?;
        let mut nginx = Nginx {
            addr,
            version,
            proc,
            www,
        };
        nginx.wait_listening()?;
        Ok(nginx)
    }

    /// The CPU seconds nginx has used so far: the master's and its worker's.
    pub fn cpu_secs(&self) -> Result<f64, String> {
        let master = self.proc.pid();
        let path = format!("/proc/{master}/task/{master}/children");
        let children = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        let mut total = procfs::precise_cpu_secs(master)?;
        for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
            total += procfs::precise_cpu_secs(pid)?;
        }
        Ok(total)
    }

    /// `http://<nginx>/<path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Polls until nginx accepts a connection; fails when it exits first or after [`READY`].
    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if let Some(status) = self.proc.exited() {
                return Err(format!("{} exited ({status}) before listening", self.proc));
            }
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            thread::sleep(POLL_INTERVAL);
        }
        Err(format!("{} did not listen within {READY:?}", self.proc))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker (SIGKILL, Proc's own drop, would leave the
        // worker running and listening).
        if self.proc.exited().is_none() {
            self.proc.terminate(STOP_GRACE);
        }
        let _ = fs::remove_dir_all(&self.www);
    }
}

/// `N` different ports of 127.0.0.1 free a moment ago: the kernel's picks for listeners
/// of ours, all held until the last is bound (so no two are the same), then closed, for
/// programs that cannot listen on port 0.
pub fn free_ports<const N: usize>() -> Result<[SocketAddr; N], String> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("finding a free port on 127.0.0.1: {e}"))?;
    let mut addrs = [SocketAddr::from(([127, 0, 0, 1], 0)); N];
    for (addr, listener) in addrs.iter_mut().zip(&listeners) {
        *addr = listener
            .local_addr()
            .map_err(|e| format!("reading a listener's address: {e}"))?;
    }
    Ok(addrs)
}

/// The nginx binary, or why there is none.
fn binary() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(NGINX_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "nginx not found in PATH or {NGINX_DIRS:?}: `make bench` installs it \
                 (scripts/test-deps.sh)"
            )
        })
}

/// `nginx/1.22.1` from `nginx -v` (which prints to stderr).
fn version(binary: &Path) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("-v")
        .output()
        .map_err(|e| format!("running {} -v: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stderr);
    Ok(text
        .trim()
        .strip_prefix("nginx version: ")
        .unwrap_or(text.trim())
        .to_string())
}

/// The whole `nginx.conf`: every path nginx writes is under `dir`. As Debian's own
/// configuration: `sendfile on; tcp_nopush on;`. Not as Debian's: no access log (a disk
/// write per request the tunnels would not see), and `keepalive_requests` high enough that
/// wrk's keep-alive connections are never closed (nginx closes one after 1,000 by default).
fn config(dir: &Path, www: &Path, addr: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        "daemon off;\n\
         master_process on;\n\
         worker_processes 1;\n\
         pid {dir}/nginx.pid;\n\
         error_log stderr warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   default_type application/octet-stream;\n\
         \x20   access_log off;\n\
         \x20   sendfile on;\n\
         \x20   tcp_nopush on;\n\
         \x20   keepalive_requests 100000000;\n\
         \x20   client_body_temp_path {dir}/client_body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   server {{\n\
         \x20       listen {addr};\n\
         \x20       root {www};\n\
         \x20   }}\n\
         }}\n",
        www = www.display()
    )
}

/// Writes the first `len` bytes of the test API's pattern to `path`.
fn write_pattern(path: &Path, len: u64, pattern: &Pattern) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut file = BufWriter::new(File::create(path).map_err(fail)?);
    let mut position = 0;
    while position < len {
        let piece = (len - position).min(BUF_LEN as u64) as usize;
        file.write_all(pattern.at(position, piece)).map_err(fail)?;
        position += piece as u64;
    }
    file.flush().map_err(fail)
}
