//! The soak's result as markdown: the summary table, the requests by kind, the failures by
//! class and outcome, every unexplained failure with where it stood relative to the
//! faults, and memory and threads of the server and clients.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::classify::{self, Class, REJOIN_WINDOW, SETTLE};
use crate::load::{Kind, Outcome, Record, BYTES_LEN};
use crate::sample::{self, Sample};
use crate::schedule::{Timeline, KILL_INTERVAL};
use crate::stack::{CLIENT_IDS, POOL_IDLE_SIZE};

/// Processes are compared at this age: the server after the warm-up, each client at the
/// same age in its first and in its last generation.
pub const SERVER_AGE: Duration = Duration::from_secs(10);
pub const CLIENT_AGE: Duration = Duration::from_secs(15);
/// Most unexplained failures listed one by one.
const MAX_LISTED: usize = 200;

/// What the soak was asked to do.
pub struct Setup {
    pub duration: Duration,
    pub callers: usize,
}

/// The report, and how many failures nothing explains.
pub struct Report {
    pub markdown: String,
    pub unexplained: usize,
}

/// A request with its class.
struct Classified<'a> {
    record: &'a Record,
    class: Class,
}

pub fn build(setup: &Setup, records: &[Record], timeline: &Timeline) -> Report {
    let classified: Vec<Classified> = records
        .iter()
        .map(|record| Classified {
            record,
            class: classify::classify(record, timeline),
        })
        .collect();
    let mut md = String::new();
    summary(&mut md, setup, &classified, timeline);
    by_kind(&mut md, &classified);
    failures(&mut md, &classified);
    let unexplained = unexplained(&mut md, &classified, timeline);
    incidents(&mut md, timeline);
    memory(&mut md, &timeline.samples, timeline);
    Report {
        markdown: md,
        unexplained: unexplained + timeline.incidents.len(),
    }
}

fn summary(md: &mut String, setup: &Setup, all: &[Classified], timeline: &Timeline) {
    let count = |class| all.iter().filter(|c| c.class == class).count();
    let secs = setup.duration.as_secs_f64();
    let _ = writeln!(
        md,
        "Soak: {secs:.0} s of load, {} callers, 2 clients (`--pool-idle-size {POOL_IDLE_SIZE}`).\n",
        setup.callers
    );
    let _ = writeln!(md, "| measure | value |\n|---|---|");
    row(
        md,
        "requests",
        format!("{} ({:.0}/s)", all.len(), all.len() as f64 / secs),
    );
    row(md, "ok", count(Class::Ok).to_string());
    row(md, "failed", (all.len() - count(Class::Ok)).to_string());
    row(
        md,
        "(a) in flight on a killed client, not retryable",
        unsafe_detail(all),
    );
    row(md, "(b) server down or restarting", restart_detail(all));
    row(
        md,
        "(c) other failures (target 0)",
        count(Class::Other).to_string(),
    );
    row(
        md,
        "client kills (SIGKILL + restart)",
        kills_detail(timeline),
    );
    row(
        md,
        "server restart (SIGTERM, same port)",
        restart_timing(all, timeline),
    );
    let ok: Vec<&Record> = all
        .iter()
        .filter(|c| c.class == Class::Ok)
        .map(|c| c.record)
        .collect();
    row(
        md,
        "latency of ok requests: p50 / p99 / max",
        latencies(&ok),
    );
    let steady: Vec<&Record> = ok
        .iter()
        .copied()
        .filter(|r| !classify::near_fault(r, timeline))
        .collect();
    let label = format!(
        "latency of ok requests not under way within {} s of a fault ({} of them)",
        SETTLE.as_secs(),
        steady.len()
    );
    row(md, &label, latencies(&steady));
    md.push('\n');
}

fn row(md: &mut String, measure: &str, value: String) {
    let _ = writeln!(md, "| {measure} | {value} |");
}

