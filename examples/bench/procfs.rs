//! What the benchmark reads of a process in `/proc`: peak and current resident memory,
//! threads, CPU time, open files, the address it listens on; and the one thing it writes there,
//! `clear_refs`, to start a process's peak memory afresh at the beginning of a row.
//! Where `/proc`'s 10 ms ticks are too coarse, [`precise_cpu_secs`] reads the same CPU
//! time from the process's CPU-time clock instead.
//!
//! The server runs at log level `warn`, so it never logs the address it bound to port 0:
//! [`listening_addr`] finds it from the process's own sockets instead, which also needs no
//! port picked in advance (no race with other programs on a shared machine).

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::raw::{c_int, c_long};

extern "C" {
    fn sysconf(name: c_int) -> c_long;
}

/// `_SC_CLK_TCK` on Linux (glibc and musl).
const SC_CLK_TCK: c_int = 2;
/// State `LISTEN` in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// Memory, threads and CPU time of one process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    /// `VmHWM`: the most resident memory since the start or the last [`reset_peak`].
    pub peak_rss_kib: u64,
    /// `VmRSS`.
    pub rss_kib: u64,
    pub threads: u64,
    /// User plus system time, in seconds.
    pub cpu_secs: f64,
}

/// Reads [`Snapshot`] of `pid`.
pub fn snapshot(pid: u32) -> Result<Snapshot, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Snapshot {
        peak_rss_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
        cpu_secs: cpu_secs(pid)?,
    })
}

/// User plus system CPU time of `pid` so far, in seconds (`utime` + `stime` of stat(5)).
pub fn cpu_secs(pid: u32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / ticks_per_sec()),
        _ => Err(format!("unreadable /proc/{pid}/stat: {stat:?}")),
    }
}

/// The same sum as [`cpu_secs`] to the nanosecond, from the process's CPU-time clock
/// (`clock_getcpuclockid(3)`; it counts the threads that have ended too); [`cpu_secs`]
/// when the clock cannot be read. `/proc/<pid>/stat` counts in ticks of 10 ms, a sixth of
/// a fast server's 1,000 registrations.
pub fn precise_cpu_secs(pid: u32) -> Result<f64, String> {
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls write one value each, into variables we own.
    let read = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut now) == 0
    };
    if read {
        Ok(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
    } else {
        cpu_secs(pid)
    }
}

/// CPU time the whole machine spent busy (everything but idle and I/O wait) so far, in
/// seconds summed over all cores: the first line of `/proc/stat`. Compared with what the
/// processes measured used, it shows how much other work shared the machine.
pub fn machine_busy_secs() -> Result<f64, String> {
    let stat = fs::read_to_string("/proc/stat").map_err(|e| format!("reading /proc/stat: {e}"))?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal ...; guest time is already in user.
    if ticks.len() < 8 {
        return Err(format!("unreadable first line of /proc/stat: {stat:.80}"));
    }
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
    Ok(busy as f64 / ticks_per_sec())
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf(3) reads one integer and touches no memory of ours.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Sets `VmHWM` of `pid` back to its current `VmRSS` (Linux ≥ 4.0), so that the peak read
/// at the end of a row is that row's, not the start-up's or the readiness check's.
pub fn reset_peak(pid: u32) -> Result<(), String> {
    fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("resetting the peak RSS of pid {pid}: {e}"))
}

/// How many files `pid` has open: the entries of `/proc/<pid>/fd`.
pub fn open_files(pid: u32) -> Result<usize, String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .map_err(|e| format!("reading /proc/{pid}/fd: {e}"))
}

/// The IPv4 address on which `pid` has a listening TCP socket, if it has one yet.
pub fn listening_addr(pid: u32) -> Option<SocketAddr> {
    listening_addrs(pid).into_iter().next()
}

/// Every IPv4 address on which `pid` has a listening TCP socket.
pub fn listening_addrs(pid: u32) -> Vec<SocketAddr> {
    let inodes = socket_inodes(pid);
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != TCP_LISTEN || !inodes.contains(*inode) {
                return None;
            }
            parse_hex_addr(local)
        })
        .collect()
}

/// The inodes of the sockets `pid` has open (`socket:[INODE]` links in `/proc/<pid>/fd`).
fn socket_inodes(pid: u32) -> HashSet<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy();
            let inode = text.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_string())
        })
        .collect()
}

/// `0100007F:1F90` as `127.0.0.1:8080`: the kernel prints the address as the native-endian
/// number whose bytes in memory are the address in network order, and the port as a number.
fn parse_hex_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let addr = u32::from_str_radix(addr, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = Ipv4Addr::from(addr.to_ne_bytes());
    Some(SocketAddr::from((ip, port)))
}
