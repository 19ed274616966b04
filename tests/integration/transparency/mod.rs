//! Transparency, differentially: every case is sent straight to the internal API and
//! through wsp (`/request`, and proxy mode), by a raw-socket caller on a kept-alive
//! connection, to a raw-socket upstream that answers exact bytes; then the answers and the
//! requests the upstream saw are compared (`compare.rs` holds the rules, and the
//! differences wsp makes on purpose). The direct path is the oracle: the harness does not
//! say what an answer should be, only that wsp must not change it.
//!
//! `HARNESS_SHOW=1 cargo test --test integration transparency -- --nocapture` prints every
//! outcome, to see what a case does on each route; `HARNESS_ONLY=<text>` keeps only the
//! cases whose name holds the text.
//!
//! The same cases run with nginx as the internal API (in front of the scripted upstream),
//! and a handful with curl as the caller.

mod caller;
mod cases;
mod compare;
mod curl;
mod nginx;

mod upstream;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::*;
use caller::{connect, exchange, Route};
use cases::Case;
use compare::{Again, Outcome};
use upstream::{Step, Upstream};
use wire::{Conn, End};

/// How long a quick case's answer may take; a proxy that hangs fails the case after it.
const QUICK_WAIT: Duration = Duration::from_secs(10);
/// How long a slow case's answer may take (the long-poll answers after 20 s).
const SLOW_WAIT: Duration = Duration::from_secs(45);
/// Cases run at once, each on its own connections.
const PARALLEL: usize = 4;
/// The routes through wsp, each compared with the direct one.
const TUNNELS: [Route; 2] = [Route::Request, Route::Proxy];

/// A scripted upstream, and wsp (a server and one client) in front of it.
struct Harness {
    upstream: Upstream,
    /// Where callers find the internal API: the upstream itself, or nginx before it.
    api: SocketAddr,
    server: Server,
    _client: Proc,
}

impl Harness {
    fn start(cases: &[Case]) -> Harness {
        let upstream = Upstream::start(scripts(cases));
        let api = upstream.addr;
        Harness::around(upstream, api)
    }

    /// wsp in front of `api`, which is `upstream` or a server relaying to it.
    fn around(upstream: Upstream, api: SocketAddr) -> Harness {
        let server = Server::start(&[]);
        let client = start_client(&server, &[]);
        let harness = Harness {
            upstream,
            api,
            server,
            _client: client,
        };
        harness.wait_ready();
        harness
    }

