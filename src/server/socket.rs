//! Finding the TCP socket behind a tiny_http connection.
//!
//! tiny_http hides the socket of a connection it accepted: an upgraded `/register` stream
//! is a `Box<dyn ReadWrite>`, and a request gives no way to abort its connection. Yet a
//! proxy needs both: a deadline on a WebSocket's reads, and a way to cut a caller's
//! connection when a relayed response breaks off mid-body (otherwise the caller waits
//! forever for bytes that will not come). A TCP connection is named by its two
//! addresses, so we look among our own open descriptors for the socket with that pair
//! and duplicate it: the duplicate shares the socket (options, shutdown) but closes only
//! itself when dropped.

use std::net::{SocketAddr, TcpStream};

/// A handle on the connection accepted on `local_port` from `peer`, if one is open in
/// this process. (The port, not the address: a listener bound to `0.0.0.0` accepts on
/// concrete addresses.) Linux only (it reads `/proc/self/fd`); elsewhere always `None`.
pub fn find(local_port: u16, peer: SocketAddr) -> Option<TcpStream> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    let mut fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // New connections tend to have the highest numbers.
    fds.sort_unstable_by(|a, b| b.cmp(a));
    fds.into_iter().find_map(|fd| {
        let stream = duplicate(fd)?;
        let matches =
            stream.local_addr().ok()?.port() == local_port && stream.peer_addr().ok()? == peer;
        matches.then_some(stream)
    })
}

#[cfg(unix)]
fn duplicate(fd: i32) -> Option<TcpStream> {
    use std::os::fd::BorrowedFd;
    // SAFETY: `fd` was listed in /proc/self/fd a moment ago. If another thread closed it
    // since, `dup` fails with EBADF; if the number was reused, we duplicate some other
    // descriptor, whose addresses will not match, and drop our duplicate. Nothing is
    // ever closed but the duplicate we own.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned().ok()?;
    Some(TcpStream::from(owned))
}

#[cfg(not(unix))]
fn duplicate(_fd: i32) -> Option<TcpStream> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_the_accepted_socket_by_its_addresses() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let local = accepted.local_addr().unwrap().port();
        let found = find(local, peer).expect("socket found");
        assert_eq!(found.peer_addr().unwrap(), client.local_addr().unwrap());
        // Shutting down the duplicate ends the connection for the peer.
        found.shutdown(std::net::Shutdown::Both).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &client, &mut buf).unwrap(), 0);
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(find(local, other).is_none());
    }
}
