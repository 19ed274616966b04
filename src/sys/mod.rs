//! The system calls std does not wrap, each behind a safe function: all of wsp's `unsafe`
//! and `libc` outside the client's stack trim lives here.
//!
//! - [`poll`]: waiting for one socket to be readable without reading it.
//! - [`epoll`]: waiting on many sockets at once (the server's idle watcher).
//! - [`heap`]: giving freed heap memory back to the system.
//! - [`fd_limit`]: the open file limit, raised, and the connection cap drawn from it.

#[cfg(target_os = "linux")]
pub mod epoll;
pub mod fd_limit;
pub mod heap;
pub mod poll;
