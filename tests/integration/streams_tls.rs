//! Streams over TLS on every hop: a caller on `https://` to a TLS server, a client on
//! `wss://`, and an internal API on `wss://`. Each end of a stream is then a rustls
//! session shared by the stream's two threads (`tunnel::End`); these tests carry bytes
//! both ways through all of them, against a private CA made at run time.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::Command;
use std::thread;

use rustls::{ServerConnection, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use crate::server_tls::{https, https_caller, raw_tls, tls_server};
use crate::support::rawpeer::read_http_head;
use crate::support::tls::Pki;
use crate::support::{
    echo_service, random_bytes, start_client_raw, upstream, Proc, Server, SECRET,
};
use crate::websocket::{fragments_and_a_ping, the_api_closes};

/// A client dialing `wss://` to `server`, trusting `pki`, with `extra` flags.
fn wss_client(server: &Server, pki: &Pki, extra: &[&str]) -> Proc {
    let target = format!("wss://{}/register", server.addr);
    let mut args = vec![
        "--target",
        &target,
        "--secret-key",
        SECRET,
        "--ca-file",
        pki.ca_path(),
    ];
    args.extend_from_slice(extra);
    let client = start_client_raw(&args);
    client.wait_log("connected to");
    client
}

/// A WebSocket echo service on `wss://`, with `pki`'s certificate.
fn wss_echo_api(pki: &Pki) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let config = pki.server_config();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let config = config.clone();
            thread::spawn(move || {
                let Ok(conn) = ServerConnection::new(config) else {
                    return;
                };
                let Ok(mut ws) = tungstenite::accept(StreamOwned::new(conn, socket)) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    if message.to_text().is_ok_and(|t| t == "close please") {
                        let _ = ws.close(None);
                    } else if (message.is_text() || message.is_binary())
                        && ws.send(message).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A WebSocket from a caller on `https://`, through the server or proxy at `addr`
/// (`/request`), to `destination`.
pub(crate) fn through_tls(
    addr: std::net::SocketAddr,
    pki: &Pki,
    destination: &str,
) -> tungstenite::WebSocket<StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    let socket = raw_tls(addr, pki);
    let mut request = format!("ws://{addr}/request")
        .into_client_request()
        .expect("request");
    let destination = destination.parse().expect("value");
    request
        .headers_mut()
        .insert("X-PROXY-DESTINATION", destination);
    let (ws, response) = tungstenite::client(request, socket)
        .unwrap_or_else(|e| panic!("handshake through {addr}: {e}"));
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn curl_connects_through_an_https_proxy_and_a_wss_client() {
    let pki = Pki::new();
    let api = upstream();
    let server = tls_server(&pki, &[]);
    let _client = wss_client(&server, &pki, &["--allow-connect", r"127\.0\.0\.1:\d+"]);
    let url = format!("http://{}/hello", api.addr());
    let proxy = format!("https://{}", server.addr);
    let out = Command::new("curl")
        .args([
            "-sS",
            "-p",
            "--proxy",
            &proxy,
            "--proxy-cacert",
            pki.ca_path(),
            &url,
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world");
    server.proc.wait_log("stream ended");
}

#[test]
fn megabytes_pass_a_connect_stream_with_tls_on_both_hops() {
    let pki = Pki::new();
    let echo = echo_service();
    let server = tls_server(&pki, &[]);
    let _client = wss_client(&server, &pki, &["--allow-connect", r"127\.0\.0\.1:\d+"]);
    let mut caller = raw_tls(server.addr, &pki);
    caller.sock.set_nodelay(true).expect("nodelay");
    let head = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    caller.write_all(head.as_bytes()).expect("CONNECT");
    let answer = read_http_head(&mut caller).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // 8 MiB in 64 KiB pieces, each echoed back before the next (a rustls stream is one
    // object: one thread here).
    for i in 0..128u64 {
        let piece = random_bytes(64 * 1024, i + 1);
        caller.write_all(&piece).expect("send");
        let mut back = vec![0u8; piece.len()];
        caller.read_exact(&mut back).expect("echo");
        assert!(back == piece, "piece {i} differs");
    }
    caller.conn.send_close_notify();
    caller.flush().expect("close_notify");
    let _ = caller.sock.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = caller.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes after the end", rest.len());
    server.proc.wait_log("stream ended");
    // The stream's WebSocket went back to the pool, its TLS session in step: requests
    // still go through (the most recently released connection is lent first).
    let api = upstream();
    let agent = https_caller(&pki);
    for _ in 0..3 {
        let response = agent
            .get(&https(&server, "/request"))
            .header(
                "X-PROXY-DESTINATION",
                &format!("http://{}/hello", api.addr()),
            )
            .call()
            .expect("a request after the stream");
        let body = response.into_body().read_to_string().expect("body");
        assert_eq!(body, "hello world");
    }
}

#[test]
fn a_websocket_from_an_https_caller_to_a_wss_api() {
    let pki = Pki::new();
    let api = wss_echo_api(&pki);
    let server = tls_server(&pki, &[]);
    let client = wss_client(&server, &pki, &[]);
    let mut ws = through_tls(server.addr, &pki, &format!("wss://{api}/echo"));
    ws.send(Message::text("over TLS three times"))
        .expect("text");
    assert_eq!(
        ws.read().expect("echo"),
        Message::text("over TLS three times")
    );
    // A message in fragments comes back whole; a ping is answered by the API.
    fragments_and_a_ping(&mut ws);
    // 100 MiB each way, in 1 MiB messages.
    for i in 0..100u64 {
        let big = random_bytes(1 << 20, i + 5);
        ws.send(Message::binary(big.clone())).expect("binary");
        assert!(
            ws.read().expect("echo") == Message::binary(big),
            "message {i} differs"
        );
    }
    for (who, rss) in [
        ("server", server.proc.peak_rss_kib()),
        ("client", client.peak_rss_kib()),
    ] {
        assert!(rss < 32 * 1024, "{who} peak RSS {rss} KiB");
    }
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
    drop(ws);
    let line = server.proc.wait_log("stream ended");
    assert!(line.contains("GET https://127.0.0.1:"), "{line}");
    // Now the API closes: its close frame reaches the caller through three TLS hops.
    let mut ws = through_tls(server.addr, &pki, &format!("wss://{api}/echo"));
    the_api_closes(&mut ws);
}
