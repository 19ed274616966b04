//! One supervised child process: started with its stderr and stdout in a log file, polled
//! for a line in that log with a deadline, stopped with SIGKILL or SIGTERM, and always
//! killed when dropped, so that a panic or an early return of the soak never leaves a
//! server or client running.
//!
//! Ctrl-C needs nothing more: the children are in the soak's process group, so the
//! terminal's SIGINT reaches them too. And should the soak itself be killed by a signal,
//! the kernel kills them ([`os::kill_with_parent`]).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::os;

/// How often a log file or a process is looked at while waiting for it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A child process that is killed when dropped.
pub struct Proc {
    /// Its name in reports: `test_api`, `server`, `soak-a`, `soak-b`.
    pub name: String,
    /// 1 for the first process of this name, +1 for each restart.
    pub generation: u32,
    /// When it was spawned.
    pub started: Instant,
    /// Where its stderr and stdout go.
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `binary` with `args`, its output going to `<log_dir>/<name>-<generation>.log`.
    pub fn spawn(
        name: &str,
        generation: u32,
        binary: &Path,
        args: &[String],
        log_dir: &Path,
    ) -> Result<Proc, String> {
        let log = log_dir.join(format!("{name}-{generation}.log"));
        let out = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("sharing {}: {e}", log.display()))?;
        let mut command = Command::new(binary);
        let child = os::kill_with_parent(&mut command)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Proc {
            name: name.to_string(),
            generation,
            started: Instant::now(),
            log,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long it has been running.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until its log has a line containing `needle` and returns that line; fails
    /// when the deadline passes or the process exits first.
    pub fn wait_log(&mut self, needle: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) before logging {needle:?}",
                    self
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not log {needle:?} within {within:?}", self));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `grace` for it to exit, then SIGKILL. Returns when the
    /// SIGTERM was sent, and whether SIGKILL was needed.
    pub fn terminate(&mut self, grace: Duration) -> (Instant, bool) {
        let sent_at = Instant::now();
        if let Err(e) = os::send_sigterm(self.pid()) {
            eprintln!("soak: SIGTERM to {self}: {e}; sending SIGKILL");
            self.kill();
            return (sent_at, true);
        }
        let deadline = sent_at + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return (sent_at, false);
            }
            thread::sleep(POLL_INTERVAL);
        }
        self.kill();
        (sent_at, true)
    }
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} #{} (pid {}, log {})",
            self.name,
            self.generation,
            self.child.id(),
            self.log.display()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
