//! `epoll(7)`: one thread waiting on thousands of sockets at once (Linux).
//!
//! The server's idle WebSockets are watched this way (see `server::watcher`): each is
//! registered once, armed for one event at a time (`EPOLLONESHOT`), and re-armed when it
//! goes idle again, so a busy connection's traffic never wakes the watcher. A closed
//! descriptor leaves the interest list by itself (no duplicates of it exist).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The events a watched socket is armed for: bytes or an end to read, the peer's
/// shutdown, once.
const WATCHED: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new, empty instance.
    ///
    /// # Errors
    /// The system refuses one (out of descriptors or memory).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointer arguments; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Starts watching `fd` for one event, reported with `token`.
    ///
    /// # Errors
    /// `fd` is already watched, or the system's watch limit is reached.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, WATCHED, token)
    }

    /// Arms `fd` (added before) for one more event; one already pending is reported.
    ///
    /// # Errors
    /// `fd` is not watched.
    pub fn rearm(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, WATCHED, token)
    }

    /// Stops watching `fd`.
    ///
    /// # Errors
    /// `fd` is not watched.
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Watches `fd` for reads until it is closed, not one-shot: for a wake-up descriptor.
    ///
    /// # Errors
    /// As [`Epoll::add`].
    pub fn add_persistent(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, token)
    }

    fn control(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a valid epoll_event for the call's duration; the kernel
        // checks both descriptors.
        let done = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` (`None`: for ever) for events, and puts their tokens in
    /// `tokens` (cleared first; at most its capacity, at least one). A signal ending the
    /// wait early is not an error: `tokens` is then empty.
    ///
    /// # Errors
    /// The system refuses the wait.
    pub fn wait(&self, tokens: &mut Vec<u64>, timeout: Option<Duration>) -> io::Result<()> {
        tokens.clear();
        let max = tokens.capacity().clamp(1, 1024);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max];
        let millis = match timeout {
            None => -1,
            Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
        };
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        // SAFETY: `events` holds `max` writable entries for the call's duration.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, millis) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(err),
            };
        }
        let n = usize::try_from(n).unwrap_or(0);
        tokens.extend(events.iter().take(n).map(|e| e.u64));
        Ok(())
    }
}

/// A descriptor another thread can make readable, to wake a thread waiting in
/// [`Epoll::wait`] (`eventfd(2)`).
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new waker, not signalled.
    ///
    /// # Errors
    /// The system refuses one.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: no pointer arguments; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to watch.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the descriptor readable until [`Waker::clear`].
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, which outlives the call. A full counter
        // (EAGAIN) is already signalled, which is all that is wanted.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Makes the descriptor quiet again.
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into `count`, which outlives the call; nothing
        // to read (EAGAIN) is as good.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tests::pair;
    use std::io::Write;

    #[test]
    fn reports_one_event_per_arming_with_its_token() {
        let epoll = Epoll::new().unwrap();
        let (mut client, accepted) = pair();
        epoll.add(accepted.as_raw_fd(), 7).unwrap();
        let mut tokens = Vec::with_capacity(8);
        epoll.wait(&mut tokens, Some(Duration::ZERO)).unwrap();
        assert!(tokens.is_empty(), "nothing sent yet");
        client.write_all(b"x").unwrap();
        epoll
            .wait(&mut tokens, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(tokens, [7]);
        // One-shot: the byte is still there, but no second event until re-armed.
        epoll.wait(&mut tokens, Some(Duration::ZERO)).unwrap();
        assert!(tokens.is_empty(), "disarmed after one event");
        epoll.rearm(accepted.as_raw_fd(), 8).unwrap();
        epoll
            .wait(&mut tokens, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(tokens, [8], "re-arming reports what is pending");
    }

    #[test]
    fn a_peer_closing_is_an_event_and_a_waker_wakes() {
        let epoll = Epoll::new().unwrap();
        let (client, accepted) = pair();
        epoll.add(accepted.as_raw_fd(), 1).unwrap();
        let waker = Waker::new().unwrap();
        epoll.add_persistent(waker.fd(), 2).unwrap();
        let mut tokens = Vec::with_capacity(8);
        drop(client);
        epoll
            .wait(&mut tokens, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(tokens, [1]);
        waker.wake();
        epoll
            .wait(&mut tokens, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(tokens, [2]);
        waker.clear();
        epoll.wait(&mut tokens, Some(Duration::ZERO)).unwrap();
        assert!(tokens.is_empty(), "cleared");
    }
}
