//! Connection pools: a server spreads requests over every registered client, keeps serving
//! when one of them dies, serves many requests at once beside slow ones, and closes idle
//! connections beyond a client's announced pool size.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

/// Requests sent one after the other to see how the server spreads them.
const SEQUENTIAL: usize = 40;
/// The least share of [`SEQUENTIAL`] that each of two clients must serve.
const FAIR_SHARE: usize = 5;

#[test]
fn sequential_requests_are_spread_over_both_clients() {
    let (upstream, server, a, b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let path = "/hello?spread";
    let destination = format!("http://{}{path}", upstream.addr());
    for i in 0..SEQUENTIAL {
        let reply = relay(&server, "GET", &destination, &[], None);
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
    }
    // A client logs a request after it sent the response head: poll until all are counted.
    let counted = poll(READY, || {
        let counts = (a.served(path), b.served(path));
        (counts.0 + counts.1 == SEQUENTIAL).then_some(counts)
    });
    let (by_a, by_b) = counted.unwrap_or_else(|| {
        panic!(
            "not all {SEQUENTIAL} requests logged: a {}, b {}",
            a.served(path),
            b.served(path)
        )
    });
    assert!(
        by_a >= FAIR_SHARE && by_b >= FAIR_SHARE,
        "a {by_a}, b {by_b}"
    );
}

#[test]
fn requests_go_to_the_remaining_client_after_one_dies() {
    let (upstream, server, a, b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let path = "/hello?after";
    let destination = format!("http://{}{path}", upstream.addr());
    drop(a);
    // Until the server has dropped client a's connections, a request may fail on one; it
    // must still get an HTTP answer. Then the requests must keep succeeding via client b.
    let mut in_a_row = 0;
    let mut failures = Vec::new();
    let recovered = poll(READY, || {
        let reply = relay(&server, "GET", &destination, &[], None);
        if reply.status == 200 {
            assert_eq!(reply.text(), "hello world");
            in_a_row += 1;
        } else {
            assert_eq!(reply.status, 526, "{}", reply.text());
            failures.push(reply.text());
            in_a_row = 0;
        }
        (in_a_row == 10).then_some(())
    });
    assert!(
        recovered.is_some(),
        "never 10 successes in a row: {failures:?}"
    );
    let all_by_b = poll(READY, || (b.served(path) >= 10).then_some(()));
    assert!(all_by_b.is_some(), "client b served {}", b.served(path));
}

/// wsp falls short here: a request may land on a connection of a client that died while
/// the connection was idle. The caller must never see that (PROTOCOL.md).
#[test]
fn no_request_fails_on_a_client_that_died_while_idle() {
    let (upstream, server, mut a, _b) = two_clients(&[], &["--pool-idle-size", "2"]);
    let destination = format!("http://{}/hello", upstream.addr());
    a.child.kill().expect("kill client a");
    a.child.wait().expect("wait for client a");
    let failures: Vec<String> = (0..10)
        .map(|_| relay(&server, "GET", &destination, &[], None))
        .filter(|r| r.status != 200)
        .map(|r| format!("{} {}", r.status, r.text().trim_end()))
        .collect();
    assert!(
        failures.is_empty(),
        "failed after client a died: {failures:?}; server log:\n{}",
        server.proc.log.lock()
    );
}

#[test]
fn many_concurrent_requests_pass_beside_slow_ones() {
    let (upstream, server, _a, _b) = two_clients(
        &["--timeout", "5000"],
        &["--pool-idle-size", "2", "--pool-max-size", "100"],
    );
    // Long enough that "still in flight" holds with a wide margin on a loaded machine.
    let slow = format!("http://{}/sleep?ms=6000", upstream.addr());
    let hello = format!("http://{}/hello", upstream.addr());
    thread::scope(|scope| {
        let started = Instant::now();
        let sleepers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| relay(&server, "GET", &slow, &[], None)))
            .collect();
        let callers: Vec<_> = (0..64)
            .map(|_| scope.spawn(|| relay(&server, "GET", &hello, &[], None)))
            .collect();
        for caller in callers {
            let reply = caller.join().expect("caller thread");
            assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
        }
        let fast = started.elapsed();
        assert!(
            sleepers.iter().all(|s| !s.is_finished()),
            "the 64 requests took {fast:?}: they waited behind the slow ones"
        );
        for sleeper in sleepers {
            let reply = sleeper.join().expect("sleeper thread");
            assert_eq!((reply.status, reply.text().as_str()), (200, "slept 6000"));
        }
    });
}

#[test]
fn idle_connections_beyond_the_pool_size_are_closed() {
    let upstream = upstream();
    let server = Server::start(&["--idle-timeout", "500", "--log-level", "debug"]);
    let _client = start_client(&server, &["--pool-idle-size", "1"]);
    wait_relay_ready(&server, &upstream);
    // Four requests at once make the client open connections beyond its idle size.
    let slow = format!("http://{}/sleep?ms=300", upstream.addr());
    thread::scope(|scope| {
        let sleepers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| relay(&server, "GET", &slow, &[], None).status))
            .collect();
        for sleeper in sleepers {
            assert_eq!(sleeper.join().expect("sleeper thread"), 200);
        }
    });
    let idle_since = Instant::now();
    server.proc.wait_log("idle beyond pool size");
    assert!(idle_since.elapsed() < Duration::from_secs(15));
    // The connections within the pool size stay: the next request needs no new one.
    let hello = format!("http://{}/hello", upstream.addr());
    assert_eq!(relay(&server, "GET", &hello, &[], None).status, 200);
}
