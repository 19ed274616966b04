//! Hostile or broken WebSocket input, written byte by byte with the raw peer: bad
//! greetings and illegal frames at the server, messages of the wrong kind, messages that
//! never end and ping floods on both sides. Each time the offending connection must end
//! promptly with a log line naming the problem, the caller must get an answer, no thread
//! may stay behind, and the process must go on serving.

use std::io::Read;
use std::thread;

use crossbeam_channel::bounded;

use crate::support::rawpeer::*;
use crate::support::*;

/// One way for a peer to break the protocol.
type Misbehaviour = fn(&mut RawWs);

// ---- Registration: a real client relays throughout, a hostile one registers badly ----

/// Registers a hostile connection next to a real client, lets `misbehave` write to it
/// after the upgrade, and checks that the server ends it, logs `problem`, leaves no
/// thread behind and still relays for the real client.
fn assert_registration_refused(misbehave: impl FnOnce(&mut RawWs) + Send + 'static, problem: &str) {
    let stack = Stack::start(&[], &["--pool-idle-size", "1"]);
    let pid = stack.server.proc.pid();
    let baseline = steady_threads(&stack.server);
    let mut peer = RawWs::register(&stack.server);
    let mut writer = peer.try_clone();
    // A writer of its own: some misbehaviours write until the server hangs up.
    let writing = thread::spawn(move || misbehave(&mut writer));
    let ended = peer.read_until_end(READY);
    let (messages, end) = ended.expect("the server kept a connection with a bad greeting");
    assert!(messages.is_empty(), "{messages:?}");
    eprintln!("server ended the connection with {end:?}");
    writing.join().expect("writer");
    let line = stack.server.proc.wait_log("registration refused");
    assert!(line.contains(problem), "{line:?} does not name {problem:?}");
    drop(peer);
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    assert_threads_settle(pid, "request", 0, baseline);
}

