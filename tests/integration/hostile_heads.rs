//! Hostile or broken JSON heads: response heads (message 3) fed to the real server by a
//! hand-written client, request heads (message 1) fed to the real client by a
//! hand-written server. A bad head must get an answer that names what is wrong (526 to
//! the caller at the server, 527 from the client where the protocol has one), the
//! connection it came on is given up, no thread stays behind, and the process goes on
//! serving.

use std::thread;

use crate::support::rawpeer::*;

/// Ten MiB: ten times the head limit.
const HUGE: usize = 10 << 20;

// ---- Response heads, at the server ----

/// The lone peer answers a request with `misbehave` (on a writer thread: some answers are
/// written until the server hangs up); the caller must get a 526 naming `problem`.
fn assert_response_head_refused(
    misbehave: impl FnOnce(&mut RawWs) + Send + 'static,
    problem: &str,
) {
    let mut lone = LonePeer::start();
    let answer = lone.request();
    let mut writer = lone.peer.try_clone();
    let writing = thread::spawn(move || misbehave(&mut writer));
    assert_526_naming(&answer_within(&answer), problem);
    lone.assert_dropped();
    writing.join().expect("writer");
    lone.server.proc.wait_log(problem);
    lone.assert_recovers();
}

/// Sends `head` as message 3 and an empty message 4, ignoring write errors (the server
/// may hang up first).
fn answer_with(head: impl AsRef<[u8]> + Send + 'static) -> impl FnOnce(&mut RawWs) + Send {
    move |ws| {
        let _ = ws
            .send(TEXT, true, head.as_ref())
            .and_then(|()| ws.send(BINARY, true, b""));
    }
}

#[test]
fn hostile_response_head_with_a_string_status() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":"200","Header":{},"ContentLength":0}"#),
        "invalid type: string \"200\", expected u16",
    );
}

#[test]
fn hostile_response_head_without_fields() {
    assert_response_head_refused(answer_with("{}"), "missing field `StatusCode`");
}

#[test]
fn hostile_response_head_that_is_not_json() {
    assert_response_head_refused(
        answer_with("HTTP/1.1 200 OK"),
        "invalid head: response head",
    );
}

#[test]
fn hostile_response_head_of_ten_mib_in_one_frame() {
    let head = format!(
        r#"{{"StatusCode":200,"Header":{{"X":["{}"]}}}}"#,
        "a".repeat(HUGE)
    );
    assert_response_head_refused(
        answer_with(head),
        "a response head is larger than the limit of 1048576 bytes",
    );
}

#[test]
fn hostile_response_head_of_ten_mib_in_small_frames() {
    assert_response_head_refused(
        |ws| {
            let piece = vec![b' '; 64 * 1024];
            let mut result = ws.send(TEXT, false, br#"{"StatusCode":200,"Header":"#);
            for _ in 0..HUGE / piece.len() {
                result = result.and_then(|()| ws.send(CONTINUE, false, &piece));
            }
            let _ = result.and_then(|()| ws.send(CONTINUE, true, b"{}}"));
        },
        "a response head is larger than the limit of 1048576 bytes",
    );
}

/// Refused from the frame header, before any byte is awaited or allocated.
#[test]
fn hostile_response_head_announcing_four_exbibytes() {
    assert_response_head_refused(
        |ws| {
            let header = frame_header(TEXT, true, 1 << 62, ws.mask());
            ws.send_raw(&header).expect("header");
        },
        "a response head is larger than the limit of 1048576 bytes",
    );
}

#[test]
fn hostile_response_head_with_invalid_utf8() {
    assert_response_head_refused(
        answer_with(b"{\"StatusCode\":200,\"Header\":{\"X\":[\"\xff\xfe\"]}}".to_vec()),
        "a response head is not valid UTF-8",
    );
}

#[test]
fn hostile_response_head_with_status_zero() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":0,"Header":{},"ContentLength":0}"#),
        "status code 0 is outside 200-999",
    );
}

#[test]
fn hostile_response_head_with_status_one_thousand() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":1000,"Header":{},"ContentLength":0}"#),
        "status code 1000 is outside 200-999",
    );
}

#[test]
fn hostile_response_head_with_a_status_beyond_u16() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":70000,"Header":{},"ContentLength":0}"#),
        "invalid value: integer `70000`, expected u16",
    );
}

#[test]
fn hostile_response_header_name_with_a_space() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":200,"Header":{"Bad Name":["x"]},"ContentLength":0}"#),
        "header name \"Bad Name\" is not a token",
    );
}

#[test]
fn hostile_response_header_name_with_a_colon() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":200,"Header":{"X-A:B":["x"]},"ContentLength":0}"#),
        "header name \"X-A:B\" is not a token",
    );
}

#[test]
fn hostile_response_header_value_with_cr_lf() {
    assert_response_head_refused(
        answer_with(
            r#"{"StatusCode":200,"Header":{"X-Split":["a\r\nSet-Cookie: evil=1"]},"ContentLength":0}"#,
        ),
        "header X-Split has a value with control characters",
    );
}

#[test]
fn hostile_response_header_value_with_nul() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":200,"Header":{"X-Nul":["a\u0000b"]},"ContentLength":0}"#),
        "header X-Nul has a value with control characters",
    );
}

