//! The deployment example `examples/nginx/wsp.conf`, run for real: nginx terminates TLS in
//! front of two wsp servers, one client registers to both through it (`/a/register`,
//! `/b/register`), and callers relay through its `/request` over https. The test uses the
//! example file itself, rewriting only its example values (listen address, certificate,
//! upstream addresses) in its directive lines; nginx runs from a temporary prefix on an
//! ephemeral port. Without nginx installed, these tests fail (saying how to install it).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::tls::Pki;
use crate::support::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/nginx/wsp.conf");

/// Where nginx is looked for when it is not in `PATH`: Debian installs it in `/usr/sbin`,
/// which a non-root user's `PATH` usually lacks.
const NGINX_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];

/// The client's id on both servers.
const CLIENT_ID: &str = "behind-nginx";

/// Idle connections the client keeps per target (per server).
const POOL: u64 = 2;

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
                 tests run the example configuration with the real nginx. Install it: \
                 `sudo apt-get install nginx-light` (Debian/Ubuntu; `.ci/run` does it in CI)"
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
struct Nginx {
    proc: Proc,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx with the example for servers `a` and `b`, on a free port of 127.0.0.1:
    /// one found by binding `:0`, tried again with another should something take it first.
    fn start(a: SocketAddr, b: SocketAddr, pki: &Pki) -> Nginx {
        let binary = nginx_binary();
        for _ in 0..3 {
            let listen = free_port();
            let dir = temp_dir();
            let site = dir.join("wsp.conf");
            let conf = dir.join("nginx.conf");
            write(&site, &site_config(listen, a, b, pki));
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

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would orphan them, still
        // listening). Proc's own drop then reaps it, or kills it if it hung.
        if let Ok(pid) = i32::try_from(self.proc.pid()) {
            // SAFETY: kill(2) on our own child's pid, with a valid signal number.
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

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A caller over https trusting only the test CA.
fn https_caller(pki: &Pki) -> ureq::Agent {
    let pem = std::fs::read(pki.ca_path()).expect("read the test CA");
    let ca = ureq::tls::Certificate::from_pem(&pem).expect("the test CA is PEM");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(240)))
        .build()
        .into()
}

/// Two wsp servers, nginx in front with the example, a client registered to both through
/// nginx, and the test API behind the client.
struct Deployment {
    // Dropped in this order: nginx, then the client, then the servers.
    nginx: Nginx,
    client: Proc,
    a: Server,
    b: Option<Server>,
    upstream: TestApi,
    caller: ureq::Agent,
    _pki: Pki,
}

impl Deployment {
    fn start() -> Deployment {
        let pki = Pki::new();
        let upstream = upstream();
        let (a, b) = (Server::start(&[]), Server::start(&[]));
        let nginx = Nginx::start(a.addr, b.addr, &pki);
        let target = |path: &str| format!("wss://{}{path}", nginx.addr);
        let (target_a, target_b) = (target("/a/register"), target("/b/register"));
        let pool = POOL.to_string();
        let client = start_client_raw(&[
            "--id",
            CLIENT_ID,
            "--target",
            &target_a,
            "--target",
            &target_b,
            "--secret-key",
            SECRET,
            "--ca-file",
            pki.ca_path(),
            "--pool-idle-size",
            &pool,
        ]);
        let deployment = Deployment {
            caller: https_caller(&pki),
            nginx,
            client,
            a,
            b: Some(b),
            upstream,
            _pki: pki,
        };
        for server in [&deployment.a, deployment.server_b()] {
            deployment.wait_registered(server);
        }
        deployment
    }

    fn server_b(&self) -> &Server {
        self.b.as_ref().expect("server B is running")
    }

    /// Waits until `server` has the client's whole idle pool, registered through nginx.
    fn wait_registered(&self, server: &Server) {
        poll(READY, || {
            (client_row(server)?["idle"].as_u64()? >= POOL).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "the client never registered {POOL} connections to {} through nginx\n\
                     client log:\n{}\nnginx log:\n{}",
                server.addr,
                self.client.log.lock(),
                self.nginx.proc.log.lock()
            )
        });
    }

    /// Sends `request` to nginx.
    fn send(&self, request: ureq::http::Request<impl ureq::AsSendBody>) -> Reply {
        let uri = request.uri().to_string();
        let response = self
            .caller
            .run(request)
            .unwrap_or_else(|e| panic!("{uri} through nginx: {e}"));
        try_into_reply(response).unwrap_or_else(|e| panic!("{uri} through nginx: {e}"))
    }

    /// A request to nginx's `/request` for the test API's `path`.
    fn relay(&self, method: &str, path: &str) -> ureq::http::request::Builder {
        ureq::http::Request::builder()
            .method(method)
            .uri(self.nginx.url("/request"))
            .header(
                "X-PROXY-DESTINATION",
                format!("http://{}{path}", self.upstream.addr()),
            )
    }

    /// GET /hello through nginx and the proxy answers 200 "hello world".
    fn assert_hello(&self) {
        let reply = self.send(self.relay("GET", "/hello").body(()).expect("request"));
        assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    }
}

/// The client's row in `server`'s `/status.json`, once it has one.
fn client_row(server: &Server) -> Option<Value> {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    let json: Value = serde_json::from_slice(&reply.body).ok()?;
    let clients = json["clients"].as_array()?;
    clients.iter().find(|c| c["id"] == CLIENT_ID).cloned()
}

/// Requests `server` counts as served by the client.
fn served(server: &Server) -> u64 {
    client_row(server)
        .and_then(|row| row["requests"].as_u64())
        .unwrap_or(0)
}

#[test]
fn relays_over_both_servers_and_hides_the_rest() {
    let deployment = Deployment::start();
    for _ in 0..8 {
        deployment.assert_hello();
    }
    // Round robin: each server relayed some of them (counted once each exchange is over).
    let (a, b) = (&deployment.a, deployment.server_b());
    poll(READY, || (served(a) + served(b) == 8).then_some(())).unwrap_or_else(|| {
        panic!(
            "8 requests, counted {} on A and {} on B",
            served(a),
            served(b)
        )
    });
    assert!(
        served(a) > 0 && served(b) > 0,
        "{} / {}",
        served(a),
        served(b)
    );

    // wsp's headers cross nginx untouched: X-PROXY-CLIENT picks the client, or none.
    for (id, expected) in [
        (CLIENT_ID, "hello world"),
        ("nobody", "No client \"nobody\" connected"),
    ] {
        let request = deployment
            .relay("GET", "/hello")
            .header("X-PROXY-CLIENT", id);
        let reply = deployment.send(request.body(()).expect("request"));
        assert_eq!(reply.text().trim(), expected, "X-PROXY-CLIENT: {id}");
    }

    // The plain health check answers, never the JSON listing client ids.
    let status = ureq::http::Request::builder()
        .uri(deployment.nginx.url("/status"))
        .header("Accept", "application/json")
        .body(())
        .expect("request");
    let reply = deployment.send(status);
    assert_eq!((reply.status, reply.text().trim()), (200, "ok"));
    for path in ["/status.json", "/metrics", "/register", "/c/register", "/"] {
        let request = ureq::http::Request::builder()
            .uri(deployment.nginx.url(path))
            .body(())
            .expect("request");
        assert_eq!(deployment.send(request).status, 404, "{path} through nginx");
    }
}

#[test]
fn large_bodies_stream_both_ways() {
    let deployment = Deployment::start();
    // A chunked upload (no length known in advance), checked byte for byte by its hash.
    let length = 24 * 1024 * 1024;
    let upload = deployment
        .relay("POST", "/upload-count")
        .body(ureq::SendBody::from_owned_reader(
            routes::PatternReader::new(length),
        ))
        .expect("request");
    let reply = deployment.send(upload);
    assert_eq!((reply.status, reply.text()), (200, length.to_string()));
    let fnv = pattern_fnv(length);
    assert_eq!(reply.header("x-body-fnv"), Some(fnv.as_str()));

    // An upload with its length, echoed back.
    let body = random_bytes(4 * 1024 * 1024, 7);
    let post = deployment.relay("POST", "/post").body(body.clone());
    let reply = deployment.send(post.expect("request"));
    assert_eq!(reply.status, 200);
    assert!(reply.body == body, "the echoed body differs");

    // A download, read as it comes and checked byte for byte.
    let download = deployment
        .relay("GET", &format!("/bytes?n={length}"))
        .body(())
        .expect("request");
    let response = deployment.caller.run(download).expect("download");
    assert_eq!(response.status(), 200);
    let received = read_pattern(response.into_body().into_reader());
    assert_eq!(received, length);

    // Streamed, not stored: nginx warns when it spools a body to a temporary file.
    let log = deployment.nginx.proc.log.lock();
    assert!(!log.contains("buffered to a temporary file"), "{log}");
}

#[test]
fn a_server_down_leaves_the_other_serving() {
    let mut deployment = Deployment::start();
    deployment.assert_hello();
    let before = served(&deployment.a);
    drop(deployment.b.take());
    // nginx finds B refusing connections and sends each request to A instead.
    for _ in 0..6 {
        deployment.assert_hello();
    }
    let upload = deployment.relay("POST", "/upload-count");
    let reply = deployment.send(upload.body(vec![b'x'; 1 << 20]).expect("request"));
    assert_eq!((reply.status, reply.text().as_str()), (200, "1048576"));
    let a = &deployment.a;
    poll(READY, || (served(a) >= before + 7).then_some(()))
        .unwrap_or_else(|| panic!("A served {} requests, expected {}", served(a), before + 7));
}
