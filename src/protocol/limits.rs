//! Limits that both sides hold the greeting to: the server refuses a greeting past them,
//! and the client refuses a configuration that would send one, so that a mistake shows at
//! start-up rather than as registrations refused one after another.

/// Longest client id accepted, in bytes. Ids are log and map keys; a UUID is 36.
pub const MAX_ID_LEN: usize = 256;
/// Largest announced pool size accepted. The server keeps at most this many idle
/// connections for one client; a bigger claim is a mistake or an attack.
pub const MAX_POOL_SIZE: usize = 10_000;
