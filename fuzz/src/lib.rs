//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The targets feed untrusted bytes to wsp's parsers; these modules hold what more than
//! one target needs, so each target stays a short statement of what it checks:
//!
//! - [`stream`]: an in-memory socket, so a `WsConn` runs without a network.
//! - [`wire`]: an independent encoder and decoder of RFC 6455 frames, to build inputs and
//!   to check what wsp wrote back.
//! - [`drive`]: runs a `WsConn` through the reads an exchange makes and records results.
//! - [`model`]: structured frame sequences (`arbitrary`) and what wsp must make of them.
//! - [`http_rules`]: whether a parsed head is one that an HTTP stack accepts.

pub mod drive;
pub mod http_rules;
pub mod model;
pub mod stream;
pub mod wire;
