//! TLS on the client's two outward sides, against a private CA made at run time: `wss://`
//! to the server (through [`TlsFront`], as the wsp server speaks plain HTTP) and
//! `https://` to the internal API. The CA file opens both, a wrong CA opens neither, and
//! `insecure` skips verification.

use crate::config::ConfigFile;
use crate::support::tls::{Pki, TlsFront};
use crate::support::*;

/// Starts `wsp_client` registering to `wss://<host>:<front's port>/register` with `extra`.
fn start_wss_client(front: &TlsFront, host: &str, extra: &[&str]) -> Proc {
    let target = format!("wss://{host}:{}/register", front.addr.port());
    let mut args = vec!["--target", &target, "--secret-key", SECRET];
    args.extend_from_slice(extra);
    start_client_raw(&args)
}

#[test]
fn wss_with_the_ca_file_relays() {
    let pki = Pki::new();
    let upstream = upstream();
    let server = Server::start(&[]);
    let front = TlsFront::start(&pki, server.addr);
    let _client = start_wss_client(&front, "127.0.0.1", &["--ca-file", pki.ca_path()]);
    wait_relay_ready(&server, &upstream);
    assert_hello(&server, &upstream);
}

#[test]
fn wss_with_a_wrong_ca_is_refused() {
    let (pki, other) = (Pki::new(), Pki::new());
    let upstream = upstream();
    let server = Server::start(&[]);
    let front = TlsFront::start(&pki, server.addr);
    let client = start_wss_client(&front, "localhost", &["--ca-file", other.ca_path()]);
    let line = client.wait_log("invalid peer certificate");
    assert!(
        line.contains("WARN") && line.contains("TLS handshake"),
        "{line}"
    );
    // Refused again at the next attempts: no connection ever registers.
    client.wait_log("attempt 2,");
    let reply = relay(
        &server,
        "GET",
        &format!("http://{}/hello", upstream.addr()),
        &[],
        None,
    );
    assert_eq!(
        (reply.status, reply.text().trim()),
        (526, "No proxy available")
    );
}

#[test]
fn insecure_relays_without_the_ca_and_says_so() {
    let pki = Pki::new();
    let upstream = upstream();
    let server = Server::start(&[]);
    let front = TlsFront::start(&pki, server.addr);
    let target = format!("wss://localhost:{}/register", front.addr.port());
    let text = format!("targets :\n - {target}\nsecretkey : {SECRET}\ninsecure : true\n");
    let config = ConfigFile::new("wsp_client.cfg", &text);
    let client = start_client_raw(&["--config", config.path()]);
    let line = client.wait_log("NOT verified");
    assert!(line.contains("WARN"), "{line}");
    wait_relay_ready(&server, &upstream);
    assert_hello(&server, &upstream);
}

#[test]
fn https_destination_needs_the_ca() {
    let pki = Pki::new();
    let upstream = upstream();
    let api = TlsFront::start(&pki, upstream.addr());
    let destination = format!("https://localhost:{}/hello", api.addr.port());
    let server = Server::start(&[]);
    let text = format!("cafile : {}\n", pki.ca_path());
    let config = ConfigFile::client(&server, &text);
    let trusting = start_client_raw(&["--config", config.path()]);
    wait_relay_ready(&server, &upstream);
    let reply = relay(&server, "GET", &destination, &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    drop(trusting);

    let server = Server::start(&[]);
    let _untrusting = start_client(&server, &[]);
    wait_relay_ready(&server, &upstream);
    let reply = relay(&server, "GET", &destination, &[], None);
    assert_eq!(reply.status, 527, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains(&destination) && text.contains("UnknownIssuer"),
        "{text}"
    );
}