fn greeting(text: &'static str) -> impl FnOnce(&mut RawWs) + Send + 'static {
    move |ws| ws.send(TEXT, true, text.as_bytes()).expect("greeting")
}

#[test]
fn hostile_garbage_after_the_upgrade() {
    let garbage = b"\xde\xad\xbe\xef not a WebSocket frame at all \x00\x01\x02".to_vec();
    assert_registration_refused(
        move |ws| ws.send_raw(&garbage).expect("garbage"),
        "WebSocket framing error",
    );
}

#[test]
fn hostile_greeting_without_underscore() {
    assert_registration_refused(greeting("nounderscore"), "has no '_' between id and size");
}

#[test]
fn hostile_greeting_with_a_non_numeric_size() {
    assert_registration_refused(greeting("client_ten"), "pool size \"ten\" is not a number");
}

/// 10^30 is a number, only too large: the refusal should say so, not call it "not a
/// number".
#[test]
fn hostile_greeting_with_a_size_of_ten_to_the_thirty() {
    assert_registration_refused(
        greeting("client_1000000000000000000000000000000"),
        "pool size 1000000000000000000000000000000 is above 10000",
    );
}

#[test]
fn hostile_greeting_with_an_empty_id() {
    assert_registration_refused(greeting("_5"), "empty client id");
}

#[test]
fn hostile_greeting_with_a_ten_thousand_byte_id() {
    let text = format!("{}_1", "x".repeat(10_000));
    assert_registration_refused(
        move |ws| ws.send(TEXT, true, text.as_bytes()).expect("greeting"),
        "a greeting is larger than the limit",
    );
}

#[test]
fn hostile_unmasked_greeting_frame() {
    assert_registration_refused(
        |ws| {
            let frame = encode_frame(TEXT, true, b"client_1", None);
            ws.send_raw(&frame).expect("unmasked greeting");
        },
        "unmasked frame from a client",
    );
}

#[test]
fn hostile_frame_announcing_two_to_the_sixty_three_bytes() {
    assert_registration_refused(
        |ws| {
            let header = frame_header(TEXT, true, 1 << 63, ws.mask());
            ws.send_raw(&header).expect("header");
            let _ = ws.send_raw(b"client_1");
        },
        "frame length has its most significant bit set",
    );
}

/// A legal length, 2^62, far past the limit: refused from the header, before any byte is
/// awaited or allocated.
#[test]
fn hostile_greeting_announcing_four_exbibytes() {
    assert_registration_refused(
        |ws| {
            let header = frame_header(TEXT, true, 1 << 62, ws.mask());
            ws.send_raw(&header).expect("header");
        },
        "a greeting is larger than the limit",
    );
}

#[test]
fn hostile_greeting_that_never_ends() {
    assert_registration_refused(
        |ws| {
            let piece = [b'x'; 100];
            let mut result = ws.send(TEXT, false, &piece);
            while result.is_ok() {
                result = ws.send(CONTINUE, false, &piece);
            }
        },
        "a greeting is larger than the limit",
    );
}

// ---- Exchange at the server: the only client answers with the wrong frames ----

#[test]
fn hostile_binary_frame_where_the_response_head_belongs() {
    let mut lone = LonePeer::start();
    let answer = lone.request();
    let head = br#"{"StatusCode":200,"Header":{},"ContentLength":0}"#;
    lone.peer.send(BINARY, true, head).expect("head as binary");
    lone.peer.send(BINARY, true, b"").expect("body");
    let answer = answer_within(&answer);
    assert_526_naming(&answer, "expected a response head, got a binary message");
    lone.assert_dropped();
    lone.server
        .proc
        .wait_log("expected a response head, got a binary message");
    lone.assert_recovers();
}

/// A valid response head, then a text message where the binary body belongs: the
/// server gives the connection up, says why, and keeps serving. (What the caller gets is
/// checked by `hostile_failure_right_after_the_response_head_still_answers_the_caller`.)
#[test]
fn hostile_text_frame_where_the_response_body_belongs() {
    let mut lone = LonePeer::start();
    let answer = lone.request();
    let head = br#"{"StatusCode":200,"Header":{},"ContentLength":-1}"#;
    lone.peer.send(TEXT, true, head).expect("head");
    lone.peer
        .send(TEXT, true, b"not a body")
        .expect("body as text");
    let problem = "expected a binary body message, got a text message";
    if let Ok(reply) = answer_within(&answer) {
        assert_526_naming(&Ok(reply), problem);
    }
    lone.assert_dropped();
    lone.server.proc.wait_log(problem);
    lone.assert_recovers();
}

/// Once the response head is read, message 4 can still fail before its first byte: a
/// text message instead, or the client hanging up. Nothing has reached the caller yet,
/// so it must still get an HTTP answer: a 526 naming the problem, or at least the relayed
/// status line before its connection is cut.
#[test]
fn hostile_failure_right_after_the_response_head_still_answers_the_caller() {
    let cases: [(&str, Misbehaviour); 2] = [
        ("expected a binary body message, got a text message", |ws| {
            ws.send(TEXT, true, b"not a body").expect("body as text");
        }),
        ("WebSocket closed by peer", |ws| {
            ws.stream
                .shutdown(std::net::Shutdown::Both)
                .expect("hang up");
        }),
    ];
    for (problem, fail) in cases {
        let mut lone = LonePeer::start();
        let answer = lone.request();
        let head = br#"{"StatusCode":200,"Header":{},"ContentLength":-1}"#;
        lone.peer.send(TEXT, true, head).expect("head");
        fail(&mut lone.peer);
        match answer_within(&answer) {
            Ok(reply) if reply.status == 526 => assert_526_naming(&Ok(reply), problem),
            Ok(reply) => panic!("{problem}: the caller got a complete answer: {reply:?}"),
            Err(e) => assert!(
                e.starts_with("status 200, body cut"),
                "{problem}: the caller got no HTTP answer: {e}"
            ),
        }
    }
}

/// A client whose body disagrees with the length its head announced: the caller was
/// promised that length, so a shorter body cuts its connection (it must not wait for the
/// rest), and a longer one is cut off at the length (the surplus would read as the next
/// answer).
#[test]
fn hostile_body_other_than_its_announced_length() {
    let head = br#"{"StatusCode":200,"Header":{"Content-Length":["10"]},"ContentLength":10}"#;
    let mut lone = LonePeer::start();
    let answer = lone.request();
    lone.peer.send(TEXT, true, head).expect("head");
    lone.peer.send(BINARY, true, b"short").expect("body");
    match answer_within(&answer) {
        Ok(reply) => panic!("a 5-byte body passed for a 10-byte one: {reply:?}"),
        Err(e) => assert!(e.starts_with("status 200, body cut after 5 bytes"), "{e}"),
    }
    lone.server
        .proc
        .wait_log("the body ended after 5 of its 10 bytes");
    let answer = lone.request();
    lone.peer.send(TEXT, true, head).expect("head");
    lone.peer
        .send(BINARY, true, b"0123456789 and more")
        .expect("body");
    let reply = answer_within(&answer).expect("a whole answer");
    assert_eq!((reply.status, reply.text().as_str()), (200, "0123456789"));
}

/// A body that never ends is a legitimate stream: the caller gets its bytes for as long
/// as it reads. When the caller leaves, the server must give the connection up.
#[test]
fn hostile_response_body_that_never_ends() {
    const READ: usize = 1 << 20;
    let mut lone = LonePeer::start();
    let server_url = lone.server.request_url();
    let caller_thread = thread::spawn(move || {
        let response = caller()
            .get(server_url)
            .header("X-PROXY-DESTINATION", "http://internal.example/endless")
            .call()
            .expect("an answer");
        let status = response.status().as_u16();
        let mut body = response.into_body().into_reader();
        let mut first = vec![0u8; READ];
        body.read_exact(&mut first).expect("the first MiB");
        // Leaving now: dropping the unfinished body closes the connection.
        (status, first.iter().all(|b| *b == b'z'))
    });
    match lone.peer.read_message() {
        Msg::Text(head) => assert!(head.contains("endless"), "{head}"),
        other => panic!("expected the request head, got {other:?}"),
    }
    assert!(matches!(lone.peer.read_message(), Msg::Binary(_)));
    let head = br#"{"StatusCode":200,"Header":{},"ContentLength":-1}"#;
    lone.peer.send(TEXT, true, head).expect("head");
    let mut writer = lone.peer.try_clone();
    let (done_tx, done_rx) = bounded(1);
    thread::spawn(move || {
        let piece = vec![b'z'; 4096];
        let mut sent = 0u64;
        let mut result = writer.send(BINARY, false, &piece);
        while result.is_ok() {
            sent += piece.len() as u64;
            result = writer.send(CONTINUE, false, &piece);
        }
        let _ = done_tx.send(sent);
    });
    let (status, intact) = caller_thread.join().expect("caller");
    assert_eq!(status, 200);
    assert!(intact, "the caller got other bytes than the peer sent");
    let sent = done_rx
        .recv_timeout(READY)
        .expect("the server kept reading a body nobody wanted");
    eprintln!("peer sent {sent} bytes before the server hung up");
    lone.server.proc.wait_log("writing to the caller failed");
    lone.assert_recovers();
}

/// 10^5 pings while the server waits for the response head, then a valid answer: the
/// server answers the pings (or gives up on the flood) and the caller gets an answer.
#[test]
fn hostile_ping_flood_before_the_response_head() {
    const PINGS: usize = 100_000;
    let mut lone = LonePeer::start();
    let answer = lone.request();
    // Pongs come back while we write: drain them so neither side blocks on a full buffer.
    let mut reader = lone.peer.try_clone();
    let draining = thread::spawn(move || {
        let mut pongs = 0usize;
        while let Ok(Some(frame)) = reader.read_frame() {
            pongs += usize::from(frame.opcode == PONG);
        }
        pongs
    });
    let ping = encode_frame(PING, true, b"", lone.peer.mask());
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * PINGS)
        .collect();
    let head = br#"{"StatusCode":200,"Header":{"Content-Length":["2"]},"ContentLength":2}"#;
    let flooded = lone
        .peer
        .send_raw(&flood)
        .and_then(|()| lone.peer.send(TEXT, true, head))
        .and_then(|()| lone.peer.send(BINARY, true, b"ok"));
    match answer_within(&answer) {
        Ok(reply) if reply.status == 200 => {
            flooded.expect("the server took the whole flood");
            assert_eq!(reply.text(), "ok");
        }
        Ok(reply) => assert_526_naming(&Ok(reply), "ping"),
        Err(e) => panic!("the caller got no proper answer: {e}"),
    }
    // The server may have cut the connection already (a flood is refused).
    let _ = lone.peer.stream.shutdown(std::net::Shutdown::Both);
    let pongs = draining.join().expect("drain");
    eprintln!("{pongs} pongs for {PINGS} pings");
    lone.assert_recovers();
}

