//! A target whose host name has several addresses (a Kubernetes headless Service, a DNS
//! round robin) gets a pool per address: every server behind the name has the client's
//! connections, an address leaving the answer has its pool drained, and one coming back
//! gets a pool again. The servers are the real binary on two loopback addresses with one
//! port; the client runs in this process, with a resolver whose answer the test changes.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use wsp::client::{Client, Resolve};
use wsp::config::ClientConfig;

use crate::support::*;

/// The name the test resolver answers for.
const NAME: &str = "wsp.test";

/// The test's DNS: what it answers for [`NAME`] (addresses, or an error), and how many
/// failures it has answered, so a test can see the client asking again.
struct Dns {
    answer: Mutex<io::Result<Vec<SocketAddr>>>,
    failures: AtomicUsize,
}

type Answer = Arc<Dns>;

impl Dns {
    fn new(answer: io::Result<Vec<SocketAddr>>) -> Answer {
        Arc::new(Dns {
            answer: Mutex::new(answer),
            failures: AtomicUsize::new(0),
        })
    }

    fn set(&self, answer: io::Result<Vec<SocketAddr>>) {
        *self.answer.lock() = answer;
    }

    /// Waits until the client has been answered `n` more failures.
    fn wait_failures(&self, n: usize) {
        let until = self.failures.load(Ordering::SeqCst) + n;
        let seen = poll(READY, || {
            (self.failures.load(Ordering::SeqCst) >= until).then_some(())
        });
        assert!(seen.is_some(), "the client did not ask {n} times more");
    }
}

