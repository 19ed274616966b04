//! Integration tests: the real binaries and the test API on 127.0.0.1, talking over real
//! sockets. One test binary, one module per capability.

mod support;

mod auth;
mod bodies;
mod config;
mod connect;
mod console;
mod console_page;
mod errors;
mod faults;
mod fork;
mod gopeer;
mod hostile_heads;
mod hostile_http;
mod hostile_ws;
mod idle;
mod kubernetes;
mod limits;
mod names;
mod nginx;
mod observability;
mod pools;
mod proxy;
mod reconnect;
mod relay;
mod reload;
mod routing;
mod rules;
mod secret;
mod server_tls;
mod streaming;
mod streams_tls;
mod tls;
mod tls_roots;
mod transparency;
mod units;
mod upstream;
mod websocket;
