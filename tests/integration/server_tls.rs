//! The server terminating TLS itself (`--cert-file` / `--key-file`), with a private CA
//! made at run time: clients dial `wss://`, callers use `https://`, on the one port. A
//! wrong CA is refused on both sides, plain HTTP and TLS never meet without failing at
//! once, a handshake trickled byte by byte is cut, and bad files stop the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::config::{assert_refused, spawn_server, ConfigFile};
use crate::support::routes::PatternReader;
use crate::support::tls::Pki;
use crate::support::*;

/// How soon a mismatched protocol must end in an error.
const FAST: Duration = Duration::from_secs(5);

/// Starts `wsp_server` serving HTTPS with `pki`'s certificate, and `extra` flags.
pub(crate) fn tls_server(pki: &Pki, extra: &[&str]) -> Server {
    let mut args = vec!["--cert-file", pki.cert_path(), "--key-file", pki.key_path()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    server.proc.wait_log("listening on https://");
    server
}

/// Starts `wsp_client` dialing `wss://127.0.0.1:<port>/register` and trusting `ca`.
fn wss_client(server: &Server, ca: &Pki) -> Proc {
    let target = format!("wss://{}/register", server.addr);
    start_client_raw(&[
        "--target",
        &target,
        "--secret-key",
        SECRET,
        "--ca-file",
        ca.ca_path(),
    ])
}

/// A caller trusting only `ca`'s certificate.
pub(crate) fn https_caller(ca: &Pki) -> ureq::Agent {
    let pem = std::fs::read(ca.ca_path()).expect("CA file");
    let cert = ureq::tls::Certificate::from_pem(&pem).expect("CA certificate");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(vec![cert].into())
        .build();
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .tls_config(tls)
        .build()
        .into()
}

pub(crate) fn https(server: &Server, path: &str) -> String {
    format!("https://{}{path}", server.addr)
}

/// `GET /request` for the upstream's `path`, through `agent`.
fn relay_https(agent: &ureq::Agent, server: &Server, destination: &str) -> Result<Reply, String> {
    let response = agent
        .get(https(server, "/request"))
        .header("X-PROXY-DESTINATION", destination)
        .call()
        .map_err(|e| e.to_string())?;
    try_into_reply(response)
}

/// Polls until `/hello` relays over HTTPS: a `wss://` connection has registered.
fn wait_https_ready(agent: &ureq::Agent, server: &Server, upstream: &TestApi) {
    let destination = format!("http://{}/hello", upstream.addr());
    poll(READY, || {
        let reply = relay_https(agent, server, &destination).ok()?;
        (reply.status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("never ready over TLS; log:\n{}", server.proc.log.lock()));
}

/// A TLS server with a `wss://` client registered and relaying, and a caller trusting
/// the CA: what the tests of working TLS start from.
struct TlsStack {
    pki: Pki,
    upstream: TestApi,
    server: Server,
    _client: Proc,
    agent: ureq::Agent,
}

impl TlsStack {
    fn start() -> TlsStack {
        let pki = Pki::new();
        let upstream = upstream();
        let server = tls_server(&pki, &[]);
        let client = wss_client(&server, &pki);
        let agent = https_caller(&pki);
        wait_https_ready(&agent, &server, &upstream);
        TlsStack {
            pki,
            upstream,
            server,
            _client: client,
            agent,
        }
    }
}

/// A rustls client stream to `addr` trusting `ca`, for raw HTTP/1.1 over TLS.
pub(crate) fn raw_tls(addr: SocketAddr, ca: &Pki) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca.ca_path()).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let socket = TcpStream::connect(addr).expect("connect");
    socket.set_read_timeout(Some(READY)).expect("time-out");
    StreamOwned::new(conn, socket)
}

#[test]
fn wss_client_and_https_callers_relay_through_the_tls_server() {
    let stack = TlsStack::start();
    let (upstream, server, agent) = (&stack.upstream, &stack.server, &stack.agent);
    let hello = format!("http://{}/hello", upstream.addr());
    let reply = relay_https(agent, server, &hello).expect("relay over TLS");
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));

    let status = try_into_reply(agent.get(https(server, "/status")).call().unwrap()).unwrap();
    assert_eq!((status.status, status.text().trim()), (200, "ok"));
    let json = agent.get(https(server, "/status.json")).call().unwrap();
    let json = try_into_reply(json).unwrap().text();
    assert!(json.contains("\"idle\""), "{json}");
    let metrics = agent.get(https(server, "/metrics")).call().unwrap();
    assert!(try_into_reply(metrics)
        .unwrap()
        .text()
        .contains("wsp_connections"));
}