    fn wait_ready(&self) {
        let again = cases::again();
        poll(READY, || {
            let outcome = self.run(&again, Route::Request, QUICK_WAIT);
            matches!(outcome.answer, Ok(a) if a.status == 200).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "wsp never relayed; server log:\n{}",
                self.server.proc.log.lock()
            )
        });
    }

    /// One run of `case` by `route`, then a second request on the same connection.
    fn run(&self, case: &Case, route: Route, within: Duration) -> Outcome {
        static RUNS: AtomicU64 = AtomicU64::new(1);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let mut conn = match route {
            Route::Direct => connect(self.api),
            _ => connect(self.server.addr),
        };
        let head = case.call.head(route, self.api, run, case.name);
        let markers: Vec<&str> = case
            .script
            .iter()
            .filter_map(|s| match s {
                Step::AwaitCaller(text) => Some(*text),
                _ => None,
            })
            .collect();
        let upstream = &self.upstream;
        let mut seen = |body: &[u8]| {
            for text in markers.iter().filter(|t| contains(body, t.as_bytes())) {
                upstream.signal(run, text);
            }
        };
        let answer = exchange(&mut conn, &case.call, &head, within, &mut seen);
        let again = match &answer {
            Ok(a) if a.end == End::Framed => self.again(&mut conn, route),
            Ok(a) => Again::Ended(format!("{:?}", a.end)),
            Err(e) => Again::Ended(e.clone()),
        };
        Outcome {
            answer,
            // A case without a script is answered by nginx itself: nothing to wait for.
            seen: match case.script.is_empty() {
                true => None,
                false => upstream.seen(run, Duration::from_secs(5)),
            },
            missed: upstream.missed(run),
            again,
        }
    }

    /// The second request on `conn`: answered in full, the connection was in step.
    fn again(&self, conn: &mut Conn, route: Route) -> Again {
        let again = cases::again();
        let head = again.call.head(route, self.api, 0, again.name);
        match exchange(conn, &again.call, &head, QUICK_WAIT, &mut |_| {}) {
            Ok(a) if a.status == 200 && a.body == b"again" => Again::Answered,
            Ok(a) => Again::Failed(format!(
                "{} {:?}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(e) if e.contains("deadline passed") => Again::Stuck(e),
            Err(e) => Again::Failed(e),
        }
    }

    /// `case` direct and through every tunnel, all at once (a slow case costs its time
    /// once): each difference not made on purpose.
    fn check(&self, case: &Case, within: Duration) -> Vec<String> {
        let (direct, tunnels) = thread::scope(|scope| {
            let tunnels: Vec<_> = TUNNELS
                .map(|route| scope.spawn(move || (route, self.run(case, route, within))))
                .into_iter()
                .collect();
            let direct = self.run(case, Route::Direct, within);
            let tunnels: Vec<_> = tunnels
                .into_iter()
                .map(|t| t.join().expect("route"))
                .collect();
            (direct, tunnels)
        });
        let mut failures = Vec::new();
        if std::env::var_os("HARNESS_SHOW").is_some() {
            eprintln!("{} via Direct: {}", case.name, direct.summary());
            for (route, tunnel) in &tunnels {
                eprintln!("{} via {route:?}: {}", case.name, tunnel.summary());
            }
        }
        for (route, tunnel) in tunnels {
            let found = match case.refused {
                Some((status, words)) => compare::refusal_differences(&tunnel, status, words),
                None => differences(case, &direct, &tunnel),
            };
            failures.extend(
                found
                    .into_iter()
                    .map(|f| format!("{} via {route:?}: {f}", case.name)),
            );
        }
        failures
    }
    /// Checks every case, [`PARALLEL`] at a time; panics listing every failure.
    fn check_all(self: &Arc<Self>, mut cases: Vec<Case>, within: Duration) {
        if let Ok(only) = std::env::var("HARNESS_ONLY") {
            cases.retain(|c| c.name.contains(only.as_str()));
        }
        let queue = Arc::new(parking_lot::Mutex::new(cases));
        let workers: Vec<_> = (0..PARALLEL)
            .map(|_| {
                let (harness, queue) = (self.clone(), queue.clone());
                thread::spawn(move || {
                    let mut failures = Vec::new();
                    while let Some(case) = queue.lock().pop() {
                        failures.extend(harness.check(&case, within));
                    }
                    failures
                })
            })
            .collect();
        let mut failures: Vec<String> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        failures.sort();
        assert!(
            failures.is_empty(),
            "{} differences:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// What the tunnel's outcome of `case` shows that the direct one does not, on purpose
/// or not (see `compare.rs`).
fn differences(case: &Case, direct: &Outcome, tunnel: &Outcome) -> Vec<String> {
    let head_request = case.call.method == "HEAD";
    let mut found = compare::answer_differences(direct, tunnel, head_request);
    found.extend(compare::request_differences(direct, tunnel));
    let waited = tunnel.missed.iter();
    found.extend(waited.map(|t| format!("the caller never saw {t:?} while the upstream waited")));
    found.extend(compare::reuse_differences(direct, tunnel));
    found
}

/// The upstream's script per case name, the second request's among them.
fn scripts(cases: &[Case]) -> HashMap<String, Vec<Step>> {
    let again = cases::again();
    cases
        .iter()
        .chain([&again])
        .map(|c| (c.name.to_string(), c.script.clone()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn empty_answers_reach_a_kept_alive_caller() {
    // Issue 12's hang: an answer that is nothing but its head never left wsp's buffer.
    let names = [
        "200-empty",
        "201-created-empty",
        "202-delete-empty",
        "301-location-empty",
        "500-empty",
    ];
    let cases: Vec<Case> = cases::quick()
        .into_iter()
        .filter(|c| names.contains(&c.name))
        .collect();
    assert_eq!(cases.len(), names.len());
    Arc::new(Harness::start(&cases)).check_all(cases, QUICK_WAIT);
}

#[test]
fn quick_cases_are_relayed_as_sent() {
    let cases = cases::quick();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    Arc::new(Harness::start(&cases)).check_all(cases, QUICK_WAIT);
}

#[test]
fn trickled_and_streamed_answers_are_relayed_as_they_come() {
    let cases = cases::slow();
    Arc::new(Harness::start(&cases)).check_all(cases, SLOW_WAIT);
}

#[test]
fn a_long_poll_answered_after_20_s_is_relayed() {
    let case = cases::long_poll();
    Arc::new(Harness::start(std::slice::from_ref(&case))).check_all(vec![case], SLOW_WAIT);
}
