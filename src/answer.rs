//! The one form of every answer wsp makes itself, whichever side makes it: the server's
//! 526, 504, 4xx and 503, the client's 527 and 504. A caller, or a script, reads them all
//! the same way: `text/plain; charset=utf-8`, the message, a newline (what Go's
//! `http.Error` writes, and so what the Go wsp server's own errors look like).
//!
//! How each side puts it on the wire stays with that side: the server in a tiny_http
//! response (`server::reply::text_response`), the client in a response head and body message
//! (`protocol::ResponseHead::error`).

/// The `Content-Type` of every answer wsp makes itself.
pub const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The reason phrase of the status line wsp writes for `status`: the registered one, and
/// for wsp's own statuses (registered nowhere) words that say whose error it is; the
/// vendored tiny_http gives its answers the same (its patch 14).
pub fn reason(status: u16) -> &'static str {
    match status {
        526 => "wsp Server Error",
        527 => "wsp Client Error",
        _ => ureq::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
    }
}

/// The body of an answer saying `text`: the text and a newline, so that it ends a line on
/// a terminal (`curl` prints it as it is) and in a log that quotes it.
pub fn body(text: &str) -> String {
    format!("{text}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_status_has_its_reason() {
        assert_eq!(super::reason(200), "OK");
        assert_eq!(super::reason(527), "wsp Client Error");
        let tiny = tiny_http::StatusCode(526).default_reason_phrase();
        assert_eq!(
            super::reason(526),
            tiny,
            "the same phrase from both writers"
        );
        assert_eq!(super::reason(599), "");
    }

    #[test]
    fn body_is_the_text_and_a_newline() {
        assert_eq!(super::body("No proxy available"), "No proxy available\n");
    }
}
