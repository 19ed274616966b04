//! SIGHUP, on the server and on the client: the configuration file is read again and put
//! in force for new requests, while registered connections stay and requests in flight
//! finish; a file that does not load is refused in one line, and the running
//! configuration stays. On the client, targets removed are drained and new ones dialed.

use std::io::Read;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::config::ConfigFile;
use crate::server_tls::raw_tls;
use crate::support::tls::Pki;
use crate::support::{
    get, metric, poll, read_pattern, relay, signal, start_client_raw, upstream, wait_relay_ready,
    Proc, Server, Stack, READY,
};

fn status(server: &Server) -> Value {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

#[test]
fn sighup_applies_a_new_rule_while_clients_stay_and_a_download_finishes() {
    let config = ConfigFile::new("wsp_server.cfg", "timeout: 1000\n");
    let stack = Stack::start(&["--config", config.path()], &[]);
    let (server, hello) = (&stack.server, stack.url("/hello"));
    let since = status(server)["clients"][0]["connected_since"].clone();
    assert!(since.as_u64().is_some(), "{since}");
    // 100 MiB, held in flight (after its first MiB) until the reload is done.
    let size: u64 = 100 << 20;
    let big = stack.url(&format!("/bytes?n={size}"));
    let (in_flight, started) = channel();
    let (go_on, resume) = channel::<()>();
    let download = held_download(server, big, in_flight, resume);
    started.recv_timeout(READY).expect("the download started");
    // The new file refuses /hello.
    let rules = "timeout: 1000\nblacklist:\n - url: \"/hello$\"\n";
    std::fs::write(config.path(), rules).expect("rewrite the file");
    signal(server.proc.pid(), "HUP");
    let refused = poll(Duration::from_secs(10), || {
        let reply = relay(server, "GET", &hello, &[], None);
        (reply.status == 526 && reply.text().contains("blacklist")).then_some(())
    });
    assert!(refused.is_some(), "the new rule never applied");
    go_on.send(()).expect("resume");
    let read = download.join().expect("download thread");
    assert_eq!(read, size, "the download in flight finished whole");
    assert_eq!(status(server)["clients"][0]["connected_since"], since);
    assert_eq!(
        metric(server, "wsp_config_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
}

/// Downloads `url` (the test API's pattern) through `server` on a thread of its own,
/// telling `in_flight` after the first MiB and waiting for `resume` to go on. The thread
/// returns the bytes read, checked against the pattern.
fn held_download(
    server: &Server,
    url: String,
    in_flight: Sender<()>,
    resume: Receiver<()>,
) -> thread::JoinHandle<u64> {
    let server_addr = server.addr;
    thread::spawn(move || {
        let response = crate::support::caller()
            .get(format!("http://{server_addr}/request"))
            .header("X-PROXY-DESTINATION", &url)
            .call()
            .expect("download");
        let held = Held {
            inner: response.into_body().into_reader(),
            read: 0,
            in_flight: Some(in_flight),
            resume,
        };
        read_pattern(held)
    })
}

/// A body that, once its first MiB is read, says so and waits to be told to go on.
struct Held<R> {
    inner: R,
    read: u64,
    in_flight: Option<Sender<()>>,
    resume: Receiver<()>,
}

impl<R: Read> Read for Held<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read >= 1 << 20 {
            if let Some(tell) = self.in_flight.take() {
                let _ = tell.send(());
                let _ = self.resume.recv_timeout(Duration::from_secs(30));
            }
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn a_file_that_does_not_load_is_refused_and_the_running_config_stays() {
    let config = ConfigFile::new("wsp_server.cfg", "timeout: 1000\n");
    let stack = Stack::start(&["--config", config.path()], &[]);
    let (server, hello) = (&stack.server, stack.url("/hello"));
    std::fs::write(config.path(), "timeout: [not a number\n").expect("rewrite");
    signal(server.proc.pid(), "HUP");
    let line = server.proc.wait_log("reload refused");
    assert!(
        line.contains("wsp_server.cfg"),
        "the line names the file: {line}"
    );
    assert_eq!(relay(server, "GET", &hello, &[], None).status, 200);
    assert_eq!(
        metric(server, "wsp_config_reloads_total{result=\"error\"}"),
        Some(1.0)
    );
}

/// Whether `GET /status` over TLS to `server`, trusting `pki`'s CA only, answers 200.
fn status_over_tls(server: &Server, pki: &Pki) -> bool {
    use std::io::Write;
    let mut tls = raw_tls(server.addr, pki);
    let head = b"GET /status HTTP/1.1\r\nHost: wsp\r\nConnection: close\r\n\r\n";
    if tls.write_all(head).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[test]
fn sighup_rotates_the_certificate_for_new_handshakes() {
    let (old, new) = (Pki::new(), Pki::new());
    let read = |path: &str| std::fs::read_to_string(path).expect("PEM file");
    let cert = ConfigFile::new("cert.pem", &read(old.cert_path()));
    let key = ConfigFile::new("key.pem", &read(old.key_path()));
    let server = Server::start(&["--cert-file", cert.path(), "--key-file", key.path()]);
    server.proc.wait_log("listening on https://");
    assert!(
        status_over_tls(&server, &old),
        "the first certificate is served"
    );
    assert!(
        !status_over_tls(&server, &new),
        "a CA that signed nothing here is refused"
    );
    // A renewal writes the new pair over the old files, then reloads.
    std::fs::write(cert.path(), read(new.cert_path())).expect("new certificate");
    std::fs::write(key.path(), read(new.key_path())).expect("new key");
    signal(server.proc.pid(), "HUP");
    let rotated = poll(Duration::from_secs(10), || {
        status_over_tls(&server, &new).then_some(())
    });
    assert!(
        rotated.is_some(),
        "new handshakes never got the new certificate"
    );
    assert!(
        !status_over_tls(&server, &old),
        "the old certificate is gone"
    );
    // A broken key refuses the reload, and the new pair stays in force.
    std::fs::write(key.path(), "garbage\n").expect("broken key");
    signal(server.proc.pid(), "HUP");
    let line = server.proc.wait_log("reload refused");
    assert!(line.contains("keyfile"), "{line}");
    assert!(status_over_tls(&server, &new));
}

/// Connections `server` holds from its first client: (idle, busy).
fn connections(server: &Server) -> (u64, u64) {
    let client = &status(server)["clients"][0];
    let count = |state: &str| client[state].as_u64().unwrap_or(0);
    (count("idle"), count("busy"))
}

/// A client configuration file with the test secret, registering to `targets`.
fn client_file(targets: &[&Server], rest: &str) -> String {
    let mut text = format!(
        "secretkey : {}\npoolidlesize : 2\ntargets :\n",
        crate::support::SECRET
    );
    for server in targets {
        text += &format!(" - {}\n", server.register_url());
    }
    text + rest
}

#[test]
fn client_sighup_moves_its_pools_to_new_targets_and_finishes_what_is_in_flight() {
    let upstream = upstream();
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    let file = ConfigFile::new("wsp_client.cfg", &client_file(&[&a], ""));
    let client = start_client_raw(&["--config", file.path()]);
    wait_relay_ready(&a, &upstream);
    let size: u64 = 100 << 20;
    let big = format!("http://{}/bytes?n={size}", upstream.addr());
    let (in_flight, started) = channel();
    let (go_on, resume) = channel::<()>();
    let download = held_download(&a, big, in_flight, resume);
    started.recv_timeout(READY).expect("the download started");
    // a leaves the targets, b comes in.
    std::fs::write(file.path(), client_file(&[&b], "")).expect("rewrite the file");
    signal(client.pid(), "HUP");
    client.wait_log("configuration reloaded");
    wait_relay_ready(&b, &upstream);
    // a's idle connections close; the one carrying the download stays until it is done.
    let drained = poll(READY, || (connections(&a) == (0, 1)).then_some(()));
    assert!(drained.is_some(), "a's pool: {:?}", connections(&a));
    go_on.send(()).expect("resume");
    let read = download.join().expect("download thread");
    assert_eq!(read, size, "the download in flight finished whole");
    let closed = poll(READY, || (connections(&a) == (0, 0)).then_some(()));
    assert!(
        closed.is_some(),
        "a's last connection: {:?}",
        connections(&a)
    );
}

/// The client's log lines holding `needle`.
fn logged(client: &Proc, needle: &str) -> usize {
    client
        .log
        .lock()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn client_sighup_applies_rules_and_log_level_and_refuses_a_broken_file() {
    let upstream = upstream();
    let server = Server::start(&[]);
    let file = ConfigFile::new("wsp_client.cfg", &client_file(&[&server], ""));
    let client = start_client_raw(&["--config", file.path()]);
    wait_relay_ready(&server, &upstream);
    let since = status(&server)["clients"][0]["connected_since"].clone();
    let url = |path: &str| format!("http://{}{path}", upstream.addr());
    // At info, a request relayed is not logged by the client; at debug it is.
    assert_eq!(
        relay(&server, "GET", &url("/hello?before"), &[], None).status,
        200
    );
    let rest = "loglevel : debug\nblacklist :\n - url : \"/hello$\"\n";
    std::fs::write(file.path(), client_file(&[&server], rest)).expect("rewrite the file");
    signal(client.pid(), "HUP");
    client.wait_log("configuration reloaded");
    let refused = relay(&server, "GET", &url("/hello"), &[], None);
    assert_eq!(refused.status, 527, "{}", refused.text());
    assert!(refused.text().contains("blacklist"), "{}", refused.text());
    assert_eq!(
        relay(&server, "GET", &url("/hello?after"), &[], None).status,
        200
    );
    client.wait_log("/hello?after: 200");
    assert_eq!(
        logged(&client, "/hello?before"),
        0,
        "info did not log requests"
    );
    assert_eq!(status(&server)["clients"][0]["connected_since"], since);
    // A file that does not load: refused in one line naming it, the rules stay.
    std::fs::write(file.path(), "poolidlesize : [\n").expect("break the file");
    signal(client.pid(), "HUP");
    let line = client.wait_log("reload refused");
    assert!(line.contains("wsp_client.cfg"), "names the file: {line}");
    assert_eq!(relay(&server, "GET", &url("/hello"), &[], None).status, 527);
    assert_eq!(logged(&client, "configuration reloaded"), 1);
}

#[test]
fn server_sighup_changes_the_log_level() {
    let config = ConfigFile::new("wsp_server.cfg", "loglevel : info\n");
    let stack = Stack::start(&["--config", config.path()], &[]);
    let server = &stack.server;
    let reloads = |n: f64| {
        let ok = "wsp_config_reloads_total{result=\"ok\"}";
        let done = poll(READY, || (metric(server, ok) == Some(n)).then_some(()));
        assert!(done.is_some(), "reload {n} never counted");
    };
    assert_eq!(stack.relay("GET", "/hello?first", &[], None).status, 200);
    server.proc.wait_log("/hello?first");
    std::fs::write(config.path(), "loglevel : warn\n").expect("rewrite the file");
    signal(server.proc.pid(), "HUP");
    reloads(1.0);
    assert_eq!(stack.relay("GET", "/hello?quiet", &[], None).status, 200);
    std::fs::write(config.path(), "loglevel : info\n").expect("rewrite the file");
    signal(server.proc.pid(), "HUP");
    reloads(2.0);
    assert_eq!(stack.relay("GET", "/hello?again", &[], None).status, 200);
    server.proc.wait_log("/hello?again");
    assert_eq!(
        logged(&server.proc, "/hello?quiet"),
        0,
        "warn hid the access log"
    );
}

#[test]
fn client_sighup_reads_its_ca_file_again() {
    let (pki, other) = (Pki::new(), Pki::new());
    let upstream = upstream();
    let server = Server::start(&[]);
    let front = crate::support::tls::TlsFront::start(&pki, server.addr);
    let read = |path: &str| std::fs::read_to_string(path).expect("PEM file");
    let ca = ConfigFile::new("ca.pem", &read(other.ca_path()));
    let target = format!("wss://127.0.0.1:{}/register", front.addr.port());
    let text = format!(
        "secretkey : {}\ntargets :\n - {target}\ncafile : {}\n",
        crate::support::SECRET,
        ca.path()
    );
    let file = ConfigFile::new("wsp_client.cfg", &text);
    let client = start_client_raw(&["--config", file.path()]);
    client.wait_log("invalid peer certificate");
    // The operator puts the right CA in place and reloads.
    std::fs::write(ca.path(), read(pki.ca_path())).expect("the right CA");
    signal(client.pid(), "HUP");
    client.wait_log("configuration reloaded");
    wait_relay_ready(&server, &upstream);
}