fn unsafe_detail(all: &[Classified]) -> String {
    let unsafe_ones = all.iter().filter(|c| c.class == Class::UnsafeInFlight);
    let cut = unsafe_ones
        .clone()
        .filter(|c| matches!(c.record.outcome, Outcome::BodyCut(_)))
        .count();
    let total = unsafe_ones.count();
    format!(
        "{total} ({} POST, {cut} response cut after its head)",
        total - cut
    )
}

fn restart_detail(all: &[Classified]) -> String {
    let ones: Vec<&Record> = all
        .iter()
        .filter(|c| c.class == Class::ServerRestart)
        .map(|c| c.record)
        .collect();
    let refused = ones
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Transport { connect: true, .. }))
        .count();
    let other = ones
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Transport { connect: false, .. }))
        .count();
    let status = ones.len() - refused - other;
    format!(
        "{} ({refused} connection refused, {other} other transport errors, {status} 526)",
        ones.len()
    )
}

fn kills_detail(timeline: &Timeline) -> String {
    let at: Vec<String> = timeline
        .kills
        .iter()
        .map(|k| format!("{:.0}", k.at.as_secs_f64()))
        .collect();
    format!(
        "{}, every {} s, the two clients in turn, at t = {} s",
        timeline.kills.len(),
        KILL_INTERVAL.as_secs(),
        at.join(", ")
    )
}

fn restart_timing(all: &[Classified], timeline: &Timeline) -> String {
    let Some(r) = &timeline.restart else {
        return "none (the run ended first)".into();
    };
    let since_ready = |t: Option<Duration>| match t {
        Some(t) if t >= r.ready => format!("{:.2} s after", (t - r.ready).as_secs_f64()),
        Some(t) => format!("{:.2} s before", (r.ready - t).as_secs_f64()),
        None => "none".into(),
    };
    let first_ok = all
        .iter()
        .filter(|c| c.class == Class::Ok && c.record.start >= r.gone)
        .map(|c| c.record.end())
        .min();
    let last_failure = all
        .iter()
        .filter(|c| c.class == Class::ServerRestart)
        .map(|c| c.record.end())
        .max();
    format!(
        "SIGTERM at t={:.1} s; old server gone {:.2} s later{}; new one listening {:.2} s \
         after that; first ok answer {} it listened, last (b) failure {} it (the (b) window \
         ends {} s after it)",
        r.term.as_secs_f64(),
        (r.gone - r.term).as_secs_f64(),
        if r.forced { " (needed SIGKILL)" } else { "" },
        (r.ready - r.gone).as_secs_f64(),
        since_ready(first_ok),
        since_ready(last_failure),
        REJOIN_WINDOW.as_secs()
    )
}

/// `p50 / p99 / max` in ms.
fn latencies(records: &[&Record]) -> String {
    let mut ms: Vec<f64> = records
        .iter()
        .map(|r| r.latency.as_secs_f64() * 1e3)
        .collect();
    if ms.is_empty() {
        return "-".into();
    }
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "{:.1} / {:.1} / {:.1} ms",
        rank(0.50),
        rank(0.99),
        ms[ms.len() - 1]
    )
}

fn by_kind(md: &mut String, all: &[Classified]) {
    let _ = writeln!(
        md,
        "| request | sent | ok | (a) | (b) | (c) | ok latency p50 / p99 / max |\n|---|---|---|---|---|---|---|"
    );
    for kind in Kind::ALL {
        let of_kind: Vec<&Classified> = all.iter().filter(|c| c.record.kind == kind).collect();
        let count = |class| of_kind.iter().filter(|c| c.class == class).count();
        let ok: Vec<&Record> = of_kind
            .iter()
            .filter(|c| c.class == Class::Ok)
            .map(|c| c.record)
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            kind.describe(),
            of_kind.len(),
            ok.len(),
            count(Class::UnsafeInFlight),
            count(Class::ServerRestart),
            count(Class::Other),
            latencies(&ok)
        );
    }
    let _ = writeln!(
        md,
        "\nEvery answer is checked: `/hello` and `/sleep` their text, `/post` the echo of the \
         body sent, `/bytes` all {BYTES_LEN} bytes against the test API's pattern.\n"
    );
}

