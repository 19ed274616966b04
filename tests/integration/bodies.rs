//! Bodies and the parts of a request that a careless proxy rewrites: big bodies in both
//! directions with every method, chunked uploads of unknown length, HEAD, query strings,
//! repeated headers, compressed responses and large streamed downloads.

use std::io::{Cursor, Read};

use ureq::SendBody;

use crate::support::routes::{Fnv1a, PatternReader, GZIP_REPEAT, GZIP_TEXT};
use crate::support::*;

const TEN_MIB: usize = 10 * 1024 * 1024;

/// Asserts that `got` is `expected`, naming the first differing offset instead of dumping
/// megabytes.
fn assert_same_bytes(what: &str, got: &[u8], expected: &[u8]) {
    assert_eq!(got.len(), expected.len(), "{what}: body length");
    if let Some(at) = got.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{what}: bodies differ first at byte {at}");
    }
}

/// POSTs `body` to `url` as a chunked upload: the reader hides its size, so the caller
/// cannot announce a `Content-Length`.
///
/// # Errors
/// When ureq fails: connecting, sending, or reading the answer.
fn post_chunked(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Reply, String> {
    let mut builder = ureq::http::Request::post(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(SendBody::from_owned_reader(Cursor::new(body)))
        .expect("chunked request");
    let fail = |e: &dyn std::fmt::Display| format!("chunked POST {url} {headers:?}: {e}");
    let response = caller().run(request).map_err(|e| fail(&e))?;
    let (parts, body) = response.into_parts();
    let mut bytes = Vec::new();
    body.into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers,
        body: bytes,
    })
}

/// POSTs `body` chunked through the proxy to the upstream's `path`.
fn relay_chunked(stack: &Stack, path: &str, body: Vec<u8>) -> Reply {
    let destination = stack.url(path);
    let headers = [
        ("X-PROXY-DESTINATION", destination.as_str()),
        ("Content-Type", "application/octet-stream"),
    ];
    post_chunked(&stack.server.request_url(), &headers, body).unwrap_or_else(|e| {
        panic!(
            "{e}\nserver log:\n{}\nclient log:\n{}",
            stack.server.proc.log.lock(),
            stack.client.log.lock()
        )
    })
}

#[test]
fn ten_mib_bodies_echo_back_with_every_method() {
    let stack = Stack::start(&[], &[]);
    let mut lengths = Vec::new();
    for (seed, method) in ["POST", "PUT", "PATCH", "DELETE"].into_iter().enumerate() {
        let body = random_bytes(TEN_MIB, seed as u64 + 1);
        let headers = [("Content-Type", "application/octet-stream")];
        let reply = stack.relay(method, "/post", &headers, Some(&body));
        assert_eq!(reply.status, 200, "{method} /post: {:?}", reply.headers);
        assert_same_bytes(method, &reply.body, &body);
        let length = reply.header("content-length").map(str::to_string);
        lengths.push((method, length));
    }
    // The upstream announced each length; the caller must see it too, not a chunked body.
    let expected = Some(TEN_MIB.to_string());
    for (method, length) in lengths {
        assert_eq!(length, expected, "{method}: Content-Length of the echo");
    }
}

#[test]
fn chunked_upload_of_unknown_length_echoes_back() {
    let stack = Stack::start(&[], &[]);
    // The premise: a body of unknown size goes out chunked, with no Content-Length.
    let direct = post_chunked(&stack.url("/echo-headers"), &[], b"abc".to_vec())
        .expect("chunked POST to the upstream directly");
    let seen = Echo::parse(&direct);
    assert_eq!(seen.values("transfer-encoding"), ["chunked"]);
    assert!(
        seen.values("content-length").is_empty(),
        "{:?}",
        seen.headers
    );

    let body = random_bytes(3 * 1024 * 1024 + 17, 42);
    let reply = relay_chunked(&stack, "/post", body.clone());
    assert_eq!(reply.status, 200, "{:?}", reply.headers);
    assert_same_bytes("chunked echo", &reply.body, &body);
}

#[test]
fn chunked_upload_of_twenty_mib_is_counted_and_hashed() {
    let stack = Stack::start(&[], &[]);
    let body = random_bytes(20 * 1024 * 1024 + 3, 7);
    let mut fnv = Fnv1a::default();
    fnv.update(&body);
    let expected_fnv = format!("{:016x}", fnv.finish());
    let expected_count = body.len().to_string();
    let reply = relay_chunked(&stack, "/upload-count", body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        expected_count,
        "bytes that reached the upstream"
    );
    assert_eq!(reply.header("x-body-fnv"), Some(expected_fnv.as_str()));
}

