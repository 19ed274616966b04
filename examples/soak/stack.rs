//! The processes under test: the test API, one `wsp_server`, two `wsp_client`s, all on
//! 127.0.0.1 with ephemeral ports, and the faults done to them: a client killed and
//! started again with the same id, the server stopped and started again on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::binaries::Binaries;
use std::thread;
use std::time::{Duration, Instant};

use crate::procs::{Proc, POLL_INTERVAL};

/// How long a process may take to log that it listens, or the relay to answer.
pub const READY: Duration = Duration::from_secs(30);
/// How long a SIGTERMed server may take to exit before it gets SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(35);
/// The key the server and the clients share.
const SECRET: &str = "soak-secret";
/// `--pool-idle-size` of each client.
pub const POOL_IDLE_SIZE: usize = 10;
/// The clients' ids; each restart of a client reuses its id.
pub const CLIENT_IDS: [&str; 2] = ["soak-a", "soak-b"];

/// A server stop and start, in seconds since the load started.
#[derive(Clone, Debug)]
pub struct Restart {
    /// SIGTERM sent.
    pub term: Duration,
    /// The old process gone.
    pub gone: Duration,
    /// Whether it needed SIGKILL after [`TERM_GRACE`].
    pub forced: bool,
    /// The new process logged that it listens.
    pub ready: Duration,
}

/// Everything running, killed on drop (each [`Proc`] kills itself).
pub struct Stack {
    bins: Binaries,
    log_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub server_addr: SocketAddr,
    pub server: Proc,
    pub clients: Vec<Proc>,
    // Last field: dropped after the server and clients that call it.
    _api: Proc,
}

impl Stack {
    /// Starts the test API, the server and both clients, and waits for each to listen.
    pub fn start(bins: Binaries, log_dir: &Path) -> Result<Stack, String> {
        let args = vec!["--port".to_string(), "0".to_string()];
        let mut api = Proc::spawn("test_api", 1, &bins.test_api, &args, log_dir)?;
        let api_addr = listening_addr(&mut api)?;
        let mut server = Proc::spawn("server", 1, &bins.server, &server_args(0), log_dir)?;
        let server_addr = listening_addr(&mut server)?;
        let mut stack = Stack {
            bins,
            log_dir: log_dir.to_path_buf(),
            api_addr,
            server_addr,
            server,
            clients: Vec::new(),
            _api: api,
        };
        for index in 0..CLIENT_IDS.len() {
            let client = stack.spawn_client(index, 1)?;
            stack.clients.push(client);
        }
        Ok(stack)
    }

    fn spawn_client(&self, index: usize, generation: u32) -> Result<Proc, String> {
        let id = CLIENT_IDS[index];
        let args = [
            "--target",
            &format!("ws://{}/register", self.server_addr),
            "--id",
            id,
            "--secret-key",
            SECRET,
            "--pool-idle-size",
            &POOL_IDLE_SIZE.to_string(),
            "--log-level",
            "info",
        ]
        .map(String::from);
        Proc::spawn(id, generation, &self.bins.client, &args, &self.log_dir)
    }

    /// SIGKILLs client `index` and starts it again at once with the same id; returns the
    /// moment of the kill.
    /// Returns when SIGKILL was sent and when the process was reaped.
    pub fn kill_client(
        &mut self,
        index: usize,
        t0: Instant,
    ) -> Result<(Duration, Duration), String> {
        let at = t0.elapsed();
        self.clients[index].kill();
        let gone = t0.elapsed();
        self.restart_client(index)?;
        Ok((at, gone))
    }

    /// Starts client `index` again (after a kill or an unexpected exit).
    pub fn restart_client(&mut self, index: usize) -> Result<(), String> {
        let generation = self.clients[index].generation + 1;
        self.clients[index] = self.spawn_client(index, generation)?;
        Ok(())
    }

    /// SIGTERMs the server (SIGKILL after [`TERM_GRACE`]) and starts it again on the same
    /// port; the clients must find it again by themselves.
    pub fn restart_server(&mut self, t0: Instant) -> Result<Restart, String> {
        let (sent_at, forced) = self.server.terminate(TERM_GRACE);
        let term = sent_at - t0;
        let gone = t0.elapsed();
        self.respawn_server()?;
        Ok(Restart {
            term,
            gone,
            forced,
            ready: t0.elapsed(),
        })
    }

    /// Starts a new server on the old port, trying again while the port is still taken
    /// (the new one exits at once when it cannot bind), until [`READY`] has passed.
    pub fn respawn_server(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        let port = self.server_addr.port();
        let mut generation = self.server.generation;
        loop {
            generation += 1;
            let args = server_args(port);
            self.server = Proc::spawn(
                "server",
                generation,
                &self.bins.server,
                &args,
                &self.log_dir,
            )?;
            match self.server.wait_log("listening on http://", READY) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// Polls a relayed `GET /hello` until it answers 200, or fails after [`READY`].
    pub fn wait_relay(&self) -> Result<(), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let url = format!("http://{}/request", self.server_addr);
        let destination = format!("http://{}/hello", self.api_addr);
        let deadline = Instant::now() + READY;
        let mut last = String::new();
        while Instant::now() < deadline {
            match agent
                .get(&url)
                .header("X-PROXY-DESTINATION", &destination)
                .call()
            {
                Ok(r) if r.status() == 200 => return Ok(()),
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(POLL_INTERVAL);
        }
        Err(format!(
            "the relay did not answer 200 within {READY:?}; last: {last}"
        ))
    }
}

fn server_args(port: u16) -> Vec<String> {
    let port = port.to_string();
    [
        "--port",
        &port,
        "--secret-key",
        SECRET,
        "--log-level",
        "info",
    ]
    .map(String::from)
    .to_vec()
}

/// The address in the `listening on http://ADDR` line that the server and the test API log.
fn listening_addr(proc: &mut Proc) -> Result<SocketAddr, String> {
    let line = proc.wait_log("listening on http://", READY)?;
    line.rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| format!("no address in {line:?} logged by {proc}"))
}
