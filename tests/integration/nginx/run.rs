//! nginx run from a temporary prefix with the example site `examples/nginx/wsp.conf`: the
//! file itself, with only its example values (listen address, certificate, upstream
//! addresses) rewritten in its directive lines, inside a minimal `nginx.conf` whose every
//! written path is under the prefix. Stopped, master and workers, when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::tls::Pki;
use crate::support::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/nginx/wsp.conf");

/// Where nginx is looked for when it is not in `PATH`: Debian installs it in `/usr/sbin`,
/// which a non-root user's `PATH` usually lacks.
const NGINX_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];

/// The nginx binary, or a failure that says how to get one.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(NGINX_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed (looked in PATH and {NGINX_DIRS:?}); the deployment \
                 tests run the example configuration with the real nginx. `make test` \
                 installs it (scripts/test-deps.sh); by hand, as root: `apt-get update && \
                 apt-get install nginx-light` (Debian/Ubuntu)"
            )
        })
}

/// The example file with its example values replaced by the test's, in directive lines
/// only (comments stay as they are). Each value must occur in exactly the number of
/// directives given: if the example changes shape, this fails instead of testing
/// something else.
fn site_config(listen: SocketAddr, a: SocketAddr, b: SocketAddr, pki: &Pki) -> String {
    let text = std::fs::read_to_string(EXAMPLE).expect("read examples/nginx/wsp.conf");
    let swaps = [
        ("listen 443 ssl;", format!("listen {listen} ssl;"), 1),
        // No IPv6 listener: CI containers may have no IPv6 at all.
        (
            "listen [::]:443 ssl;",
            "# listen [::]: (not in the test)".into(),
            1,
        ),
        ("/etc/ssl/wsp/fullchain.pem", pki.cert_path().into(), 1),
        ("/etc/ssl/wsp/privkey.pem", pki.key_path().into(), 1),
        ("10.0.0.11:8080", a.to_string(), 2),
        ("10.0.0.12:8080", b.to_string(), 2),
    ];
    let mut seen = [0; 6];
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with('#') {
                return line.to_string();
            }
            let mut line = line.to_string();
            for (i, (from, to, _)) in swaps.iter().enumerate() {
                seen[i] += line.matches(from).count();
                line = line.replace(from, to);
            }
            line
        })
        .collect();
    for (i, (from, _, count)) in swaps.iter().enumerate() {
        assert_eq!(seen[i], *count, "{from:?} in directives of {EXAMPLE}");
    }
    lines.join("\n") + "\n"
}

/// The `nginx.conf` around the example, as a distribution's would be (the example goes
/// inside `http { }`), with every path nginx writes under `dir`.
fn main_config(dir: &Path, site: &Path) -> String {
    let dir = dir.display();
    format!(
        "worker_processes 1;\n\
         error_log stderr notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log {dir}/access.log;\n\
         \x20   client_body_temp_path {dir}/client_body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   include {site};\n\
         }}\n",
        site = site.display()
    )
}

/// nginx running from a temporary prefix, stopped (master and workers) when dropped.
pub struct Nginx {
    pub proc: Proc,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx with the example for servers `a` and `b`, on a free port of 127.0.0.1:
    /// one found by binding `:0`, tried again with another should something take it first.
    pub fn start(a: SocketAddr, b: SocketAddr, pki: &Pki) -> Nginx {
        Nginx::start_site(|listen, _| site_config(listen, a, b, pki))
    }

    /// Starts nginx with the `server { }` blocks `site` writes for a listen address and
    /// nginx's own directory (for files it should serve), on a free port of 127.0.0.1.
    pub fn start_site(site: impl Fn(SocketAddr, &Path) -> String) -> Nginx {
        let binary = nginx_binary();
        for _ in 0..3 {
            let listen = free_port();
            let dir = temp_dir();
            let site_file = dir.join("wsp.conf");
            let conf = dir.join("nginx.conf");
            write(&site_file, &site(listen, &dir));
            let site = site_file;
            write(&conf, &main_config(&dir, &site));
            let prefix = format!("{}/", dir.display());
            let globals = format!("daemon off; pid {}/nginx.pid;", dir.display());
            let args = ["-p", &prefix, "-c", path_str(&conf), "-e", "stderr"];
            let mut command = std::process::Command::new(&binary);
            command.args(args).args(["-g", &globals]);
            let mut nginx = Nginx {
                proc: Proc::spawn_command(command),
                dir,
                addr: listen,
            };
            match nginx.wait_listening() {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("nginx did not start with the example; its log:\n{log}"),
            }
        }
        panic!("nginx found no free port in 3 tries")
    }

    /// Waits until nginx accepts connections, or returns its log if it exited.
    fn wait_listening(&mut self) -> Result<(), String> {
        let addr = self.addr;
        let child = &mut self.proc.child;
        let outcome = poll(READY, || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false);
            }
            TcpStream::connect(addr).is_ok().then_some(true)
        });
        match outcome {
            Some(true) => Ok(()),
            // Its last lines may still be in flight from the pipe's reader.
            _ => Err(poll(Duration::from_secs(2), || {
                let log = self.proc.log.lock();
                log.contains("[emerg]").then(|| log.clone())
            })
            .unwrap_or_else(|| self.proc.log.lock().clone())),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would orphan them, still
        // listening). Proc's own drop then reaps it, or kills it if it hung. Only while it
        // runs: once reaped (it exited, e.g. its port was taken), its pid may already be
        // another process's, such as a server another test just started.
        let running = matches!(self.proc.child.try_wait(), Ok(None));
        if let (true, Ok(pid)) = (running, i32::try_from(self.proc.pid())) {
            // SAFETY: kill(2) on our own child's pid, not reaped yet (so not reused),
            // with a valid signal number.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        self.proc.wait_exit(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on 127.0.0.1, found by binding `:0` (free again once returned).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("address")
}

/// A new empty directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wsp-it-{}-nginx-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir:?}: {e}"));
    dir
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