// ---- Exchange at the client: a hostile server sends the wrong frames ----

/// Sends `frames` as the request on the client's first connection; the client must end
/// that connection (it may first answer 527), log `problem`, register again and serve.
fn assert_client_drops(frames: impl FnOnce(&HostileServer, &mut RawWs) + Send, problem: &str) {
    let (server, answered, _) = HostileServer::feed(frames, true);
    assert_527_naming(&answered, problem, false);
    server.client.wait_log(problem);
    server.assert_recovers();
}

#[test]
fn hostile_binary_frame_where_the_request_head_belongs() {
    assert_client_drops(
        |server, ws| {
            let head = server.head("GET", "/hello", 0);
            let _ = ws
                .send(BINARY, true, head.as_bytes())
                .and_then(|()| ws.send(BINARY, true, b""));
        },
        "expected a request head, got a binary message",
    );
}

#[test]
fn hostile_text_frame_where_the_request_body_belongs() {
    assert_client_drops(
        |server, ws| {
            let head = server.head("GET", "/hello", 0);
            let _ = ws
                .send(TEXT, true, head.as_bytes())
                .and_then(|()| ws.send(TEXT, true, b"not a body"));
        },
        "expected a binary body message, got a text message",
    );
}

/// The same, for a request with a body that the client streams to the internal API: the
/// text message must end the connection, whatever its payload looks like. This payload
/// happens to be a binary frame header announcing 4096 bytes that never come.
#[test]
fn hostile_text_frame_where_an_uploaded_body_belongs() {
    assert_client_drops(
        |server, ws| {
            let head = server.head("POST", "/upload-count", 5);
            let _ = ws
                .send(TEXT, true, head.as_bytes())
                .and_then(|()| ws.send(TEXT, true, &frame_header(BINARY, true, 4096, None)));
        },
        "expected a binary body message, got a text message",
    );
}

