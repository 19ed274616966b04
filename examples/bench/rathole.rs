//! rathole, the reference peer of the peer rows: a reverse tunnel in Rust (tokio) that
//! relays bytes, with a TCP or a WebSocket transport between its server and its client.
//!
//! It is a benchmark peer, never a dependency of wsp: `scripts/bench.sh` installs
//! [`VERSION`] from the crate registry into `target/bench-peers/` (`cargo install`, features
//! `server,client,websocket`), and this module only runs that binary. Each transport gets a
//! fresh server and client on 127.0.0.1 with two services, `nginx` and `sink` (the upload
//! sink, [`crate::sink`]), each a port of the server that leads to one address on the
//! client's side. rathole logs at its default level (`info`: nothing per connection).
//!
//! Its ports are written into its configuration, so they are ones the kernel just handed
//! out ([`free_ports`]); the services listen only once the client has registered them, which
//! is what the readiness check waits for.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Instant;

use crate::http;
use crate::nginx::{free_ports, SMALL_FILE};
use crate::procs::{Proc, POLL_INTERVAL};
use crate::small;
use crate::stack::READY;

/// The version measured; `scripts/bench.sh` installs it.
pub const VERSION: &str = "0.5.0";
/// Under `target/`: where `scripts/bench.sh` installs it (`<dir>/bin/rathole`).
pub const INSTALL_DIR: &str = "bench-peers";
/// The token the server and the client share.
const TOKEN: &str = "bench-secret";

/// What carries the tunnel between rathole's server and client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// Plain `ws://` (`tls = false`), as wsp's `ws://` in the bench.
    WebSocket,
}

impl Transport {
    /// The `type` of `[server.transport]` and `[client.transport]`.
    fn config_type(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::WebSocket => "websocket",
        }
    }

    /// The transport's own table, if it needs one.
    fn config_table(self, side: &str) -> String {
        match self {
            Transport::Tcp => String::new(),
            Transport::WebSocket => format!("\n[{side}.transport.websocket]\ntls = false\n"),
        }
    }
}

/// Which of rathole's two programs a configuration is for.
#[derive(Clone, Copy)]
enum Side {
    Server,
    Client,
}

impl Side {
    /// Its table in the configuration, and its flag (`--server`, `--client`).
    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

/// A rathole server and client, killed when dropped (client first).
pub struct Rathole {
    /// The server's port that leads to nginx.
    pub nginx: SocketAddr,
    /// The server's port that leads to the upload sink.
    pub sink: SocketAddr,
    pub client: Proc,
    pub server: Proc,
}

impl Rathole {
    /// Starts a server and a client with `transport` whose services lead to `nginx` and
    /// `sink`, and waits until each service leads there.
    pub fn start(
        binary: &Path,
        log_dir: &Path,
        transport: Transport,
        nginx: SocketAddr,
        sink: SocketAddr,
    ) -> Result<Rathole, String> {
        let tag = format!("rathole-{}", transport.config_type());
        let [control, nginx_port, sink_port] = free_ports()?;
        // Writes `<tag>-<side>.toml` and starts that side with it.
        let spawn = |side: Side, services| {
            let name = format!("{tag}-{}", side.name());
            let conf = log_dir.join(format!("{name}.toml"));
            fs::write(&conf, config(side, transport, control, services))
                .map_err(|e| format!("writing {}: {e}", conf.display()))?;
            let args = [format!("--{}", side.name()), conf.display().to_string()];
            Proc::spawn(&name, 1, binary, &args, log_dir)
        };
        let server = spawn(Side::Server, [("nginx", nginx_port), ("sink", sink_port)])?;
        let client = spawn(Side::Client, [("nginx", nginx), ("sink", sink)])?;
        let mut rathole = Rathole {
            nginx: nginx_port,
            sink: sink_port,
            client,
            server,
        };
        rathole.wait_ready()?;
        Ok(rathole)
    }

    /// Polls both services until they answer as nginx and the sink do (a `GET` with no
    /// body: a count of 0), or fails when a process exits or after [`READY`].
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        let mut last = String::new();
        while Instant::now() < deadline {
            for proc in [&mut self.server, &mut self.client] {
                if let Some(status) = proc.exited() {
                    return Err(format!("{proc} exited ({status})"));
                }
            }
            let small = small::check_body(http::get(self.nginx, SMALL_FILE, None), "rathole");
            let sink = http::get(self.sink, "/", None);
            match (small, sink) {
                (Ok(()), Ok((200, _))) => return Ok(()),
                (Err(e), _) => last = e,
                (_, Ok((status, _))) => last = format!("the sink answered {status}"),
                (_, Err(e)) => last = e,
            }
            thread::sleep(POLL_INTERVAL);
        }
        Err(format!(
            "rathole's services did not answer within {READY:?}; last: {last}; see {} and {}",
            self.server.log.display(),
            self.client.log.display()
        ))
    }
}

/// `target/bench-peers/bin/rathole`, or how to install it.
pub fn binary(target_dir: &Path) -> Result<PathBuf, String> {
    let path = target_dir.join(INSTALL_DIR).join("bin").join("rathole");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: `make bench` installs rathole {VERSION} there (scripts/bench.sh; \
             a benchmark peer, never a dependency of wsp)",
            path.display()
        ))
    }
}

/// `rathole 0.5.0`, from the `Build Version:` line of `rathole --version` (built from the
/// crate, it has no git version for the first line).
pub fn version(binary: &Path) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("running {} --version: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Build Version:"))
        .map(|version| format!("rathole {}", version.trim()))
        .ok_or_else(|| format!("no Build Version in `rathole --version`: {text:?}"))
}

/// One side's configuration: `[server]` listening on `control` and on a port per service,
/// or `[client]` connecting to `control` with a local address per service.
fn config(
    side: Side,
    transport: Transport,
    control: SocketAddr,
    services: [(&str, SocketAddr); 2],
) -> String {
    let name = side.name();
    let (control_key, service_key) = match side {
        Side::Server => ("bind_addr", "bind_addr"),
        Side::Client => ("remote_addr", "local_addr"),
    };
    let mut toml = format!(
        "# generated by the benchmark (examples/bench/rathole.rs)\n\
         [{name}]\n\
         {control_key} = \"{control}\"\n\
         default_token = \"{TOKEN}\"\n\
         \n\
         [{name}.transport]\n\
         type = \"{}\"\n\
         {}",
        transport.config_type(),
        transport.config_table(name)
    );
    for (service, addr) in services {
        toml.push_str(&format!(
            "\n[{name}.services.{service}]\n{service_key} = \"{addr}\"\n"
        ));
    }
    toml
}
