//! The two Linux system calls the soak needs that `std` does not offer: sending SIGTERM
//! (`Child::kill` only sends SIGKILL) and asking the kernel to SIGKILL a child when the
//! soak dies, so that even a soak killed by a signal leaves no server or client behind.

use std::io;
use std::os::raw::{c_int, c_ulong};
use std::os::unix::process::CommandExt;
use std::process::Command;

extern "C" {
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
}

const SIGKILL: c_int = 9;
const SIGTERM: c_int = 15;
const PR_SET_PDEATHSIG: c_int = 1;

/// `kill(pid, SIGTERM)` as a system call, not through kill(1), so that the moment it is
/// sent is known to the millisecond: requests under way at that moment are told apart
/// from those sent after it.
///
/// `pid` must be a child that the caller has not reaped yet (it holds its `Child`), so
/// that it cannot name another process.
pub fn send_sigterm(pid: u32) -> io::Result<()> {
    let pid = c_int::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { kill(pid, SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the process that `command` starts receive SIGKILL when the thread that started
/// it exits (the soak starts every child from its main thread).
pub fn kill_with_parent(command: &mut Command) -> &mut Command {
    let set_death_signal = || {
        // SAFETY: prctl(2) with PR_SET_PDEATHSIG reads one integer argument and touches
        // no memory; a system call is async-signal-safe, as `pre_exec` requires.
        if unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL as c_ulong) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the closure only makes one system call and allocates nothing.
    unsafe { command.pre_exec(set_death_signal) }
}
