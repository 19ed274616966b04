//! SIGHUP on the server: the configuration file is read again and put in force for new
//! requests, while registered clients stay and requests in flight finish; a file that
//! does not load is refused in one line, and the running configuration stays.

use std::io::Read;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::config::ConfigFile;
use crate::server_tls::raw_tls;
use crate::support::tls::Pki;
use crate::support::{get, metric, poll, read_pattern, relay, signal, Server, Stack};

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
    let download = {
        let server_addr = server.addr;
        thread::spawn(move || {
            let response = crate::support::caller()
                .get(format!("http://{server_addr}/request"))
                .header("X-PROXY-DESTINATION", &big)
                .call()
                .expect("download");
            let body = response.into_body().into_reader();
            let held = Held {
                inner: body,
                read: 0,
                in_flight: Some(in_flight),
                resume,
            };
            read_pattern(held)
        })
    };
    started
        .recv_timeout(Duration::from_secs(20))
        .expect("the download started");
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
