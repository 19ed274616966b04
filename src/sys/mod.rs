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

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    /// Both ends of a TCP connection on loopback: (the connecting one, the accepted one).
    pub(crate) fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (client, accepted)
    }
}
