//! The system calls std does not wrap, each behind a safe function: all of wsp's `unsafe`
//! and `libc` lives here.
//!
//! - [`poll`]: waiting for one socket to be readable without reading it.
//! - [`epoll`]: waiting on many sockets at once (the server's idle watcher).
//! - [`heap`]: giving freed heap memory back to the system.
//! - [`stack`]: giving back the stack pages an idle thread no longer uses.
//! - [`fd_limit`]: the open file limit, raised, and the connection cap drawn from it.

#[cfg(target_os = "linux")]
pub mod epoll;
pub mod fd_limit;
pub mod heap;
pub mod poll;
pub mod stack;
