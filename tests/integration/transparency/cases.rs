//! The cases: what real HTTP servers send and real callers ask, as exact bytes. Each case
//! is a request and the upstream's script of answer bytes; the harness runs it straight to
//! the upstream and through wsp, and compares.

use std::time::Duration;

use super::caller::{Body, Call};
use super::upstream::Step;

/// A request and the upstream's answer to it.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub call: Call,
    pub script: Vec<Step>,
    /// wsp answers this status, with a text holding these words, instead of relaying:
    /// a difference on purpose, which the README's table states.
    pub refused: Option<(u16, &'static str)>,
}

impl Case {
    /// `GET /cases/<name>` answered with `answer`, sent at once.
    fn get(name: &'static str, answer: impl AsRef<[u8]>) -> Case {
        Case::new(name, "GET", vec![Step::Send(answer.as_ref().to_vec())])
    }

    pub(super) fn new(name: &'static str, method: &str, script: Vec<Step>) -> Case {
        Case {
            name,
            call: Call {
                method: method.to_string(),
                target: format!("/cases/{name}"),
                headers: Vec::new(),
                body: Body::None,
                expect_continue: false,
            },
            script,
            refused: None,
        }
    }

    fn refused(mut self, status: u16, words: &'static str) -> Case {
        self.refused = Some((status, words));
        self
    }

