//! The one error type of the protocol module: everything that can go wrong between
//! reading the first byte of a frame and handing a parsed head or body byte to the caller.

use std::fmt;
use std::io;

/// What went wrong on a WebSocket, or in a message read from it.
#[derive(Debug)]
pub enum Error {
    /// The socket failed (reset, time-out, broken pipe).
    Io(io::Error),
    /// The peer ended the connection: a close frame, or end of stream between frames.
    Closed,
    /// The peer broke RFC 6455 framing (bad bits, unmasked client frame, ...).
    Framing(String),
    /// A message of one kind arrived where another was expected.
    UnexpectedMessage {
        expected: &'static str,
        got: &'static str,
    },
    /// A message grew past the limit that applies to it.
    TooLarge { what: &'static str, limit: usize },
    /// A text message was not valid UTF-8.
    InvalidUtf8(&'static str),
    /// The greeting was not `<id>_<size>`.
    Greeting(String),
    /// A JSON head was malformed or carried values an HTTP stack would reject.
    Head(String),
    /// Reading the body we were sending failed (the caller's upload or the internal
    /// API's response broke off); the message on the WebSocket is left unfinished.
    BodySource(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "WebSocket I/O error: {e}"),
            Error::Closed => write!(f, "WebSocket closed by peer"),
            Error::Framing(why) => write!(f, "WebSocket framing error: {why}"),
            Error::UnexpectedMessage { expected, got } => {
                write!(f, "expected {expected}, got {got}")
            }
            Error::TooLarge { what, limit } => {
                write!(f, "{what} is larger than the limit of {limit} bytes")
            }
            Error::InvalidUtf8(what) => write!(f, "{what} is not valid UTF-8"),
            Error::Greeting(why) => write!(f, "invalid greeting: {why}"),
            Error::Head(why) => write!(f, "invalid head: {why}"),
            Error::BodySource(e) => write!(f, "reading the body to relay failed: {e}"),
        }
    }
}

impl Error {
    /// Whether this is a time-out on the WebSocket: the peer said nothing, or read
    /// nothing, for too long. (A time-out reading a body source is the source's.)
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Io(e) => super::ws::is_timeout_kind(e.kind()),
            _ => false,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::BodySource(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::Closed
        } else {
            Error::Io(e)
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}
