//! Memory and thread counts of the server and the clients, read from `/proc/<pid>/status`
//! (`VmRSS`, `Threads`), once a second, with each process's name, generation and age, so
//! that processes can be compared at the same age across restarts.

use std::time::Duration;

use crate::procs::Proc;

/// One reading of one process.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Since the load started.
    pub at: Duration,
    pub name: String,
    pub generation: u32,
    /// Since the process was spawned.
    pub age: Duration,
    pub rss_kib: u64,
    pub threads: u64,
}

/// Reads `proc`, or `None` if it is gone or `/proc` does not say.
pub fn read(proc: &Proc, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.pid())).ok()?;
    Some(Sample {
        at,
        name: proc.name.clone(),
        generation: proc.generation,
        age: proc.age(),
        rss_kib: field(&status, "VmRSS:")?,
        threads: field(&status, "Threads:")?,
    })
}

fn field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The first sample of `name`'s generation `generation` at least `age` old.
pub fn at_age<'a>(
    samples: &'a [Sample],
    name: &str,
    generation: u32,
    age: Duration,
) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| s.name == name && s.generation == generation && s.age >= age)
}

/// The last sample of `name`'s generation `generation`.
pub fn last<'a>(samples: &'a [Sample], name: &str, generation: u32) -> Option<&'a Sample> {
    samples
        .iter()
        .rev()
        .find(|s| s.name == name && s.generation == generation)
}

/// The highest generation of `name` that reached `age`, and its sample at that age.
pub fn last_generation_at_age<'a>(
    samples: &'a [Sample],
    name: &str,
    age: Duration,
) -> Option<&'a Sample> {
    let generation = samples
        .iter()
        .filter(|s| s.name == name && s.age >= age)
        .map(|s| s.generation)
        .max()?;
    at_age(samples, name, generation, age)
}
