//! wsp patch: the time limits of one request head being read.
//!
//! A socket's read time-out bounds one silence, not a total: a client sending a byte just
//! before each time-out would hold its connection's thread forever (slow-loris). So the
//! head has a deadline, checked before every read of the socket, and the socket's read
//! time-out is kept at what is left of it, so that a blocked read ends in time too. Bytes
//! already buffered are taken without either: a head that arrived whole costs no clock
//! reading per byte.

use std::io::{Error as IoError, ErrorKind};
use std::time::{Duration, Instant};

use crate::client::ReadError;
use crate::limits::{HEADER_TIMEOUT, KEEP_ALIVE_TIMEOUT};

/// How late a read of the head may end after the head's deadline. The socket's
/// read time-out is set to what is left until the deadline, and set again when it is older
/// than this, so a blocked read ends by then; the deadline is also checked between bytes.
const REARM_INTERVAL: Duration = Duration::from_millis(500);

/// A request head being read: its size so far and its deadline.
pub(crate) struct Head {
    /// bytes read so far, CRLFs included
    pub(crate) len: usize,
    /// when the whole head must have arrived; `None` while a keep-alive connection waits
    /// for the first byte of its next request
    deadline: Option<Instant>,
    /// when the socket's read time-out was last set for this head
    armed_at: Option<Instant>,
}

impl Head {
    pub(crate) fn new(accepted_at: Option<Instant>) -> Head {
        Head {
            len: 0,
            deadline: accepted_at.map(|at| at + HEADER_TIMEOUT),
            armed_at: None,
        }
    }

    /// True while a keep-alive connection waits for its next request to start.
    pub(crate) fn is_idle(&self) -> bool {
        self.deadline.is_none()
    }

    /// The read time-out to set on the socket before the next read, if it needs one
    /// (`Ok(None)`: the one set last still holds): the idle time-out before the first
    /// byte, else what is left of the head's time.
    pub(crate) fn arm(&mut self) -> Result<Option<Duration>, ReadError> {
        let now = Instant::now();
        let timeout = match self.deadline {
            None if self.armed_at.is_some() => return Ok(None),
            None => KEEP_ALIVE_TIMEOUT,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(self.expired());
                }
                match self.armed_at {
                    Some(at) if now.duration_since(at) < REARM_INTERVAL => return Ok(None),
                    _ => left,
                }
            }
        };
        self.armed_at = Some(now);
        Ok(Some(timeout))
    }

    /// Counts a byte received; the first one of a keep-alive request starts its deadline.
    pub(crate) fn received(&mut self) {
        self.len += 1;
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + HEADER_TIMEOUT);
            self.armed_at = None;
        }
    }

    /// What running out of time means: nothing started yet is an idle connection.
    pub(crate) fn expired(&self) -> ReadError {
        if self.len == 0 {
            ReadError::Idle
        } else {
            ReadError::HeadTimedOut
        }
    }
}

/// Linux reports a socket's read time-out as `WouldBlock`, others as `TimedOut`.
pub(crate) fn is_timeout(err: &IoError) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