#[test]
fn a_tls_caller_connection_is_kept_alive_and_closed_cleanly() {
    let stack = TlsStack::start();
    let (pki, upstream, server) = (&stack.pki, &stack.upstream, &stack.server);
    let mut tls = raw_tls(server.addr, pki);
    let destination = format!("http://{}/hello", upstream.addr());
    // Three requests on one TLS connection; the last asks to close it.
    let requests: String = ["keep-alive", "keep-alive", "close"]
        .iter()
        .map(|connection| {
            format!(
                "GET /request HTTP/1.1\r\nHost: wsp\r\nX-PROXY-DESTINATION: {destination}\r\n\
                 Connection: {connection}\r\n\r\n"
            )
        })
        .collect();
    tls.write_all(requests.as_bytes()).expect("requests");
    let mut answers = String::new();
    // Ends cleanly: the server sends close_notify (else rustls reports UnexpectedEof).
    tls.read_to_string(&mut answers)
        .expect("answers, then close_notify");
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");
    assert_eq!(answers.matches("hello world").count(), 3, "{answers}");
}

#[test]
fn megabytes_stream_both_ways_through_the_tls_server() {
    const LEN: u64 = 8 << 20;
    let stack = TlsStack::start();
    let (upstream, server, agent) = (&stack.upstream, &stack.server, &stack.agent);

    let mut body = PatternReader::new(LEN);
    let response = agent
        .post(https(server, "/request"))
        .header(
            "X-PROXY-DESTINATION",
            format!("http://{}/upload-count", upstream.addr()),
        )
        .header("Content-Length", LEN.to_string())
        .send(ureq::SendBody::from_reader(&mut body))
        .expect("upload over TLS");
    assert_eq!(response.status().as_u16(), 200);
    let hash = response.headers().get("x-body-fnv").cloned();
    let count = response.into_body().read_to_string().expect("count");
    assert_eq!(count.trim(), LEN.to_string());
    assert_eq!(
        hash.as_ref().and_then(|h| h.to_str().ok()),
        Some(pattern_fnv(LEN).as_str())
    );

    for chunked in ["0", "1"] {
        let destination = format!("http://{}/bytes?n={LEN}&chunked={chunked}", upstream.addr());
        let response = agent
            .get(https(server, "/request"))
            .header("X-PROXY-DESTINATION", destination)
            .call()
            .expect("download over TLS");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(read_pattern(response.into_body().into_reader()), LEN);
    }
}

#[test]
fn a_wrong_ca_is_refused_by_clients_and_callers() {
    let (pki, other) = (Pki::new(), Pki::new());
    let upstream = upstream();
    let server = tls_server(&pki, &[]);
    let client = wss_client(&server, &other);
    let line = client.wait_log("invalid peer certificate");
    // Both test CAs have the same (empty) name: the signature is what fails.
    assert!(
        line.contains("WARN") && line.contains("TLS handshake"),
        "{line}"
    );
    client.wait_log("attempt 2,");

    let refused = relay_https(&https_caller(&other), &server, "http://x/").unwrap_err();
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    // Nothing registered: a trusting caller is told no client is there.
    let hello = format!("http://{}/hello", upstream.addr());
    let reply = relay_https(&https_caller(&pki), &server, &hello).expect("trusting caller");
    assert_eq!(
        (reply.status, reply.text().trim()),
        (526, "No proxy available")
    );
}

