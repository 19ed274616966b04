//! The JSON heads: message 1 (request head, server → client) and message 3 (response
//! head, client → server), field for field as the Go wsp's `HTTPRequest`/`HTTPResponse`.
//!
//! ```json
//! {"Method":"POST","URL":"http://api/post","Header":{"Accept":["*/*"]},"ContentLength":5}
//! {"StatusCode":200,"Header":{"Content-Length":["12"]},"ContentLength":12}
//! ```
//!
//! Parsing also validates: a head from the peer is untrusted input that will be turned
//! into an HTTP message, so anything an HTTP stack would reject is refused here, with a
//! message that says which field is wrong.

use serde::{Deserialize, Deserializer, Serialize};

use super::Error;
use crate::headers::Headers;

/// Largest JSON head accepted, in bytes (the Go server's default header limit is 1 MB).
pub(crate) const MAX_HEAD_LEN: usize = 1 << 20;
/// Lowest status code a response head may carry: 1xx are not final responses.
pub const MIN_STATUS: u16 = 200;
/// The one 1xx status a response head may carry: the internal API's answer to a
/// WebSocket handshake that opens a stream.
pub const SWITCHING_PROTOCOLS: u16 = 101;
/// Highest status code a response head may carry (Go writes three digits at most).
pub const MAX_STATUS: u16 = 999;

/// Message 1: what the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead {
    /// The caller's method.
    #[serde(rename = "Method")]
    pub method: String,
    /// The destination URL (the `X-PROXY-DESTINATION` value).
    #[serde(rename = "URL")]
    pub url: String,
    /// The caller's headers, canonical names; `null` on the wire reads as empty.
    #[serde(rename = "Header", default, deserialize_with = "null_as_empty")]
    pub header: Headers,
    /// Body length in bytes, `-1` when unknown; absent reads as unknown.
    #[serde(rename = "ContentLength", default = "unknown_length")]
    pub content_length: i64,
    /// wsp's extension: the request opens a stream (see `crate::tunnel`) rather than
    /// carrying a body. Only sent to a client that announced streams at registration;
    /// absent from every other head, so the Go peers never see it.
    #[serde(rename = "Stream", default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamKind>,
}

/// What a stream request asks the client to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// `CONNECT host:port`: a TCP connection to the head's `URL` (`host:port`).
    #[serde(rename = "connect")]
    Connect,
    /// A WebSocket handshake (the head's headers say `Upgrade: websocket`) to the head's
    /// `URL`, `http://` or `https://`: the stream opens if the internal API answers 101.
    #[serde(rename = "websocket")]
    WebSocket,
}

/// Message 3: what the internal API answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHead {
    /// The status code, [`MIN_STATUS`]..=[`MAX_STATUS`].
    #[serde(rename = "StatusCode")]
    pub status: u16,
    /// Response headers, canonical names; `null` on the wire reads as empty.
    #[serde(rename = "Header", default, deserialize_with = "null_as_empty")]
    pub header: Headers,
    /// Body length in bytes, `-1` when unknown. The Go server ignores it.
    #[serde(rename = "ContentLength", default = "unknown_length")]
    pub content_length: i64,
}

impl RequestHead {
    /// Parses and validates a request head.
    ///
    /// # Errors
    /// [`Error::Head`] for bad JSON, a missing `Method` or `URL`, a method that is not an
    /// HTTP token, an invalid header, or a `ContentLength` below -1.
    pub fn parse(json: &str) -> Result<RequestHead, Error> {
        let head: RequestHead = from_json("request head", json)?;
        head.validate()?;
        Ok(head)
    }

    /// Checks what [`parse`](Self::parse) checks, for a head built from a caller's
    /// request: the peer must never receive what we would refuse ourselves.
    ///
    /// # Errors
    /// [`Error::Head`] naming the bad method, URL, header or length.
    pub fn validate(&self) -> Result<(), Error> {
        if !is_token(&self.method) {
            return Err(Error::Head(format!(
                "method {:?} is not a token",
                self.method
            )));
        }
        if self.url.is_empty() {
            return Err(Error::Head("empty URL".into()));
        }
        // URL parsers drop tabs and newlines silently, and logs would print them: a URL
        // that holds any control character is refused, not cleaned.
        if self.url.chars().any(char::is_control) {
            return Err(Error::Head("URL has control characters".into()));
        }
        check_length(self.content_length)?;
        check_headers(&self.header)
    }

    /// The body length when known.
    pub fn body_len(&self) -> Option<u64> {
        u64::try_from(self.content_length).ok()
    }
}

impl ResponseHead {
    /// Parses and validates a response head.
    ///
    /// # Errors
    /// [`Error::Head`] for bad JSON, a status outside [`MIN_STATUS`]..=[`MAX_STATUS`],
    /// an invalid header, or a `ContentLength` below -1.
    pub fn parse(json: &str) -> Result<ResponseHead, Error> {
        Self::parse_from(json, MIN_STATUS)
    }

    /// Parses and validates the response head to `request`: as [`ResponseHead::parse`],
    /// but `101` is also accepted when the request is a WebSocket handshake.
    ///
    /// # Errors
    /// As [`ResponseHead::parse`].
    pub fn parse_for(json: &str, request: &RequestHead) -> Result<ResponseHead, Error> {
        let lowest = match request.stream {
            Some(StreamKind::WebSocket) => SWITCHING_PROTOCOLS,
            _ => MIN_STATUS,
        };
        Self::parse_from(json, lowest)
    }