fn failures(md: &mut String, all: &[Classified]) {
    let mut groups: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for c in all.iter().filter(|c| c.class != Class::Ok) {
        let key = (class_name(c.class), c.record.outcome.describe());
        *groups.entry(key).or_default() += 1;
    }
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(md, "| class | outcome | count |\n|---|---|---|");
    for ((class, outcome), n) in groups {
        let _ = writeln!(md, "| {class} | {} | {n} |", cell(&outcome));
    }
    md.push('\n');
}

pub fn class_name(class: Class) -> &'static str {
    match class {
        Class::Ok => "ok",
        Class::UnsafeInFlight => "(a)",
        Class::ServerRestart => "(b)",
        Class::Other => "(c)",
    }
}

/// Lists every (c) failure; returns how many there were.
fn unexplained(md: &mut String, all: &[Classified], timeline: &Timeline) -> usize {
    let others: Vec<&Record> = all
        .iter()
        .filter(|c| c.class == Class::Other)
        .map(|c| c.record)
        .collect();
    if others.is_empty() {
        return 0;
    }
    let _ = writeln!(
        md,
        "(c) failures ({}):\n\n| t (s) | request | latency | outcome | relative to the faults |\n|---|---|---|---|---|",
        others.len()
    );
    let mut sorted = others.clone();
    sorted.sort_by_key(|r| r.start);
    for r in sorted.iter().take(MAX_LISTED) {
        let _ = writeln!(
            md,
            "| {:.3} | {} | {:.0} ms | {} | {} |",
            r.start.as_secs_f64(),
            r.kind.describe(),
            r.latency.as_secs_f64() * 1e3,
            cell(&r.outcome.describe()),
            classify::relative_to_faults(r, timeline)
        );
    }
    if sorted.len() > MAX_LISTED {
        let _ = writeln!(md, "\n({} more not listed)", sorted.len() - MAX_LISTED);
    }
    md.push('\n');
    others.len()
}

fn incidents(md: &mut String, timeline: &Timeline) {
    if timeline.incidents.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Processes that exited by themselves (each fails the soak):\n"
    );
    for incident in &timeline.incidents {
        let _ = writeln!(md, "- {incident}");
    }
    md.push('\n');
}

fn memory(md: &mut String, samples: &[Sample], timeline: &Timeline) {
    let _ = writeln!(
        md,
        "| process | when | age | RSS (VmRSS) | threads |\n|---|---|---|---|---|"
    );
    let mut line = |what: &str, s: Option<&Sample>| {
        let _ = match s {
            Some(s) => writeln!(
                md,
                "| {} #{} | {what} (t={:.0} s) | {:.0} s | {:.1} MiB | {} |",
                s.name,
                s.generation,
                s.at.as_secs_f64(),
                s.age.as_secs_f64(),
                s.rss_kib as f64 / 1024.0,
                s.threads
            ),
            None => writeln!(md, "| - | {what} | - | not measured | - |"),
        };
    };
    let warm = format!("after {} s", SERVER_AGE.as_secs());
    line(&warm, sample::at_age(samples, "server", 1, SERVER_AGE));
    let before_stop = if timeline.restart.is_some() {
        "just before SIGTERM"
    } else {
        "end of run"
    };
    line(before_stop, sample::last(samples, "server", 1));
    if let Some(last) = samples
        .iter()
        .filter(|s| s.name == "server")
        .map(|s| s.generation)
        .max()
    {
        if last > 1 {
            line(&warm, sample::at_age(samples, "server", last, SERVER_AGE));
            line("end of run", sample::last(samples, "server", last));
        }
    }
    let age = format!("at age {} s", CLIENT_AGE.as_secs());
    for id in CLIENT_IDS {
        line(
            &format!("first generation {age}"),
            sample::at_age(samples, id, 1, CLIENT_AGE),
        );
        let last = sample::last_generation_at_age(samples, id, CLIENT_AGE);
        line(&format!("last generation {age}"), last);
    }
    md.push('\n');
}

/// Text made safe for a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
