//! The process's limit on open file descriptors (`RLIMIT_NOFILE`), which bounds how many
//! connections the server can hold: each is one descriptor.

use std::io;

/// Raises the soft limit to the hard one (as the Go runtime does at start), so that a
/// server run with a low default (1,024 on many systems) can hold as many connections as
/// the administrator allows, and returns the soft limit now in force (`u64::MAX`:
/// unlimited).
///
/// # Errors
/// The limit cannot be read. Failing to raise it is not an error: the current one is
/// returned.
pub fn raise_open_files() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit, read by the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(match limit.rlim_cur {
        libc::RLIM_INFINITY => u64::MAX,
        n => n,
    })
}

/// The default cap on connections open at once for a descriptor limit of `limit`: the
/// limit less an eighth of it (at least 32), kept for the listener, log and TLS files, the
/// idle watcher, and the connections refused with 503 for being past the cap.
pub fn default_max_connections(limit: u64) -> usize {
    let limit = limit.min(1 << 20);
    let reserved = (limit / 8).max(32);
    usize::try_from(limit.saturating_sub(reserved).max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_headroom_below_the_limit() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(64), 32);
        assert_eq!(default_max_connections(20_000), 17_500);
        assert_eq!(default_max_connections(10), 1);
        assert!(default_max_connections(u64::MAX) < 1 << 20);
    }

    #[test]
    fn the_limit_in_force_is_at_least_what_we_started_with() {
        let limit = raise_open_files().unwrap();
        assert!(limit >= 3, "{limit}");
    }
}
