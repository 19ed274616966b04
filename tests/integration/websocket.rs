//! A caller's WebSocket through the tunnel, with real WebSocket peers on both sides:
//! tungstenite as the caller and as the internal API (an echo service that also reports
//! the handshake it saw). The oracle is the same conversation with the API directly.

// tungstenite's handshake errors are large by its design.
#![allow(clippy::result_large_err)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Message, WebSocket};

use crate::support::rawpeer::read_http_head;
use crate::support::{
    go_style_client, idle_connections, poll, random_bytes, start_client, Server, Stack,
};

/// The internal API: echoes every message back, answers pings (tungstenite does), and
/// offers the subprotocol `chat` when asked. Reports each handshake's headers, and
/// whether the caller's close reached it.
pub(crate) fn echo_api() -> (String, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (events, seen) = channel();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let events = events.clone();
            thread::spawn(move || {
                let callback = |request: &Request, mut response: Response| {
                    let headers = format!("{:?}", request.headers());
                    let _ = events.send(format!("handshake {} {headers}", request.uri()));
                    let asked = request.headers().get("Sec-WebSocket-Protocol");
                    if asked.is_some_and(|p| p.to_str().unwrap_or("").contains("chat")) {
                        let chat = "chat".parse().expect("header value");
                        response
                            .headers_mut()
                            .insert("Sec-WebSocket-Protocol", chat);
                    }
                    Ok(response)
                };
                let Ok(mut ws) = tungstenite::accept_hdr(socket, callback) else {
                    return;
                };
                loop {
                    match ws.read() {
                        Ok(Message::Text(t)) if t.as_str() == "close please" => {
                            let _ = ws.close(None);
                        }
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                            if ws.send(m).is_err() {
                                return;
                            }
                        }
                        Ok(Message::Close(_)) => {
                            let _ = events.send("closed by the caller".to_string());
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A handshake to `server`'s `/request` for `url`, subprotocol `protocol` if any.
fn handshake(
    server: &Server,
    url: &str,
    protocol: Option<&str>,
    authorization: Option<&str>,
) -> Result<(WebSocket<TcpStream>, ClientResponse), ClientFailure> {
    let socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("time-out");
    let mut request = format!("ws://{}/request", server.addr)
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert("X-PROXY-DESTINATION", url.parse().expect("value"));
    if let Some(p) = protocol {
        headers.insert("Sec-WebSocket-Protocol", p.parse().expect("value"));
    }
    if let Some(a) = authorization {
        headers.insert("Authorization", a.parse().expect("value"));
    }
    tungstenite::client(request, socket)
}

type ClientResponse = tungstenite::handshake::client::Response;
type ClientFailure =
    tungstenite::HandshakeError<tungstenite::handshake::client::ClientHandshake<TcpStream>>;

/// The answer to a handshake that did not switch protocols: its status and body.
fn refused(
    handshake: Result<(WebSocket<TcpStream>, ClientResponse), ClientFailure>,
) -> (u16, String) {
    match handshake {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let body = response.body().as_deref().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8_lossy(body).into_owned(),
            )
        }
        Err(e) => panic!("expected an HTTP answer, got {e:?}"),
        Ok(_) => panic!("expected an HTTP answer, got a WebSocket"),
    }
}

/// A WebSocket to `url` through `server`'s `/request` (`X-PROXY-DESTINATION: url`).
fn through(server: &Server, url: &str, protocol: Option<&str>) -> WebSocket<TcpStream> {
    let (ws, response) = handshake(server, url, protocol, None).expect("handshake through wsp");
    if protocol.is_some() {
        let chosen = response.headers().get("Sec-WebSocket-Protocol");
        assert_eq!(chosen.map(|v| v.as_bytes()), Some(&b"chat"[..]));
    }
    ws
}

/// Sends a text message in three fragments, which the echo API gives back whole, then a
/// ping, which it answers with its pong.
pub(crate) fn fragments_and_a_ping<S: std::io::Read + Write>(ws: &mut WebSocket<S>) {
    let parts = [&b"frag"[..], b"ment", b"ed"];
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(part.to_vec(), OpCode::Data(opcode), i == parts.len() - 1);
        ws.write(Message::Frame(frame)).expect("fragment");
    }
    ws.flush().expect("flush");
    assert_eq!(next_data(ws), Message::text("fragmented"));
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("ping");
    let pong = loop {
        match ws.read().expect("read") {
            Message::Pong(p) => break p,
            _ => continue,
        }
    };
    assert_eq!(&pong[..], b"are you there");
}

fn next_data<S: std::io::Read + Write>(ws: &mut WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("read") {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

const ALLOW_ALL: [&str; 0] = [];

#[test]
fn a_websocket_passes_text_binary_fragments_pings_and_closes() {
    let (api, seen) = echo_api();
    let stack = Stack::start(&[], &ALLOW_ALL);
    let mut ws = through(
        &stack.server,
        &format!("ws://{api}/echo?room=1"),
        Some("chat"),
    );
    let handshake = seen
        .recv_timeout(Duration::from_secs(5))
        .expect("handshake");
    assert!(
        handshake.starts_with("handshake /echo?room=1 "),
        "{handshake}"
    );
    assert!(handshake.contains("sec-websocket-key"), "{handshake}");
    ws.send(Message::text("hello")).expect("text");
    assert_eq!(next_data(&mut ws), Message::text("hello"));
    let binary = random_bytes(300_000, 3);
    ws.send(Message::binary(binary.clone())).expect("binary");
    assert_eq!(next_data(&mut ws), Message::binary(binary));
    fragments_and_a_ping(&mut ws);
    // The caller closes: the API hears it.
    ws.close(None).expect("close");
    let _ = ws.read();
    // Closing handshake done; the caller then closes its socket, as TCP wants.
    drop(ws);
    let heard = poll(Duration::from_secs(10), || {
        seen.try_iter()
            .any(|e| e == "closed by the caller")
            .then_some(())
    });
    assert!(heard.is_some(), "the caller's close never reached the API");
    stack.server.proc.wait_log("stream ended");
}

/// Asks the echo API to close (`close please`) and checks its close frame arrives.
pub(crate) fn the_api_closes<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) {
    ws.send(Message::text("close please")).expect("ask");
    let closed = loop {
        match ws.read() {
            Ok(Message::Close(_)) => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(closed, "the API's close frame never came through");
}

#[test]
fn the_api_closing_reaches_the_caller_and_the_connection_serves_again() {
    let (api, _seen) = echo_api();
    let stack = Stack::start(&[], &ALLOW_ALL);
    let mut ws = through(&stack.server, &format!("http://{api}/"), None);
    the_api_closes(&mut ws);
    // Requests still go through, over the connection the stream gave back or another.
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "hello world");
}

#[test]
fn a_handshake_the_api_refuses_comes_back_as_its_answer() {
    let stack = Stack::start(&[], &ALLOW_ALL);
    // The test API is no WebSocket server: it answers the handshake as a GET.
    let answer = refused(handshake(&stack.server, &stack.url("/hello"), None, None));
    assert_eq!(answer, (200, "hello world".to_string()));
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.text(), "hello world");
}

#[test]
fn a_hundred_mib_each_way_with_flat_memory() {
    let (api, _seen) = echo_api();
    let stack = Stack::start(&[], &ALLOW_ALL);
    let mut ws = through(&stack.server, &format!("ws://{api}/"), None);
    let piece = random_bytes(1 << 20, 11);
    for i in 0..100u8 {
        let mut message = piece.clone();
        message[0] = i;
        ws.send(Message::binary(message.clone())).expect("send");
        assert!(
            next_data(&mut ws) == Message::binary(message),
            "piece {i} differs"
        );
    }
    ws.close(None).expect("close");
    let server_rss = stack.server.proc.peak_rss_kib();
    let client_rss = stack.client.peak_rss_kib();
    assert!(server_rss < 32 * 1024, "server peak RSS {server_rss} KiB");
    assert!(client_rss < 32 * 1024, "client peak RSS {client_rss} KiB");
}

#[test]
fn a_go_style_client_alone_gets_a_501_for_a_websocket() {
    let (api, _seen) = echo_api();
    let server = Server::start(&[]);
    let _peer = go_style_client(&server);
    let (status, text) = refused(handshake(&server, &format!("ws://{api}/"), None, None));
    assert_eq!(status, 501);
    assert!(
        text.contains("no connected client supports streams"),
        "{text}"
    );
}

#[test]
fn a_websocket_in_proxy_mode_passes_too() {
    let (api, seen) = echo_api();
    let stack = Stack::start(&[], &ALLOW_ALL);
    let mut socket = TcpStream::connect(stack.server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("time-out");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let handshake = format!(
        "GET http://{api}/proxied HTTP/1.1\r\nHost: {api}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).expect("handshake");
    let head = read_http_head(&mut socket).expect("101 head");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and accept value.
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let seen_handshake = seen
        .recv_timeout(Duration::from_secs(5))
        .expect("handshake");
    assert!(
        seen_handshake.starts_with("handshake /proxied "),
        "{seen_handshake}"
    );
    let mut ws = WebSocket::from_raw_socket(socket, tungstenite::protocol::Role::Client, None);
    ws.send(Message::text("through the proxy")).expect("text");
    assert_eq!(next_data(&mut ws), Message::text("through the proxy"));
}

#[test]
fn a_handshake_needs_the_callers_credentials_when_auth_is_on() {
    let (api, _seen) = echo_api();
    let token = crate::config::ConfigFile::new("token", "ws-token\n");
    let server = Server::start(&["--auth-token-file", token.path()]);
    let _client = start_client(&server, &ALLOW_ALL);
    let ready = poll(Duration::from_secs(20), || {
        (idle_connections(&server) > 0).then_some(())
    });
    assert!(ready.is_some(), "the client never registered");
    let url = format!("ws://{api}/");
    let (status, text) = refused(handshake(&server, &url, None, None));
    assert_eq!(status, 401, "{text}");
    let (mut ws, _) =
        handshake(&server, &url, None, Some("Bearer ws-token")).expect("handshake with the token");
    ws.send(Message::text("authorized")).expect("text");
    assert_eq!(next_data(&mut ws), Message::text("authorized"));
}

/// A raw internal API answering each handshake with `answer(key)` in one write.
fn raw_api(answer: fn(&str) -> Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            thread::spawn(move || {
                let Ok(head) = read_http_head(&mut socket) else {
                    return;
                };
                let key = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key")
                            .then(|| value.trim().to_string())
                    })
                    .unwrap_or_default();
                let _ = socket.write_all(&answer(&key));
                // Held open until the caller is done.
                let _ = std::io::copy(&mut socket, &mut std::io::sink());
            });
        }
    });
    addr
}

#[test]
fn what_real_servers_send_around_the_handshake_comes_through() {
    let stack = Stack::start(&[], &ALLOW_ALL);
    // A refusal with a chunked body, the framing many servers use for error pages.
    let chunked = raw_api(|_| {
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
          4\r\nnot \r\n7\r\nallowed\r\n0\r\n\r\n"
            .to_vec()
    });
    // curl as the caller: it decodes whatever framing wsp answers with.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-w",
            " %{http_code}",
            "-H",
            "Upgrade: websocket",
            "-H",
        ])
        .args([
            "Connection: Upgrade",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
        ])
        .args(["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H"])
        .arg(format!("X-PROXY-DESTINATION: ws://{chunked}/"))
        .arg(format!("http://{}/request", stack.server.addr))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not allowed 403");
    // A 101 with the API's first message in the same write, before the caller said a word.
    let eager = raw_api(|key| {
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&[0x81, 5]);
        out.extend_from_slice(b"hello");
        out
    });
    let mut ws = through(&stack.server, &format!("ws://{eager}/"), None);
    assert_eq!(next_data(&mut ws), Message::text("hello"));
}