#[test]
fn head_answers_the_get_length_without_a_body() {
    let stack = Stack::start(&[], &[]);
    let get = stack.relay("GET", "/hello", &[], None);
    let head = stack.relay("HEAD", "/hello", &[], None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD got a body: {:?}", head.text());
    assert_eq!(get.header("content-length"), Some("11"));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    // The connection is still usable after a bodiless answer.
    assert_eq!(
        stack.relay("GET", "/hello", &[], None).text(),
        "hello world"
    );
}

#[test]
fn query_string_reaches_the_upstream_unchanged() {
    let stack = Stack::start(&[], &[]);
    let path = "/echo-headers?a=1&a=2&b=%20x";
    let echo = Echo::parse(&stack.relay("GET", path, &[], None));
    assert_eq!(echo.method, "GET");
    assert_eq!(echo.url, path);
}

#[test]
fn repeated_request_headers_keep_their_order() {
    let stack = Stack::start(&[], &[]);
    let headers = [
        ("X-Multi", "first"),
        ("X-Other", "x"),
        ("X-Multi", "second"),
    ];
    let echo = Echo::parse(&stack.relay("PUT", "/echo-headers", &headers, Some(b"")));
    assert_eq!(echo.method, "PUT");
    assert_eq!(echo.values("x-multi"), ["first", "second"]);
    assert_eq!(echo.values("x-other"), ["x"]);
}

// Repeated response headers: the test API has no endpoint that sends one header twice, so
// that direction is not tested here.

#[test]
fn gzip_body_arrives_still_compressed() {
    let stack = Stack::start(&[], &[]);
    let direct = get(&stack.url("/gzip"), &[]);
    let relayed = stack.relay("GET", "/gzip", &[], None);
    assert_eq!(relayed.status, 200);
    assert_eq!(relayed.header("content-encoding"), Some("gzip"));
    assert_eq!(direct.header("content-encoding"), Some("gzip"));
    assert_same_bytes("gzip body", &relayed.body, &direct.body);
    let mut plain = String::new();
    flate2::read::GzDecoder::new(relayed.body.as_slice())
        .read_to_string(&mut plain)
        .expect("the relayed body is valid gzip");
    assert_eq!(plain, GZIP_TEXT.repeat(GZIP_REPEAT));
}

#[test]
fn no_accept_encoding_is_added_upstream() {
    let stack = Stack::start(&[], &[]);
    let direct = Echo::parse(&get(&stack.url("/echo-headers"), &[]));
    assert!(
        direct.values("accept-encoding").is_empty(),
        "the test caller itself sends Accept-Encoding: {:?}",
        direct.headers
    );
    let relayed = Echo::parse(&stack.relay("GET", "/echo-headers", &[], None));
    assert!(
        relayed.values("accept-encoding").is_empty(),
        "the proxy added Accept-Encoding: {:?}",
        relayed.headers
    );
    // And one the caller did send is passed on as it is.
    let sent = [("Accept-Encoding", "gzip")];
    let relayed = Echo::parse(&stack.relay("GET", "/echo-headers", &sent, None));
    assert_eq!(relayed.values("accept-encoding"), ["gzip"]);
}

/// Downloads `path` through the proxy, comparing each read with the `/bytes` pattern as it
/// arrives; returns the response headers and the number of bytes read.
fn stream_pattern(stack: &Stack, path: &str) -> (ureq::http::HeaderMap, u64) {
    let request = ureq::http::Request::builder()
        .uri(stack.server.request_url())
        .header("X-PROXY-DESTINATION", stack.url(path))
        .body(())
        .expect("request");
    let response = caller()
        .run(request)
        .unwrap_or_else(|e| panic!("GET {path} through the proxy: {e}"));
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    let (parts, body) = response.into_parts();
    let mut reader = body.into_reader();
    let mut expected = PatternReader::new(u64::MAX);
    let (mut buf, mut want) = (vec![0; 256 * 1024], vec![0; 256 * 1024]);
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("GET {path}: reading at byte {total}: {e}"));
        if n == 0 {
            return (parts.headers, total);
        }
        expected.read_exact(&mut want[..n]).expect("pattern");
        if let Some(at) = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b) {
            panic!("GET {path}: wrong byte at {}", total + at as u64);
        }
        total += n as u64;
    }
}

#[test]
fn fifty_mb_download_with_length_arrives_exactly() {
    let stack = Stack::start(&[], &[]);
    let (headers, total) = stream_pattern(&stack, "/bytes?n=50000000");
    assert_eq!(total, 50_000_000);
    let length = headers.get("content-length").and_then(|v| v.to_str().ok());
    assert_eq!(length, Some("50000000"));
}

#[test]
fn fifty_mb_chunked_download_arrives_exactly() {
    let stack = Stack::start(&[], &[]);
    let (_, total) = stream_pattern(&stack, "/bytes?n=50000000&chunked=1");
    assert_eq!(total, 50_000_000);
}