#[test]
fn hostile_response_head_with_a_negative_length() {
    assert_response_head_refused(
        answer_with(r#"{"StatusCode":200,"Header":{},"ContentLength":-2}"#),
        "ContentLength -2 is below -1",
    );
}

/// An unknown field nested 100,000 levels deep, within the size limit. Unknown fields
/// are ignored, as Go does; what matters is that skipping it does not exhaust the small
/// stack of the handler thread: the head is relayed and the connection stays in service.
#[test]
fn hostile_response_head_nested_deeply() {
    let mut lone = LonePeer::start();
    for _ in 0..2 {
        let answer = lone.request();
        lone.peer
            .send(
                TEXT,
                true,
                deeply_nested(r#"{"StatusCode":200,"Deep":"#).as_bytes(),
            )
            .expect("head");
        lone.peer.send(BINARY, true, b"deep").expect("body");
        let reply = answer_within(&answer).expect("an answer");
        assert_eq!((reply.status, reply.text().as_str()), (200, "deep"));
    }
    lone.assert_recovers();
}

/// `prefix`, an array nested 100,000 levels deep, and `}`.
fn deeply_nested(prefix: &str) -> String {
    let depth = 100_000;
    format!("{prefix}{}{}}}", "[".repeat(depth), "]".repeat(depth))
}

// ---- Request heads, at the client ----

/// Sends `frames` as the request on the client's first connection. The client must end
/// that connection, first answering 527 with a text naming `problem` when `must_answer`
/// (it may do so anyway otherwise); its log must name `problem`; then it must register
/// again and serve.
fn assert_request_refused(
    frames: impl FnOnce(&HostileServer, &mut RawWs) + Send,
    problem: &str,
    must_answer: bool,
) {
    let (server, answered, _) = HostileServer::feed(frames, true);
    assert_527_naming(&answered, problem, must_answer);
    server.client.wait_log(problem);
    server.assert_recovers();
}

/// Sends `head` as message 1 and an empty message 2, ignoring write errors (the client
/// may hang up first).
fn request_with(head: impl AsRef<[u8]> + Send) -> impl FnOnce(&HostileServer, &mut RawWs) + Send {
    move |_, ws| {
        let _ = ws
            .send(TEXT, true, head.as_ref())
            .and_then(|()| ws.send(BINARY, true, b""));
    }
}

#[test]
fn hostile_request_head_that_is_not_json() {
    assert_request_refused(
        request_with("GET /hello HTTP/1.1"),
        "invalid head: request head: expected value at line 1 column 1",
        true,
    );
}

#[test]
fn hostile_request_head_with_wrong_types() {
    assert_request_refused(
        request_with(r#"{"Method":1,"URL":"http://127.0.0.1:1/","ContentLength":"0"}"#),
        "invalid type: integer `1`, expected a string",
        true,
    );
}

#[test]
fn hostile_request_head_without_a_url() {
    assert_request_refused(
        request_with(r#"{"Method":"GET"}"#),
        "missing field `URL`",
        true,
    );
}

#[test]
fn hostile_request_head_with_a_bad_method() {
    assert_request_refused(
        request_with(r#"{"Method":"GE T","URL":"http://127.0.0.1:1/","ContentLength":0}"#),
        "method \"GE T\" is not a token",
        true,
    );
}

#[test]
fn hostile_request_head_with_an_empty_url() {
    assert_request_refused(
        request_with(r#"{"Method":"GET","URL":"","ContentLength":0}"#),
        "empty URL",
        true,
    );
}

#[test]
fn hostile_request_header_value_with_cr_lf() {
    assert_request_refused(
        request_with(
            r#"{"Method":"GET","URL":"http://127.0.0.1:1/","Header":{"X-Split":["a\r\nHost: evil"]},"ContentLength":0}"#,
        ),
        "header X-Split has a value with control characters",
        true,
    );
}

#[test]
fn hostile_request_head_with_invalid_utf8() {
    assert_request_refused(
        request_with(b"{\"Method\":\"GET\",\"URL\":\"http://\xff\xfe/\"}".to_vec()),
        "a request head is not valid UTF-8",
        false,
    );
}

#[test]
fn hostile_request_head_of_ten_mib() {
    let head = format!(
        r#"{{"Method":"GET","URL":"http://127.0.0.1:1/","Header":{{"X":["{}"]}}}}"#,
        "a".repeat(HUGE)
    );
    assert_request_refused(
        request_with(head),
        "a request head is larger than the limit of 1048576 bytes",
        false,
    );
}

/// A head that parses but whose URL cannot be requested is the internal API's kind of
/// failure: 527 naming it, and the connection stays in service. So is a head with an
/// unknown field nested 100,000 levels deep: skipped, like Go, without exhausting the
/// connection thread's small stack.
#[test]
fn hostile_request_heads_answered_527_on_a_connection_that_stays() {
    let (server, mut ws) = HostileServer::start();
    let nested = deeply_nested(r#"{"Method":"GET","URL":"http://127.0.0.1:1/","Deep":"#);
    let cases = [
        (bad_url_head("not a url"), "bad URL \"not a url\""),
        (
            bad_url_head("ftp://127.0.0.1/file"),
            "unsupported protocol scheme \"ftp\"",
        ),
        // Nested deeply in an unknown field, which is skipped: port 1 refuses.
        (nested, "http://127.0.0.1:1/"),
    ];
    for (head, problem) in cases {
        ws.send(TEXT, true, head.as_bytes()).expect("head");
        ws.send(BINARY, true, b"").expect("body");
        match ws.read_message() {
            Msg::Text(head) => assert!(head.contains(r#""StatusCode":527"#), "{head}"),
            other => panic!("expected a 527 head, got {other:?}"),
        }
        match ws.read_message() {
            Msg::Binary(text) => {
                let text = String::from_utf8_lossy(&text);
                assert!(text.contains(problem), "{text:?} does not name {problem:?}");
            }
            other => panic!("expected the 527 text, got {other:?}"),
        }
    }
    // The same connection still serves.
    assert_relays_hello(&server, &mut ws);
}

fn bad_url_head(url: &str) -> String {
    format!(r#"{{"Method":"GET","URL":"{url}","Header":{{}},"ContentLength":0}}"#)
}
