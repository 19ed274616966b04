//! wsp patch: the limits of size and time that a client's connection must keep to.
//!
//! A server facing the internet cannot let one client hold its memory or threads: every
//! connection has a thread, so a client that sends its request head one byte at a time,
//! or never reads its response, would keep a thread forever (slow-loris). These limits
//! bound what one connection costs. A head that breaks a size limit is answered 431
//! (Request Header Fields Too Large), a head that does not arrive in time 408 (Request
//! Timeout), both with a text body naming the limit, and the connection is closed.

use std::time::Duration;

/// Longest request line (`GET /path HTTP/1.1`), in bytes, not counting its CRLF.
pub const MAX_REQUEST_LINE_LEN: usize = 8 * 1024;

/// Longest header line (`Name: value`), in bytes, not counting its CRLF.
pub const MAX_HEADER_LINE_LEN: usize = 8 * 1024;

/// Longest request head (request line and header lines, CRLFs included), in bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// Most header fields in one request.
pub const MAX_HEADER_COUNT: usize = 100;

/// Time for a whole request head to arrive: counted from the connection's accept for its
/// first request, from the first byte of the head for later (keep-alive) requests. The
/// total is enforced, not the silence between reads, so trickling bytes does not help.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a keep-alive connection may stay idle, all its responses written, before its
/// next request starts. It is then closed without an answer.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest silence while the request's body is read, once its head has been read. Set
/// as the socket's read time-out, so a handler reading the body gets an error
/// (`WouldBlock` or `TimedOut`) instead of waiting forever. Whoever takes over the
/// socket (a protocol upgrade) may set its own.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a write to the client may block: a client that reads nothing of its response
/// for that long is dropped. Set once, when the connection is accepted.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
