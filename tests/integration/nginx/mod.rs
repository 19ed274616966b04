//! The deployment example `examples/nginx/wsp.conf`, run for real: nginx terminates TLS in
//! front of two wsp servers, one client registers to both through it (`/a/register`,
//! `/b/register`), and callers relay through its `/request` over https. The test uses the
//! example file itself, rewriting only its example values (listen address, certificate,
//! upstream addresses) in its directive lines; nginx runs from a temporary prefix on an
//! ephemeral port. Without nginx installed, these tests fail (saying how to install it).

pub mod run;

use std::time::Duration;

use serde_json::Value;

use crate::support::tls::Pki;
use crate::support::*;
use run::Nginx;

/// The client's id on both servers.
const CLIENT_ID: &str = "behind-nginx";

/// Idle connections the client keeps per target (per server).
const POOL: u64 = 2;

/// A caller over https trusting only the test CA.
fn https_caller(pki: &Pki) -> ureq::Agent {
    let pem = std::fs::read(pki.ca_path()).expect("read the test CA");
    let ca = ureq::tls::Certificate::from_pem(&pem).expect("the test CA is PEM");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(240)))
        .build()
        .into()
}

/// Two wsp servers, nginx in front with the example, a client registered to both through
/// nginx, and the test API behind the client.
struct Deployment {
    // Dropped in this order: nginx, then the client, then the servers.
    nginx: Nginx,
    client: Proc,
    a: Server,
    b: Option<Server>,
    upstream: TestApi,
    caller: ureq::Agent,
    _pki: Pki,
}

impl Deployment {
    fn start() -> Deployment {
        let pki = Pki::new();
        let upstream = upstream();
        let (a, b) = (Server::start(&[]), Server::start(&[]));
        let nginx = Nginx::start(a.addr, b.addr, &pki);
        let target = |path: &str| format!("wss://{}{path}", nginx.addr);
        let (target_a, target_b) = (target("/a/register"), target("/b/register"));
        let pool = POOL.to_string();
        let client = start_client_raw(&[
            "--id",
            CLIENT_ID,
            "--target",
            &target_a,
            "--target",
            &target_b,
            "--secret-key",
            SECRET,
            "--ca-file",
            pki.ca_path(),
            "--pool-idle-size",
            &pool,
        ]);
        let deployment = Deployment {
            caller: https_caller(&pki),
            nginx,
            client,
            a,
            b: Some(b),
            upstream,
            _pki: pki,
        };
        for server in [&deployment.a, deployment.server_b()] {
            deployment.wait_registered(server);
        }
        deployment
    }

    fn server_b(&self) -> &Server {
        self.b.as_ref().expect("server B is running")
    }

    /// Waits until `server` has the client's whole idle pool, registered through nginx.
    fn wait_registered(&self, server: &Server) {
        poll(READY, || {
            (client_row(server)?["idle"].as_u64()? >= POOL).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "the client never registered {POOL} connections to {} through nginx\n\
                     client log:\n{}\nnginx log:\n{}",
                server.addr,
                self.client.log.lock(),
                self.nginx.proc.log.lock()
            )
        });
    }

    /// Sends `request` to nginx.
    fn send(&self, request: ureq::http::Request<impl ureq::AsSendBody>) -> Reply {
        let uri = request.uri().to_string();
        let response = self
            .caller
            .run(request)
            .unwrap_or_else(|e| panic!("{uri} through nginx: {e}"));
        try_into_reply(response).unwrap_or_else(|e| panic!("{uri} through nginx: {e}"))
    }

    /// A request to nginx's `/request` for the test API's `path`.
    fn relay(&self, method: &str, path: &str) -> ureq::http::request::Builder {
        ureq::http::Request::builder()
            .method(method)
            .uri(self.nginx.url("/request"))
            .header(
                "X-PROXY-DESTINATION",
                format!("http://{}{path}", self.upstream.addr()),
            )
    }

    /// GET /hello through nginx and the proxy answers 200 "hello world".
    fn assert_hello(&self) {
        let reply = self.send(self.relay("GET", "/hello").body(()).expect("request"));
        assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    }
}

/// The client's row in `server`'s `/status.json`, once it has one.
fn client_row(server: &Server) -> Option<Value> {
    let reply = get(&format!("http://{}/status.json", server.addr), &[]);
    let json: Value = serde_json::from_slice(&reply.body).ok()?;
    let clients = json["clients"].as_array()?;
    clients.iter().find(|c| c["id"] == CLIENT_ID).cloned()
}

/// Requests `server` counts as served by the client.
fn served(server: &Server) -> u64 {
    client_row(server)
        .and_then(|row| row["requests"].as_u64())
        .unwrap_or(0)
}

