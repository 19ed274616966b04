//! The wsp wire protocol: what travels on one WebSocket between a server and a client.
//!
//! ```text
//!  client                                   server
//!    | --- GET /register (Upgrade, X-SECRET-KEY) --> |
//!    | <-------- 101 Switching Protocols ----------- |
//!    | --- text: greeting "<id>_<poolidlesize>" ---> |   connection is now idle in the pool
//!    |                                               |
//!    | <-- text:   request head (JSON)     --------- |   one exchange per request,
//!    | <-- binary: request body (0..n frames) ------ |   strictly in this order
//!    | --- text:   response head (JSON)    --------> |
//!    | --- binary: response body (0..n frames) ----> |   connection idle again
//! ```
//!
//! wsp's own extension, between a wsp server and a wsp client only: a client that sends
//! [`STREAMS_HEADER`] on `/register` may get a request head with `"Stream":"connect"`;
//! after its `200` head, both directions carry raw bytes as binary messages, an empty one
//! ending each direction, and then the connection is between exchanges again (see
//! `crate::tunnel`).
//!
//! Ping, pong and close control frames may come between any two frames. This module does
//! no socket set-up: everything here is generic over `Read + Write`, so unit tests run it
//! on in-memory buffers. Limits on what a peer may send are the `MAX_*` constants.
//!
//! - [`greeting`]: the first message of a connection.
//! - [`head`]: the JSON request and response heads.
//! - [`limits`]: the greeting's limits, which the client's configuration is held to too.
//! - [`ws`]: frame-level WebSocket I/O that streams bodies without holding them whole.

pub mod error;
pub mod greeting;
pub mod head;
pub mod limits;
pub mod ws;

pub use error::Error;
pub use greeting::Greeting;
pub use head::{RequestHead, ResponseHead, StreamKind};
pub use ws::{Awaited, BodyReader, Idle, Role, WsConn};

/// wsp's extension, announced by a client on its `/register` request (`X-WSP-Streams:
/// 1`): it can carry streams ([`head::StreamKind`], `crate::tunnel`). The Go server
/// ignores the header; a server sends stream requests only to clients that sent it.
pub const STREAMS_HEADER: &str = "X-WSP-Streams";
