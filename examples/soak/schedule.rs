//! The fault schedule, run on the main thread while the callers load the proxy: every
//! [`KILL_INTERVAL`] one client is SIGKILLed and started again (the two in turn), once, at
//! mid-run, the server is stopped and started again on the same port (no client is killed
//! from then until its clients had time to come back). Between faults it
//! samples the processes and watches for any that exits by itself, which is recorded as an
//! incident (and fails the soak) before the process is started again.

use std::thread;
use std::time::{Duration, Instant};

use crate::classify::{REJOIN_WINDOW, SETTLE};
use crate::sample::{self, Sample};
use crate::stack::{Restart, Stack};

/// Time between two client kills.
pub const KILL_INTERVAL: Duration = Duration::from_secs(20);
/// Time between two samples of memory and threads.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest pause of the schedule loop.
const TICK: Duration = Duration::from_millis(100);

/// A client SIGKILLed.
#[derive(Clone, Debug)]
pub struct Kill {
    /// Since the load started: when SIGKILL was sent.
    pub at: Duration,
    /// When the killed process had been reaped: its sockets are closed from then on.
    pub gone: Duration,
    pub client: String,
    /// The generation killed.
    pub generation: u32,
}

/// What the schedule did and saw.
#[derive(Default)]
pub struct Timeline {
    pub kills: Vec<Kill>,
    pub restart: Option<Restart>,
    pub samples: Vec<Sample>,
    /// Processes that exited without being told to, with when and how.
    pub incidents: Vec<String>,
}

/// When the server is stopped: in the middle of the run, halfway between two client
/// kills, so that the two kinds of fault do not overlap.
pub fn server_stop_time(duration: Duration) -> Duration {
    let interval = KILL_INTERVAL.as_secs();
    let kills_before = (duration.as_secs() / 2) / interval;
    Duration::from_secs(kills_before * interval + interval / 2)
}

/// Runs the schedule until `duration` has passed since `t0`, recording into `timeline`.
pub fn run(
    stack: &mut Stack,
    t0: Instant,
    duration: Duration,
    timeline: &mut Timeline,
) -> Result<(), String> {
    let stop_server_at = server_stop_time(duration);
    let mut next_kill = KILL_INTERVAL;
    let mut next_sample = Duration::ZERO;
    let mut victim = 0;
    while t0.elapsed() < duration {
        watch(stack, t0, timeline)?;
        let now = t0.elapsed();
        if timeline.restart.is_none() && now >= stop_server_at {
            timeline.restart = Some(stack.restart_server(t0)?);
            // Kills that fell due while the server was away are skipped, not bunched up,
            // and none comes before the clients had time to register again and settle,
            // so that each failure has one fault to blame.
            let quiet_until = t0.elapsed() + REJOIN_WINDOW + SETTLE;
            while next_kill < quiet_until {
                next_kill += KILL_INTERVAL;
            }
        } else if now >= next_kill {
            let killed = &stack.clients[victim];
            let (client, generation) = (killed.name.clone(), killed.generation);
            let (at, gone) = stack.kill_client(victim, t0)?;
            timeline.kills.push(Kill {
                at,
                gone,
                client,
                generation,
            });
            victim = (victim + 1) % stack.clients.len();
            next_kill += KILL_INTERVAL;
        }
        if now >= next_sample {
            take_samples(stack, t0, timeline);
            next_sample += SAMPLE_INTERVAL;
        }
        let mut next = next_kill.min(next_sample).min(duration);
        if timeline.restart.is_none() {
            next = next.min(stop_server_at);
        }
        thread::sleep(next.saturating_sub(t0.elapsed()).min(TICK));
    }
    take_samples(stack, t0, timeline);
    Ok(())
}

fn take_samples(stack: &Stack, t0: Instant, timeline: &mut Timeline) {
    let at = t0.elapsed();
    let procs = std::iter::once(&stack.server).chain(&stack.clients);
    timeline
        .samples
        .extend(procs.filter_map(|p| sample::read(p, at)));
}

/// Records and replaces any server or client that exited by itself.
fn watch(stack: &mut Stack, t0: Instant, timeline: &mut Timeline) -> Result<(), String> {
    if let Some(status) = stack.server.exited() {
        let at = t0.elapsed().as_secs_f64();
        let what = format!("t={at:.1} s: {} exited by itself ({status})", stack.server);
        timeline.incidents.push(what);
        stack.respawn_server()?;
    }
    for index in 0..stack.clients.len() {
        if let Some(status) = stack.clients[index].exited() {
            let at = t0.elapsed().as_secs_f64();
            let what = format!(
                "t={at:.1} s: {} exited by itself ({status})",
                stack.clients[index]
            );
            timeline.incidents.push(what);
            stack.restart_client(index)?;
        }
    }
    Ok(())
}