#[test]
fn relays_over_both_servers_and_hides_the_rest() {
    let deployment = Deployment::start();
    for _ in 0..8 {
        deployment.assert_hello();
    }
    // Round robin: each server relayed some of them (counted once each exchange is over).
    let (a, b) = (&deployment.a, deployment.server_b());
    poll(READY, || (served(a) + served(b) == 8).then_some(())).unwrap_or_else(|| {
        panic!(
            "8 requests, counted {} on A and {} on B",
            served(a),
            served(b)
        )
    });
    assert!(
        served(a) > 0 && served(b) > 0,
        "{} / {}",
        served(a),
        served(b)
    );

    // wsp's headers cross nginx untouched: X-PROXY-CLIENT picks the client, or none.
    for (id, expected) in [
        (CLIENT_ID, "hello world"),
        ("nobody", "No client \"nobody\" connected"),
    ] {
        let request = deployment
            .relay("GET", "/hello")
            .header("X-PROXY-CLIENT", id);
        let reply = deployment.send(request.body(()).expect("request"));
        assert_eq!(reply.text().trim(), expected, "X-PROXY-CLIENT: {id}");
    }

    // The plain health check answers, never the JSON listing client ids.
    let status = ureq::http::Request::builder()
        .uri(deployment.nginx.url("/status"))
        .header("Accept", "application/json")
        .body(())
        .expect("request");
    let reply = deployment.send(status);
    assert_eq!((reply.status, reply.text().trim()), (200, "ok"));
    for path in ["/status.json", "/metrics", "/register", "/c/register", "/"] {
        let request = ureq::http::Request::builder()
            .uri(deployment.nginx.url(path))
            .body(())
            .expect("request");
        assert_eq!(deployment.send(request).status, 404, "{path} through nginx");
    }
}

#[test]
fn large_bodies_stream_both_ways() {
    let deployment = Deployment::start();
    // A chunked upload (no length known in advance), checked byte for byte by its hash.
    let length = 24 * 1024 * 1024;
    let upload = deployment
        .relay("POST", "/upload-count")
        .body(ureq::SendBody::from_owned_reader(
            routes::PatternReader::new(length),
        ))
        .expect("request");
    let reply = deployment.send(upload);
    assert_eq!((reply.status, reply.text()), (200, length.to_string()));
    let fnv = pattern_fnv(length);
    assert_eq!(reply.header("x-body-fnv"), Some(fnv.as_str()));

    // An upload with its length, echoed back.
    let body = random_bytes(4 * 1024 * 1024, 7);
    let post = deployment.relay("POST", "/post").body(body.clone());
    let reply = deployment.send(post.expect("request"));
    assert_eq!(reply.status, 200);
    assert!(reply.body == body, "the echoed body differs");

    // A download, read as it comes and checked byte for byte.
    let download = deployment
        .relay("GET", &format!("/bytes?n={length}"))
        .body(())
        .expect("request");
    let response = deployment.caller.run(download).expect("download");
    assert_eq!(response.status(), 200);
    let received = read_pattern(response.into_body().into_reader());
    assert_eq!(received, length);

    // Streamed, not stored: nginx warns when it spools a body to a temporary file.
    let log = deployment.nginx.proc.log.lock();
    assert!(!log.contains("buffered to a temporary file"), "{log}");
}

#[test]
fn a_server_down_leaves_the_other_serving() {
    let mut deployment = Deployment::start();
    deployment.assert_hello();
    let before = served(&deployment.a);
    drop(deployment.b.take());
    // nginx finds B refusing connections and sends each request to A instead.
    for _ in 0..6 {
        deployment.assert_hello();
    }
    let upload = deployment.relay("POST", "/upload-count");
    let reply = deployment.send(upload.body(vec![b'x'; 1 << 20]).expect("request"));
    assert_eq!((reply.status, reply.text().as_str()), (200, "1048576"));
    let a = &deployment.a;
    poll(READY, || (served(a) >= before + 7).then_some(()))
        .unwrap_or_else(|| panic!("A served {} requests, expected {}", served(a), before + 7));
}

#[test]
fn a_callers_websocket_passes_through_nginx_and_wsp() {
    use tungstenite::Message;
    let deployment = Deployment::start();
    let (api, seen) = crate::websocket::echo_api();
    let destination = format!("ws://{api}/through-nginx");
    let mut ws =
        crate::streams_tls::through_tls(deployment.nginx.addr, &deployment._pki, &destination);
    let handshake = seen.recv_timeout(READY).expect("the API saw the handshake");
    assert!(
        handshake.starts_with("handshake /through-nginx "),
        "{handshake}"
    );
    for text in ["one", "two"] {
        ws.send(Message::text(text)).expect("send");
        assert_eq!(ws.read().expect("echo"), Message::text(text));
    }
    ws.close(None).expect("close");
    // Plain requests still keep their upstream connections alive meanwhile.
    deployment.assert_hello();
}