    fn parse_from(json: &str, lowest: u16) -> Result<ResponseHead, Error> {
        let head: ResponseHead = from_json("response head", json)?;
        if !(lowest..=MAX_STATUS).contains(&head.status)
            || (head.status < MIN_STATUS && head.status != SWITCHING_PROTOCOLS)
        {
            return Err(Error::Head(format!(
                "status code {} is outside {lowest}-{MAX_STATUS}",
                head.status
            )));
        }
        check_length(head.content_length)?;
        check_headers(&head.header)?;
        Ok(head)
    }

    /// A head for an error answered by the client itself (527 and the like), whose body
    /// (message 4) is `body`, made by [`crate::answer::body`]: its `Content-Type` and its
    /// length. The Go server copies `Header` to the caller, so a caller gets the same
    /// `text/plain` answer from either server.
    pub fn error(status: u16, body: &str) -> ResponseHead {
        let content_type = vec![crate::answer::CONTENT_TYPE.to_string()];
        ResponseHead {
            status,
            header: Headers::from([("Content-Type".to_string(), content_type)]),
            content_length: i64::try_from(body.len()).unwrap_or(-1),
        }
    }
}

/// Serialises a head. Serialising these plain structs cannot fail.
pub fn to_json(head: &impl Serialize) -> String {
    serde_json::to_string(head).unwrap_or_else(|_| String::from("{}"))
}

fn from_json<'a, T: Deserialize<'a>>(what: &str, json: &'a str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::Head(format!("{what}: {e}")))
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Headers, D::Error> {
    Ok(Option::<Headers>::deserialize(d)?.unwrap_or_default())
}

fn unknown_length() -> i64 {
    -1
}

fn check_length(length: i64) -> Result<(), Error> {
    if length < -1 {
        return Err(Error::Head(format!("ContentLength {length} is below -1")));
    }
    Ok(())
}

/// Header names must be tokens and values free of control characters (tab allowed), as
/// RFC 9110 and Go's `httpguts` require; anything else could split or smuggle a message.
fn check_headers(headers: &Headers) -> Result<(), Error> {
    for (name, values) in headers {
        if !is_token(name) {
            return Err(Error::Head(format!("header name {name:?} is not a token")));
        }
        for value in values {
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(Error::Head(format!(
                    "header {name} has a value with control characters"
                )));
            }
        }
    }
    Ok(())
}

/// An RFC 9110 token: one or more of ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_request_head() {
        let json = r#"{"Method":"POST","URL":"http://localhost:8081/post",
            "Header":{"Accept":["*/*"],"X-Proxy-Destination":["http://localhost:8081/post"]},
            "ContentLength":5}"#;
        let head = RequestHead::parse(json).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.header["Accept"], vec!["*/*"]);
        assert_eq!(head.body_len(), Some(5));
    }

    #[test]
    fn null_header_and_unknown_length() {
        let head = RequestHead::parse(
            r#"{"Method":"GET","URL":"http://a/","Header":null,"ContentLength":-1}"#,
        )
        .unwrap();
        assert!(head.header.is_empty());
        assert_eq!(head.body_len(), None);
        let resp = ResponseHead::parse(r#"{"StatusCode":204,"Header":null}"#).unwrap();
        assert!(resp.header.is_empty());
        assert_eq!(resp.content_length, -1);
    }

    #[test]
    fn round_trips_in_go_field_names() {
        let head = ResponseHead::error(527, "refused: 12\n");
        let json = to_json(&head);
        let header = r#"{"Content-Type":["text/plain; charset=utf-8"]}"#;
        let expected = format!(r#"{{"StatusCode":527,"Header":{header},"ContentLength":12}}"#);
        assert_eq!(json, expected);
        assert_eq!(ResponseHead::parse(&json).unwrap(), head);
    }

    #[test]
    fn rejects_bad_heads_with_reason() {
        let cases = [
            (r#"{"StatusCode":0}"#, "outside"),
            (r#"{"StatusCode":1000}"#, "outside"),
            (r#"{"StatusCode":"200"}"#, "invalid type"),
            (r#"{"Header":{}}"#, "missing field `StatusCode`"),
            (r#"{"StatusCode":200,"ContentLength":-2}"#, "below -1"),
            (
                r#"{"StatusCode":200,"Header":{"A B":["x"]}}"#,
                "not a token",
            ),
            (r#"{"StatusCode":200,"Header":{"X":["a\r\nb"]}}"#, "control"),
            (r#"{"StatusCode":200,"Header":{"X":"a"}}"#, "invalid type"),
            ("[", "EOF"),
        ];
        for (json, why) in cases {
            let err = ResponseHead::parse(json).unwrap_err().to_string();
            assert!(err.contains(why), "{json}: {err}");
        }
        let err = RequestHead::parse(r#"{"Method":"GE T","URL":"http://a/"}"#).unwrap_err();
        assert!(err.to_string().contains("not a token"));
        let err = RequestHead::parse(r#"{"Method":"GET"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `URL`"));
        let forged = r#"{"Method":"GET","URL":"http://a/\n12:00:00 [INFO] forged"}"#;
        let err = RequestHead::parse(forged).unwrap_err();
        assert!(
            err.to_string().contains("URL has control characters"),
            "{err}"
        );
    }
}