    pub(super) fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Case {
        self.call
            .headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    pub(super) fn target(mut self, target: impl Into<String>) -> Case {
        self.call.target = target.into();
        self
    }

    /// A body sent with its `Content-Length`.
    pub(super) fn body(self, body: impl AsRef<[u8]>) -> Case {
        let body = body.as_ref().to_vec();
        let mut case = self.header("Content-Length", body.len().to_string());
        case.call.body = Body::Length(body);
        case
    }

    fn chunked(self, chunks: Vec<Vec<u8>>) -> Case {
        let mut case = self.header("Transfer-Encoding", "chunked");
        case.call.body = Body::Chunked(chunks);
        case
    }
}

/// The answer the upstream gives to the caller's second request on a connection, which
/// shows the connection stayed in step.
pub fn again() -> Case {
    Case::get("again", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
}

/// An answer with a `Content-Length` body.
fn sized(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The answer that echoes nothing but says the request came: the request side's cases
/// compare what the upstream saw.
fn ok() -> Vec<Step> {
    vec![Step::Send(sized("200 OK", "", b"seen"))]
}

/// Statuses of every class, each with an empty and a non-empty body.
fn statuses() -> Vec<Case> {
    let mut cases = vec![
        Case::get("200-empty", sized("200 OK", "", b"")),
        Case::get(
            "200-text",
            sized("200 OK", "Content-Type: text/plain\r\n", b"hello"),
        ),
        Case::new(
            "201-created-empty",
            "POST",
            vec![Step::Send(sized(
                "201 Created",
                "Location: /things/7\r\n",
                b"",
            ))],
        )
        .body(b"{\"a\":1}")
        .header("Content-Type", "application/json"),
        Case::new(
            "202-delete-empty",
            "DELETE",
            vec![Step::Send(sized("202 Accepted", "", b""))],
        ),
        Case::get(
            "301-location-empty",
            sized(
                "301 Moved Permanently",
                "Location: http://elsewhere.example/\r\n",
                b"",
            ),
        ),
        Case::get(
            "302-location-body",
            sized(
                "302 Found",
                "Location: /hello\r\nContent-Type: text/html\r\n",
                b"<a href=\"/hello\">moved</a>",
            ),
        ),
        Case::get(
            "400-json",
            sized(
                "400 Bad Request",
                "Content-Type: application/json\r\n",
                b"{\"error\":\"bad\"}",
            ),
        ),
        Case::get(
            "401-challenge",
            sized(
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"api\"\r\n",
                b"",
            ),
        ),
        Case::get("404-empty", sized("404 Not Found", "", b"")),
        Case::get(
            "429-retry-after",
            sized("429 Too Many Requests", "Retry-After: 30\r\n", b"slow down"),
        ),
        Case::get("500-empty", sized("500 Internal Server Error", "", b"")),
        Case::get("500-text", sized("500 Internal Server Error", "", b"boom")),
        Case::get(
            "503-empty",
            sized("503 Service Unavailable", "Retry-After: 1\r\n", b""),
        ),
        Case::get(
            "418-teapot",
            sized("418 I'm a teapot", "", b"short and stout"),
        ),
        Case::get("599-unknown", sized("599 Network Connect Timeout", "", b"")),
        Case::get(
            "200-no-reason",
            b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok".as_slice(),
        ),
        Case::get(
            "299-no-reason-empty",
            b"HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n".as_slice(),
        ),
        Case::get(
            "206-partial",
            sized(
                "206 Partial Content",
                "Content-Range: bytes 0-3/10\r\n",
                b"0123",
            ),
        )
        .header("Range", "bytes=0-3"),
        Case::get(
            "gzip-not-decoded",
            sized(
                "200 OK",
                "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
                &[
                    0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
        )
        .header("Accept-Encoding", "gzip"),
        Case::get(
            "1mib-binary",
            sized(
                "200 OK",
                "Content-Type: application/octet-stream\r\n",
                &crate::support::random_bytes(1 << 20, 12),
            ),
        ),
    ];
    cases.extend(bodiless());
    cases
}

/// Answers that carry no body whatever their headers say, and interim answers.
fn bodiless() -> Vec<Case> {
    vec![
        Case::get("204-no-content", b"HTTP/1.1 204 No Content\r\nX-Request-Id: 42\r\n\r\n".as_slice()),
        Case::get("304-not-modified", b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n".as_slice())
            .header("If-None-Match", "\"v1\""),
        Case::new("head-with-length", "HEAD", vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n".to_vec())]),
        Case::new("head-chunked", "HEAD", vec![Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec())]),
        Case::get("103-early-hints", b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nLink: </style.css>; rel=preload\r\nContent-Length: 4\r\n\r\npage".as_slice()),
        Case::new("100-continue-upload", "PUT", vec![
            Step::ContinueIfAsked,
            Step::ReadBody,
            Step::Send(sized("201 Created", "", b"stored")),
        ])
        .header("Expect", "100-continue")
        .body(vec![b'x'; 10_000])
        .continuing(),
    ]
}

/// Bodies framed every way a server frames them.
fn framings() -> Vec<Case> {
    let mut ones = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..3000 {
        ones.extend_from_slice(format!("1\r\n{}\r\n", (b'a' + (i % 26) as u8) as char).as_bytes());
    }
    ones.extend_from_slice(b"0\r\n\r\n");
    vec![
        Case::get("chunked-empty", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".as_slice()),
        Case::get("chunked-extensions", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;x\r\n world\r\n0;end=1\r\n\r\n".as_slice()),
        Case::get("chunked-trailers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n4\r\ndata\r\n0\r\nX-Checksum: abc123\r\n\r\n".as_slice()),
        Case::get("chunked-3000-ones", ones),
        Case::new("close-delimited-11", "GET", vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end".to_vec()), Step::Close]),
        Case::new("http10-length", "GET", vec![Step::Send(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nold ok".to_vec()), Step::Close]),
        Case::new("http10-close-delimited", "GET", vec![Step::Send(b"HTTP/1.0 200 OK\r\nServer: ancient\r\n\r\nuntil close".to_vec()), Step::Close]),
        Case::new("http10-empty", "GET", vec![Step::Send(b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec()), Step::Close]),
        Case::new("upstream-closes-after", "GET", vec![Step::Send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye".to_vec()), Step::Close]),
        // Both framings: chunked wins (RFC 9112 §6.3), and the length must not be passed on.
        Case::get("chunked-and-length", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".as_slice()),
        Case::get("length-twice-same", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello".as_slice()),
        Case::new("short-body", "GET", vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly 20 bytes here..".to_vec()), Step::Close]),
        Case::new("short-chunked", "GET", vec![Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec()), Step::Close]),
    ]
}

/// Heads near the limits, and headers that a careless proxy reorders, merges or mangles.
fn heads() -> Vec<Case> {
    let big = "v".repeat(30_000);
    let mut cookies = String::new();
    for i in 0..60 {
        cookies.push_str(&format!("Set-Cookie: c{i}=v{i}; Path=/; HttpOnly\r\n"));
    }
    vec![
        Case::get("header-30kb", sized("200 OK", &format!("X-Big: {big}\r\n"), b"big")),
        Case::get("set-cookie-60", sized("200 OK", &cookies, b"cookies")),
        Case::get("repeated-in-order", sized("200 OK", "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\nCache-Control: no-cache\r\nCache-Control: no-store, private\r\nX-A: 2\r\n", b"order")),
        Case::get("header-utf8", sized("200 OK", "X-Name: caf\u{e9} \u{2713}\r\nContent-Disposition: attachment; filename=\"r\u{e9}sum\u{e9}.pdf\"\r\n", b"utf8")),
        // Latin-1 bytes cannot travel in the wire's JSON text: a clear error, not a
        // header silently dropped or altered.
        Case::get("header-latin1", [b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\n".as_slice(), b"Content-Length: 6\r\n\r\nlatin1"].concat())
            .refused(527, "is not UTF-8 (byte 0xE9 at 3)"),
        Case::get("header-empty-value", sized("200 OK", "X-Empty:\r\nX-Spaces:    \r\n", b"empty")),
        Case::get("header-odd-case", sized("200 OK", "x-lower: a\r\nX-UPPER: b\r\nwWw-AuThEnTiCaTe: Bearer\r\n", b"case")),
        Case::get("connection-names-header", sized("200 OK", "Connection: X-Hop\r\nX-Hop: dropped\r\nX-Kept: kept\r\nKeep-Alive: timeout=5\r\n", b"hop")),
    ]
}

/// The request side: what the caller sends must reach the upstream as sent.
fn requests() -> Vec<Case> {
    let long_query: String = (0..700).map(|i| format!("k{i:03}=v{i:03}&")).collect();
    vec![
        Case::new("post-empty", "POST", ok()).body(b""),
        Case::new("post-chunked", "POST", ok()).chunked(vec![b"hello ".to_vec(), b"chunked ".to_vec(), b"world".to_vec()]),
        Case::new("post-chunked-empty", "POST", ok()).chunked(vec![]),
        Case::new("put-1mib", "PUT", ok()).body(crate::support::random_bytes(1 << 20, 7)).header("Content-Type", "application/octet-stream"),
        Case::new("method-patch", "PATCH", ok()).body(b"{\"op\":\"x\"}").header("Content-Type", "application/merge-patch+json"),
        Case::new("method-options", "OPTIONS", ok()).header("Origin", "http://example.com").header("Access-Control-Request-Method", "PUT"),
        Case::new("method-propfind", "PROPFIND", ok()).header("Depth", "1").body(b"<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><allprop/></propfind>"),
        Case::new("method-purge", "PURGE", ok()),
        Case::new("delete-with-body", "DELETE", ok()).body(b"why"),
        Case::new("percent-encoded", "GET", ok()).target("/cases/percent-encoded/a%2Fb/%20c/%7Euser/caf%C3%A9;p=1?q=%26x%3D1&y=a+b&z=%E2%82%AC&e=&&f"),
        Case::new("raw-odd-bytes", "GET", ok()).target("/cases/raw-odd-bytes/a'b(c)*!$,@:~[x]?k=[1]{2}|^`"),
        Case::new("url-7kb", "GET", ok()).target(format!("/cases/url-7kb?{long_query}")),
        Case::new("request-headers-order", "GET", ok())
            .header("X-A", "1").header("X-B", "2").header("X-A", "3")
            .header("Accept", "application/json").header("User-Agent", "harness/1"),
        Case::new("no-user-agent", "GET", ok()),
        // wsp's server takes ASCII request heads only (tiny_http's); the caller learns why.
        Case::new("request-header-utf8", "GET", ok())
            .header("X-Name", "caf\u{e9}")
            .refused(400, "header line is not ASCII"),
        Case::new("cookie-and-auth", "GET", ok()).header("Cookie", "a=1; b=2").header("Authorization", "Bearer t0ken"),
    ]
}

/// Every case that answers within a second.
pub fn quick() -> Vec<Case> {
    let mut cases = statuses();
    cases.extend(framings());
    cases.extend(heads());
    cases.extend(requests());
    cases
}

/// Cases whose bytes trickle or wait, each worth its own test.
pub fn slow() -> Vec<Case> {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n".to_vec();
    let sse = |n: usize| format!("id: {n}\ndata: event {n}\n\n").into_bytes();
    vec![
        Case::new("trickled-head", "GET", vec![Step::Trickle(head), Step::Send(b"hello world!".to_vec())]),
        Case::new("trickled-body", "GET", vec![
            Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n".to_vec()),
            Step::Trickle(b"0123456789abcdefghijklmnopqrstuvwxyz!?.,".to_vec()),
        ]),
        Case::new("sse-events", "GET", vec![
            Step::Send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".to_vec()),
            Step::Send(sse(1)),
            Step::AwaitCaller("event 1\n"),
            Step::Send(sse(2)),
            Step::AwaitCaller("event 2\n"),
            Step::Send(sse(3)),
            Step::Close,
        ]).header("Accept", "text/event-stream"),
        Case::new("sse-chunked", "GET", vec![
            Step::Send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
            Step::Send(b"e\r\ndata: first\n\n\r\n".to_vec()),
            Step::AwaitCaller("first\n"),
            Step::Send(b"f\r\ndata: second\n\n\r\n0\r\n\r\n".to_vec()),
        ]),
    ]
}

/// A long-poll: the answer comes after 20 s of silence.
pub fn long_poll() -> Case {
    Case::new(
        "long-poll-20s",
        "GET",
        vec![
            Step::Pause(Duration::from_secs(20)),
            Step::Send(sized(
                "200 OK",
                "Content-Type: application/json\r\n",
                b"{\"events\":[]}",
            )),
        ],
    )
}

impl Case {
    /// The caller waits for `100 Continue` before sending the body.
    fn continuing(mut self) -> Case {
        self.call.expect_continue = true;
        self
    }
}
