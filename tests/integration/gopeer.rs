//! Interoperability with the Go wsp's framing: a peer written here with tungstenite that
//! behaves like the Go client or server on the wire (JSON heads as text messages, bodies
//! as binary messages of many 4 KiB frames, pings in between) against our real binaries.
//! Bodies arriving that way must stream too: memory stays flat.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::thread;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Message, WebSocket};

use crate::support::routes::PatternReader;
use crate::support::*;

/// The Go peer's frame size for streamed bodies.
const GO_FRAME: usize = 4096;
const BODY_LEN: u64 = 256 << 20;
const MAX_PEAK_RSS_KIB: u64 = 64 * 1024;

/// Sends `len` pattern bytes as one binary message of `GO_FRAME`-byte frames, with a ping
/// every 1000 frames.
fn send_go_body(ws: &mut WebSocket<TcpStream>, len: u64) {
    let mut reader = PatternReader::new(len);
    let mut chunk = vec![0u8; GO_FRAME];
    let mut sent = 0u64;
    let mut frames = 0u64;
    loop {
        let n = reader.read(&mut chunk).expect("pattern");
        sent += n as u64;
        let opcode = if frames == 0 {
            Data::Binary
        } else {
            Data::Continue
        };
        let fin = sent == len;
        let frame = Frame::message(chunk[..n].to_vec(), OpCode::Data(opcode), fin);
        ws.write(Message::Frame(frame)).expect("write body frame");
        frames += 1;
        if frames % 1000 == 0 {
            ws.write(Message::Ping(Vec::new().into())).expect("ping");
        }
        if fin {
            break;
        }
    }
    ws.flush().expect("flush body");
}

fn read_text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("read message") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn read_binary(ws: &mut WebSocket<TcpStream>) -> Vec<u8> {
    loop {
        match ws.read().expect("read message") {
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected binary, got {other:?}"),
        }
    }
}

/// A Go-like client registered to our server, answering one request with a `BODY_LEN`
/// download in small frames.
#[test]
fn server_streams_a_response_body_from_go_framing() {
    let server = Server::start(&[]);
    let mut ws = register_peer(&server, "go_client_with_underscores_1");
    let peer = thread::spawn(move || {
        let head = read_text(&mut ws);
        assert!(head.contains("\"Method\":\"GET\""), "{head}");
        assert!(read_binary(&mut ws).is_empty());
        let response = format!(
            r#"{{"StatusCode":200,"Header":{{"Content-Length":["{BODY_LEN}"]}},"ContentLength":{BODY_LEN}}}"#
        );
        ws.send(Message::Text(response.into()))
            .expect("response head");
        send_go_body(&mut ws, BODY_LEN);
        ws
    });
    let response = caller()
        .get(server.request_url())
        .header("X-PROXY-DESTINATION", "http://internal.example/bytes")
        .call()
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(read_pattern(response.into_body().into_reader()), BODY_LEN);
    let _ws = peer.join().expect("Go-like client");
    let peak = server.proc.peak_rss_kib();
    eprintln!("server peak RSS with Go framing: {peak} KiB");
    assert!(peak < MAX_PEAK_RSS_KIB, "server peak RSS {peak} KiB");
}

/// Checks the key a registering client sends. (tungstenite's callback type has a large
/// error type: a whole HTTP response.)
#[allow(clippy::result_large_err)]
fn check_secret(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    let key = req
        .headers()
        .get("X-SECRET-KEY")
        .and_then(|v| v.to_str().ok());
    assert_eq!(key, Some(SECRET));
    Ok(resp)
}

/// A Go-like server that our client registers to, sending one `BODY_LEN` upload in small
/// frames; our client streams it to the test API.
#[test]
fn client_streams_a_request_body_from_go_framing() {
    let upstream = upstream();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = start_client_for(&listener);
    let (stream, _) = listener.accept().expect("client connects");
    let mut ws = tungstenite::accept_hdr(stream, check_secret).expect("accept");
    let greeting = read_text(&mut ws);
    assert!(greeting.ends_with("_1"), "{greeting}");
    let url = format!("http://{}/upload-count", upstream.addr());
    let head = format!(
        r#"{{"Method":"POST","URL":"{url}","Header":{{"Content-Type":["application/octet-stream"],"X-Proxy-Destination":["{url}"]}},"ContentLength":{BODY_LEN}}}"#
    );
    ws.send(Message::Text(head.into())).expect("request head");
    send_go_body(&mut ws, BODY_LEN);
    let response = read_text(&mut ws);
    assert!(response.contains("\"StatusCode\":200"), "{response}");
    let body = read_binary(&mut ws);
    assert_eq!(String::from_utf8_lossy(&body), BODY_LEN.to_string());
    let fnv = pattern_fnv(BODY_LEN);
    assert!(response.contains(&fnv), "hash {fnv} not in {response}");
    let peak = client.peak_rss_kib();
    eprintln!("client peak RSS with Go framing: {peak} KiB");
    assert!(peak < MAX_PEAK_RSS_KIB, "client peak RSS {peak} KiB");
}

/// The first body bytes reach the caller while the client is still sending: the peer
/// holds back the end of the body until the caller has seen the beginning.
#[test]
fn first_bytes_reach_the_caller_before_the_body_ends() {
    let server = Server::start(&[]);
    let mut ws = register_peer(&server, "slow_1");
    let (seen_tx, seen_rx) = crossbeam_channel::bounded::<()>(1);
    let peer = thread::spawn(move || {
        read_text(&mut ws);
        read_binary(&mut ws);
        ws.send(Message::Text(
            r#"{"StatusCode":200,"Header":{},"ContentLength":-1}"#.into(),
        ))
        .expect("response head");
        let first = Frame::message(b"first ".to_vec(), OpCode::Data(Data::Binary), false);
        ws.send(Message::Frame(first)).expect("first frame");
        let seen = seen_rx.recv_timeout(std::time::Duration::from_secs(20));
        let last = Frame::message(b"last".to_vec(), OpCode::Data(Data::Continue), true);
        ws.send(Message::Frame(last)).expect("last frame");
        seen.is_ok()
    });
    let response = caller()
        .get(server.request_url())
        .header("X-PROXY-DESTINATION", "http://internal.example/stream")
        .call()
        .expect("request");
    let mut reader = response.into_body().into_reader();
    let mut first = [0u8; 6];
    reader.read_exact(&mut first).expect("first bytes");
    assert_eq!(&first, b"first ");
    seen_tx.send(()).expect("peer waiting");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("rest");
    assert_eq!(rest, "last");
    assert!(
        peer.join().expect("peer"),
        "first bytes arrived only after the end"
    );
}