/// Resolves [`NAME`] as `dns` says now, and nothing else.
fn resolver(dns: &Answer) -> Arc<dyn Resolve> {
    let dns = dns.clone();
    Arc::new(move |host: &str, _port: u16| {
        let found = match (host, &*dns.answer.lock()) {
            (NAME, Ok(addrs)) => Ok(addrs.clone()),
            (NAME, Err(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            _ => Err(io::Error::other(format!("{host}: unknown to the test"))),
        };
        if found.is_err() {
            dns.failures.fetch_add(1, Ordering::SeqCst);
        }
        found
    })
}

/// Connections `server` holds from the client (idle and busy).
fn registered(server: &Server) -> u64 {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let client = &status["clients"][0];
    client["idle"].as_u64().unwrap_or(0) + client["busy"].as_u64().unwrap_or(0)
}

/// Polls until `server` holds `wanted(count)` connections; panics naming `what`.
fn wait_registered(server: &Server, what: &str, wanted: impl Fn(u64) -> bool) {
    let reached = poll(READY, || wanted(registered(server)).then_some(()));
    assert!(
        reached.is_some(),
        "{what}: {} has {} connections",
        server.addr,
        registered(server)
    );
}

/// The client in this process, running until the returned handle's shutdown.
struct InProcess {
    stop: wsp::client::ShutdownHandle,
    run: Option<thread::JoinHandle<()>>,
}

impl InProcess {
    /// Resolving every `interval`, redialing within 200 ms.
    fn start(target: String, answer: &Answer, interval: Duration) -> InProcess {
        InProcess::with(vec![target], resolver(answer), interval)
    }

    fn with(targets: Vec<String>, resolver: Arc<dyn Resolve>, interval: Duration) -> InProcess {
        let config = ClientConfig {
            targets,
            pool_idle_size: 2,
            secret_key: SECRET.parse().expect("a key"),
            resolve_interval: interval,
            reconnect_max_delay: Duration::from_millis(200),
            ..ClientConfig::default()
        };
        let client = Client::with_resolver(config, resolver).expect("client set-up");
        let stop = client.shutdown_handle();
        let run = thread::spawn(move || client.run());
        InProcess {
            stop,
            run: Some(run),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(run) = self.run.take() {
            let _ = run.join();
        }
    }
}

#[test]
fn every_address_of_a_name_gets_a_pool_and_one_leaving_is_drained() {
    let upstream = upstream();
    let a = Server::start(&["--host", "127.0.0.1"]);
    let port = a.addr.port().to_string();
    let b = Server::start(&["--host", "127.0.0.2", "--port", &port]);
    let answer = Dns::new(Ok(vec![a.addr, b.addr]));
    let every = Duration::from_millis(100);
    let _client = InProcess::start(format!("ws://{NAME}:{port}/register"), &answer, every);
    for server in [&a, &b] {
        wait_registered(server, "both servers get the pool", |n| n >= 2);
        wait_relay_ready(server, &upstream);
        assert_hello(server, &upstream);
    }
    // b leaves the answer: its pool is drained, a's stays.
    answer.set(Ok(vec![a.addr]));
    wait_registered(&b, "the address gone is drained", |n| n == 0);
    assert!(registered(&a) >= 2, "a keeps its pool");
    assert_hello(&a, &upstream);
    // A name that cannot be resolved for a while keeps the pools it has.
    answer.set(Err(io::Error::other("DNS is down")));
    answer.wait_failures(5);
    assert!(registered(&a) >= 2, "a DNS failure drops nothing");
    assert_hello(&a, &upstream);
    // b comes back.
    answer.set(Ok(vec![b.addr, a.addr]));
    wait_registered(&b, "an address back gets a pool again", |n| n >= 2);
    assert_hello(&b, &upstream);
}

#[test]
fn a_name_that_does_not_resolve_yet_is_tried_again_until_it_does() {
    let upstream = upstream();
    let a = Server::start(&["--host", "127.0.0.1"]);
    let port = a.addr.port();
    let answer = Dns::new(Err(io::Error::other("not yet")));
    let minute = Duration::from_secs(60);
    let _client = InProcess::start(format!("ws://{NAME}:{port}/register"), &answer, minute);
    // Nothing can be dialed meanwhile...
    answer.wait_failures(3);
    assert_eq!(registered(&a), 0);
    // ...until the name resolves: tried again within reconnectmaxdelay (200 ms here),
    // not only every resolveinterval (set to a minute here).
    answer.set(Ok(vec![a.addr]));
    wait_registered(&a, "the name resolved at last", |n| n >= 2);
    assert_hello(&a, &upstream);
}

#[test]
fn a_resolver_that_never_answers_holds_up_neither_other_targets_nor_a_shutdown() {
    let upstream = upstream();
    let a = Server::start(&[]);
    // Looking up `hang.test` never returns (until the test ends).
    let (_release, hang) = crossbeam_channel::bounded::<()>(0);
    let resolver = move |host: &str, _port: u16| {
        let _ = hang.recv();
        Err(io::Error::other(format!("{host}: released")))
    };
    let targets = vec!["ws://hang.test:9/register".to_string(), a.register_url()];
    let every = Duration::from_millis(100);
    let mut client = InProcess::with(targets, Arc::new(resolver), every);
    wait_relay_ready(&a, &upstream);
    client.stop.shutdown();
    let run = client.run.take().expect("running");
    let stopped = poll(READY, || run.is_finished().then_some(()));
    assert!(stopped.is_some(), "the client never stopped");
}

/// The system's own resolver with `localhost`, on a machine where it has both
/// 127.0.0.1 and ::1: the real client binary registers to a server on each.
#[test]
fn localhost_on_both_loopbacks_gets_a_pool_on_each() {
    let both = ("localhost", 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
        .unwrap_or_default();
    let v6 = both.iter().any(|ip| ip.is_ipv6() && ip.is_loopback());
    let v4 = both.iter().any(|ip| ip.is_ipv4() && ip.is_loopback());
    if !(v4 && v6) {
        eprintln!("localhost resolves to {both:?} here, not to both loopbacks: nothing to test");
        return;
    }
    let upstream = upstream();
    let a = Server::start(&["--host", "127.0.0.1"]);
    let port = a.addr.port().to_string();
    let b = Server::start(&["--host", "::1", "--port", &port]);
    let target = format!("ws://localhost:{port}/register");
    let _client = start_client_raw(&["--target", &target, "--secret-key", SECRET]);
    for server in [&a, &b] {
        wait_registered(server, "each loopback gets the pool", |n| n >= 1);
        assert_hello(server, &upstream);
    }
}