#[test]
fn hostile_masked_frame_from_the_server() {
    assert_client_drops(
        |server, ws| {
            let head = server.head("GET", "/hello", 0);
            let masked = encode_frame(TEXT, true, head.as_bytes(), Some([1, 2, 3, 4]));
            let _ = ws.send_raw(&masked);
        },
        "masked frame from a server",
    );
}

#[test]
fn hostile_request_head_that_never_ends() {
    assert_client_drops(
        |_, ws| {
            let piece = vec![b' '; 64 * 1024];
            let mut result = ws.send(TEXT, false, b"{");
            while result.is_ok() {
                result = ws.send(CONTINUE, false, &piece);
            }
        },
        "a request head is larger than the limit of 1048576 bytes",
    );
}

/// A close frame in the middle of an upload; once the client has answered it, we close
/// the TCP connection, as RFC 6455 has the server do.
#[test]
fn hostile_close_frame_in_the_middle_of_a_request_body() {
    assert_client_drops(close_mid_upload, "WebSocket closed by peer");
}

/// A close frame in the middle of an upload, the TCP connection then left open. Nothing
/// can follow a close frame, so the client has nothing left to wait for: it must give the
/// exchange up (and end the thread) at once.
#[test]
fn hostile_close_frame_in_the_middle_of_a_request_body_socket_left_open() {
    let (server, answered, _open) = HostileServer::feed(close_mid_upload, false);
    assert_527_naming(&answered, "WebSocket closed by peer", false);
    server.client.wait_log("WebSocket closed by peer");
    server.assert_recovers();
}

#[test]
fn hostile_request_head_announcing_four_exbibytes() {
    assert_client_drops(
        |_, ws| {
            let _ = ws.send_raw(&frame_header(TEXT, true, 1 << 62, None));
        },
        "a request head is larger than the limit of 1048576 bytes",
    );
}

/// Half of a 10-byte upload, then a close frame.
fn close_mid_upload(server: &HostileServer, ws: &mut RawWs) {
    let head = server.head("POST", "/upload-count", 10);
    let _ = ws
        .send(TEXT, true, head.as_bytes())
        .and_then(|()| ws.send(BINARY, false, b"hello"))
        .and_then(|()| ws.send(CLOSE, true, &1000u16.to_be_bytes()));
}

/// 10^5 pings while the connection is idle, then a request: the client answers the pings
/// and then the request.
#[test]
fn hostile_ping_flood_at_the_client() {
    const PINGS: usize = 100_000;
    let (server, mut ws) = HostileServer::start();
    let mut reader = ws.try_clone();
    let (frames_tx, frames_rx) = bounded(16);
    let draining = thread::spawn(move || {
        let mut pongs = 0usize;
        while let Ok(Some(frame)) = reader.read_frame() {
            match frame.opcode {
                PONG => pongs += 1,
                _ => {
                    if frames_tx.send(frame).is_err() {
                        break;
                    }
                }
            }
        }
        pongs
    });
    let ping = encode_frame(PING, true, b"", None);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * PINGS)
        .collect();
    ws.send_raw(&flood).expect("flood");
    ws.send(TEXT, true, server.head("GET", "/hello", 0).as_bytes())
        .expect("head");
    ws.send(BINARY, true, b"").expect("body");
    let head = frames_rx.recv_timeout(READY).expect("a response head");
    assert_eq!(head.opcode, TEXT);
    let head = String::from_utf8_lossy(&head.payload).into_owned();
    assert!(head.contains(r#""StatusCode":200"#), "{head}");
    let body = frames_rx.recv_timeout(READY).expect("a response body");
    assert_eq!(
        (body.opcode, body.payload.as_slice()),
        (BINARY, &b"hello world"[..])
    );
    ws.stream
        .shutdown(std::net::Shutdown::Both)
        .expect("shutdown");
    let pongs = draining.join().expect("drain");
    eprintln!("{pongs} pongs for {PINGS} pings");
    server.assert_recovers();
}
