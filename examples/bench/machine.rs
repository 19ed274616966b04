//! The machine the figures were measured on, from `/proc`: they mean little without it.

use std::fs;

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub memory_gib: f64,
    /// `/proc/loadavg`'s 1-minute figure when the run started: others share the machine.
    pub load_at_start: String,
}

pub fn describe() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| "unknown kernel".to_string());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let load_at_start = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string());
    Machine {
        cpu,
        cores,
        kernel,
        memory_gib: memory_kib / (1024.0 * 1024.0),
        load_at_start,
    }
}

impl Machine {
    /// One line for the report.
    pub fn line(&self) -> String {
        format!(
            "{}, {} cores, {:.0} GiB, {}; load average {} at the start",
            self.cpu, self.cores, self.memory_gib, self.kernel, self.load_at_start
        )
    }
}
