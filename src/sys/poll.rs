//! Waiting for a socket to have something to read, without reading it.
//!
//! Both sides need this on their hot path. The server asks an idle WebSocket whether it
//! has news before lending it out: one system call, where switching the socket to
//! non-blocking mode, reading and switching back takes three. The client waits for the
//! next request under a deadline of its own (the next ping, the stop check) while the
//! socket keeps the read time-out of an exchange, instead of changing that time-out twice
//! per request.

use std::io;
use std::net::TcpStream;
use std::time::Duration;

/// Waits up to `timeout` (zero: not at all) until reading `socket` would not block: bytes,
/// the end of the stream or an error are waiting. Returns whether that happened.
///
/// # Errors
/// When the system refuses to wait on the socket.
#[cfg(unix)]
pub fn readable(socket: &impl std::os::fd::AsFd, timeout: Duration) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // Rounded up, so a wait never ends early and spins.
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let millis = i32::try_from(millis).unwrap_or(i32::MAX);
    let mut poll = libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid `pollfd`, for a descriptor that `socket` keeps open during
        // the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready >= 0 {
            return Ok(ready > 0);
        }
        let err = io::Error::last_os_error();
        // A signal cut the wait short: waiting the whole time again errs on the long
        // side, which callers (deadline loops) allow.
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `socket` is open with nothing waiting to be read, found without waiting and
/// without changing the socket's mode: one `recv(MSG_PEEK | MSG_DONTWAIT)`. Bytes waiting
/// (which nobody asked for), the end of the stream or an error all say no.
#[cfg(unix)]
pub fn open_and_quiet(socket: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into `byte`, which outlives the call, from a
    // descriptor `socket` keeps open; MSG_PEEK leaves it in the socket.
    let got = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    got < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Elsewhere: the caller's next read finds out.
#[cfg(not(unix))]
pub fn open_and_quiet(_socket: &TcpStream) -> bool {
    true
}

/// Elsewhere there is no waiting without reading: says yes, so the caller goes and
/// reads under the socket's own time-out.
#[cfg(not(unix))]
pub fn readable<T>(_socket: &T, _timeout: Duration) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tests::pair;
    use std::io::{Read, Write};
    use std::time::Instant;

    #[test]
    fn tells_a_quiet_socket_from_one_with_bytes_or_an_end() {
        let (mut client, accepted) = pair();
        assert!(
            !readable(&accepted, Duration::ZERO).unwrap(),
            "nothing sent"
        );
        client.write_all(b"x").unwrap();
        assert!(
            readable(&accepted, Duration::from_secs(5)).unwrap(),
            "a byte"
        );
        (&accepted).read_exact(&mut [0u8; 1]).unwrap();
        assert!(
            !readable(&accepted, Duration::ZERO).unwrap(),
            "byte consumed"
        );
        drop(client);
        assert!(
            readable(&accepted, Duration::from_secs(5)).unwrap(),
            "the end"
        );
    }

    #[test]
    fn waits_about_the_timeout_when_nothing_comes() {
        let (_client, accepted) = pair();
        let started = Instant::now();
        assert!(!readable(&accepted, Duration::from_millis(30)).unwrap());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn open_and_quiet_says_no_to_bytes_and_to_an_end_and_consumes_nothing() {
        let (mut client, accepted) = pair();
        assert!(open_and_quiet(&accepted), "open, nothing sent");
        client.write_all(b"x").unwrap();
        assert!(
            poll_until(|| !open_and_quiet(&accepted)),
            "a byte nobody asked for"
        );
        let mut byte = [0u8; 1];
        (&accepted).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x", "the peek left the byte");
        assert!(open_and_quiet(&accepted), "byte consumed");
        drop(client);
        assert!(poll_until(|| !open_and_quiet(&accepted)), "the end");
    }

    /// Checks `f` until it holds, for up to 5 s (the peer's bytes cross loopback).
    fn poll_until(f: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }
}