#[test]
fn plain_http_and_ws_against_the_tls_server_fail_fast() {
    let pki = Pki::new();
    let upstream = upstream();
    let server = tls_server(&pki, &[]);
    let plain_client = start_client(&server, &[]);
    // The client's HTTP upgrade gets a TLS alert back, not an HTTP answer.
    let line = plain_client.wait_log("the server answered in TLS: dial it with wss://");
    assert!(
        line.contains("WARN") && line.contains(&server.addr.to_string()),
        "{line}"
    );

    let started = Instant::now();
    let plain = caller()
        .get(format!("http://{}/status", server.addr))
        .call();
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());

    let agent = https_caller(&pki);
    let status = try_into_reply(agent.get(https(&server, "/status")).call().unwrap()).unwrap();
    assert_eq!((status.status, status.text().trim()), (200, "ok"));
    let _client = wss_client(&server, &pki);
    wait_https_ready(&agent, &server, &upstream);
}

#[test]
fn tls_against_a_plain_server_fails_fast() {
    let pki = Pki::new();
    let server = Server::start(&[]);
    let started = Instant::now();
    let refused = https_caller(&pki).get(https(&server, "/status")).call();
    assert!(refused.is_err(), "{refused:?}");
    assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());
    let client = wss_client(&server, &pki);
    let line = client.wait_log("TLS handshake");
    assert!(line.contains("WARN"), "{line}");
    let status = get(&format!("http://{}/status", server.addr), &[]);
    assert_eq!(status.status, 200);
}

#[test]
fn a_trickled_handshake_is_cut_by_the_head_time_out() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // A handshake record announcing 512 bytes, sent a byte every 500 ms: each read of
    // the server gets something, but the whole must come within 10 s of the accept.
    let started = Instant::now();
    socket.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let cut = poll(tiny_http::HEADER_TIMEOUT + FAST, || {
        if socket.write_all(&[0x01]).is_err() {
            return Some(());
        }
        match socket.read(&mut [0u8; 64]) {
            Ok(_) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(_) => Some(()),
        }
    });
    let elapsed = started.elapsed();
    assert!(cut.is_some(), "still open after {elapsed:?}");
    assert!(
        elapsed >= tiny_http::HEADER_TIMEOUT - Duration::from_secs(1),
        "cut after {elapsed:?}: too early"
    );
    let agent = https_caller(&pki);
    let status = try_into_reply(agent.get(https(&server, "/status")).call().unwrap()).unwrap();
    assert_eq!(status.status, 200);
}

#[test]
fn bad_tls_files_stop_the_server_naming_the_problem() {
    let (pki, other) = (Pki::new(), Pki::new());
    let mut proc = spawn_server(&["--port", "0", "--cert-file", pki.cert_path()]);
    assert_refused(
        &mut proc,
        &["--cert-file", "keyfile (--key-file) is missing"],
    );
    let config = ConfigFile::server(&format!("keyfile : {}\n", pki.key_path()));
    let mut proc = spawn_server(&["--config", config.path()]);
    assert_refused(
        &mut proc,
        &[config.path(), "certfile (--cert-file) is missing"],
    );

    let garbage = ConfigFile::new("cert.pem", "not a certificate\n");
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            garbage.path(),
            pki.key_path(),
            &["certfile", garbage.path(), "no CERTIFICATE"],
        ),
        (
            "/nonexistent/cert.pem",
            pki.key_path(),
            &["reading certfile /nonexistent/cert.pem"],
        ),
        (
            pki.cert_path(),
            pki.cert_path(),
            &["keyfile", pki.cert_path(), "no private key"],
        ),
        (
            pki.cert_path(),
            other.key_path(),
            &["cannot be used together", "KeyMismatch"],
        ),
    ];
    for (cert, key, needles) in cases {
        let mut proc = spawn_server(&["--port", "0", "--cert-file", cert, "--key-file", key]);
        assert_refused(&mut proc, needles);
    }
}
