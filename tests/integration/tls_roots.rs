//! Which roots the client trusts when no `cafile` is given: the system's, as the
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` convention (curl, Go, OpenSSL) lets a test point them
//! at its own CA. A CA that is neither the system's nor built in is refused.

use std::process::Command;

use crate::support::tls::{Pki, TlsFront};
use crate::support::*;

/// `wsp_client` registering through `front` over `wss://localhost`, with `roots` as the
/// system's roots (a PEM file) or, with `None`, an empty system store.
fn client_with_system_roots(front: &TlsFront, roots: Option<&str>) -> Proc {
    let target = format!("wss://localhost:{}/register", front.addr.port());
    let empty = std::env::temp_dir().join(format!("wsp-it-{}-no-roots", std::process::id()));
    std::fs::create_dir_all(&empty).expect("empty roots directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsp_client"));
    command
        .args(["--target", &target, "--secret-key", SECRET])
        .args(["--log-level", "debug"])
        .env("SSL_CERT_DIR", &empty)
        .env(
            "SSL_CERT_FILE",
            roots.unwrap_or("/nonexistent/wsp-roots.pem"),
        );
    Proc::spawn_command(command)
}

#[test]
fn the_system_roots_are_trusted_by_default() {
    let pki = Pki::new();
    let upstream = upstream();
    let server = Server::start(&[]);
    let front = TlsFront::start(&pki, server.addr);
    let client = client_with_system_roots(&front, Some(pki.ca_path()));
    client.wait_log("trusting 1 system CA certificates");
    wait_relay_ready(&server, &upstream);
    assert_hello(&server, &upstream);
}

#[test]
fn without_system_roots_the_built_in_ones_are_used_and_a_private_ca_refused() {
    let pki = Pki::new();
    let server = Server::start(&[]);
    let front = TlsFront::start(&pki, server.addr);
    let client = client_with_system_roots(&front, None);
    let line = client.wait_log("no system CA certificates found");
    assert!(line.contains("WARN") && line.contains("built-in"), "{line}");
    let line = client.wait_log("invalid peer certificate");
    assert!(line.contains("UnknownIssuer"), "{line}");
}
