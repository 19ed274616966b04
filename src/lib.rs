//! # wsp: a reverse HTTP proxy over WebSocket
//!
//! A **client** runs inside a private network and dials *out* to a public **server**,
//! keeping a pool of WebSocket connections open. A caller sends any HTTP request to the
//! server's `/request` endpoint with `X-PROXY-DESTINATION: http://internal-api/path`; the
//! server relays it over one idle pooled WebSocket to a client, which performs it against
//! the internal API and streams the response back. The server is also a plain HTTP proxy
//! (`curl -x`): a request in absolute form is relayed as `/request` relays one.
//!
//! ```text
//! caller --HTTP--> wsp_server --WebSocket--> wsp_client --HTTP--> internal API
//!         /request   (pool per client id)     (pool per server)    (ureq agent)
//! ```
//!
//! The wire format is the Go wsp's (see [`protocol`]), so either side interoperates with
//! the Go peer. Everything is synchronous: one OS thread per WebSocket and per HTTP
//! request, no async runtime. Data flows one way through the modules:
//! socket → [`protocol`] (parse) → the server's pool → its relay → socket ([`server`] lists them).
//!
//! - [`protocol`]: greeting, JSON heads, frame-level WebSocket I/O that streams bodies.
//! - [`answer`]: the one form of the answers wsp makes itself, server and client alike.
//! - [`auth`]: caller authentication for `/request` and proxy mode (bearer tokens,
//!   basic-auth users).
//! - [`buffer`]: the buffer bodies are copied through, sized to the body.
//! - [`config`]: raw YAML and flags, validated once into immutable configs.
//! - [`sys`]: the few system calls std does not wrap (poll, epoll, heap trim), each
//!   behind a safe function.
//! - [`rules`]: allow/deny rules (`whitelist` / `blacklist`).
//! - [`server`]: the public side: `/register`, `/request`, `/status`, proxy mode.
//! - [`client`]: the private side: a pool per server (per address of each target),
//!   executes requests with ureq.

pub mod answer;
pub mod auth;
pub mod buffer;
pub mod cli;
pub mod client;
pub mod config;
pub mod headers;
pub(crate) mod live;
pub mod pem;
pub mod protocol;
pub mod rules;
pub mod secret;
pub mod server;
pub mod sys;
pub(crate) mod tunnel;
