//! wsp patch: what the accept loop does when accepting a connection fails.
//!
//! Upstream ended the loop at the first error (and unwrapped a failed `try_clone`), so a
//! burst of connections past the file descriptor limit left the server listening on
//! nothing it would ever accept. With a listener that exists, every such error passes
//! (descriptors and memory come back as connections close): it is logged at most once a
//! second, with a count of the ones not logged, and the loop waits a little before trying
//! again, from 5 ms doubling to 1 s while failures go on, so that it neither spins on
//! EMFILE nor stays slow once it is over.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

/// The first wait after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line per this long.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// The accept loop's run of failures.
#[derive(Debug, Default)]
pub struct AcceptFailures {
    /// The wait after the last failure; `None` once a connection was set up.
    backoff: Option<Duration>,
    last_logged: Option<Instant>,
    /// Failures since the last log line.
    unlogged: u64,
}

impl AcceptFailures {
    /// Notes a failure of `doing`: logs it (at most once a second), then waits.
    pub fn note(&mut self, error: &io::Error, doing: &str) {
        let backoff = self.next_backoff();
        if self.should_log(Instant::now()) {
            let more = match std::mem::take(&mut self.unlogged) {
                0 => String::new(),
                n => format!(" ({n} more failures since the last report)"),
            };
            log::error!(
                "{doing} failed: {error}{more}; trying again in {} ms",
                backoff.as_millis()
            );
        } else {
            self.unlogged += 1;
        }
        thread::sleep(backoff);
    }

    /// A connection was set up: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.backoff = None;
    }

    fn next_backoff(&mut self) -> Duration {
        let backoff = self
            .backoff
            .map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
        self.backoff = Some(backoff);
        backoff
    }

    fn should_log(&mut self, now: Instant) -> bool {
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
        if due {
            self.last_logged = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_starts_over_after_a_success() {
        let mut failures = AcceptFailures::default();
        let waits: Vec<u128> = (0..10).map(|_| failures.next_backoff().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        failures.reset();
        assert_eq!(failures.next_backoff(), FIRST_BACKOFF);
    }

    #[test]
    fn logs_at_most_once_a_second() {
        let mut failures = AcceptFailures::default();
        let start = Instant::now();
        assert!(failures.should_log(start));
        assert!(!failures.should_log(start + Duration::from_millis(999)));
        assert!(failures.should_log(start + LOG_EVERY));
    }
}
