//! Whether a parsed head can become an HTTP message: checked with the `http` crate (what
//! ureq builds requests from on the client) and with the RFC 9110 grammar written out
//! here, independently of wsp's own checks.

use wsp::headers::Headers;
use wsp::protocol::{RequestHead, ResponseHead};

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token`: one or more `tchar`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Asserts what a request head wsp accepted must satisfy.
///
/// # Panics
/// When it does not.
pub fn check_request(head: &RequestHead) {
    assert!(is_token(&head.method), "method {:?}", head.method);
    assert!(
        http::Method::from_bytes(head.method.as_bytes()).is_ok(),
        "http refuses method {:?}",
        head.method
    );
    assert!(!head.url.is_empty(), "empty URL accepted");
    assert!(
        head.content_length >= -1,
        "ContentLength {}",
        head.content_length
    );
    check_headers(&head.header);
}

/// Asserts what a response head wsp accepted must satisfy.
///
/// # Panics
/// When it does not.
pub fn check_response(head: &ResponseHead) {
    assert!((200..=999).contains(&head.status), "status {}", head.status);
    assert!(
        http::StatusCode::from_u16(head.status).is_ok(),
        "http refuses status {}",
        head.status
    );
    assert!(
        head.content_length >= -1,
        "ContentLength {}",
        head.content_length
    );
    check_headers(&head.header);
}

/// Names are tokens, values have no CR, LF, NUL or other control byte but tab.
fn check_headers(headers: &Headers) {
    for (name, values) in headers {
        assert!(is_token(name), "header name {name:?}");
        assert!(
            http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "http refuses header name {name:?}"
        );
        for value in values {
            let bad = value
                .bytes()
                .any(|b| matches!(b, b'\r' | b'\n' | 0) || (b < 0x20 && b != b'\t') || b == 0x7f);
            assert!(!bad, "header {name} value {value:?}");
            assert!(
                http::HeaderValue::from_bytes(value.as_bytes()).is_ok(),
                "http refuses header {name} value {value:?}"
            );
        }
    }
}
