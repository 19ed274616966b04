//! wsp patch: what a protocol upgrade hands over, and a handle that can end a request's
//! connection (PATCHES.md, 16).
//!
//! Upstream's `Request::upgrade` returned a `Box<dyn ReadWrite>` over the reader and
//! writer halves, which hid the socket: wsp could neither set its time-outs nor wait on
//! it, and went looking for it among the process's descriptors. Here the upgrade gives
//! the connection by value: the socket itself (or its TLS stream), which nothing else
//! holds once the connection's parser has let go, and the bytes the client sent after
//! its head that were already read into the parser's buffer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use crate::connection::Connection;
#[cfg(feature = "ssl-rustls")]
use crate::ssl::TlsStream;
use crate::util::refined_tcp_stream::Stream;
use crate::util::ConnectionSlot;

/// A connection handed over by [`crate::Request::upgrade`].
pub struct Upgraded {
    /// The connection's stream, owned.
    pub stream: UpgradedStream,
    /// What the client sent after the request's head and tiny_http had already read:
    /// the first bytes of the new protocol, to be read before the stream's.
    pub leftover: Vec<u8>,
    /// The connection's place among those the server allows open at once: keep it with
    /// the stream.
    pub slot: ConnectionSlot,
}

/// The stream of an upgraded connection: the accepted socket, or the TLS stream over it.
pub enum UpgradedStream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
    #[cfg(feature = "ssl-rustls")]
    Tls(Box<TlsStream>),
}

impl UpgradedStream {
    /// Takes the stream out of `shared` if nothing else holds it.
    pub(crate) fn take(shared: Stream) -> Option<UpgradedStream> {
        match shared {
            Stream::Http(socket) => match Arc::try_unwrap(socket).ok()? {
                Connection::Tcp(s) => Some(UpgradedStream::Tcp(s)),
                #[cfg(unix)]
                Connection::Unix(s) => Some(UpgradedStream::Unix(s)),
            },
            #[cfg(feature = "ssl-rustls")]
            Stream::Https(tls) => Some(UpgradedStream::Tls(Box::new(tls.into_owned()?))),
        }
    }

    /// The TCP socket (under TLS too): for its options, and to wait on it without
    /// reading. `None` for a Unix socket.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            UpgradedStream::Tcp(s) => Some(s),
            #[cfg(unix)]
            UpgradedStream::Unix(_) => None,
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.tcp(),
        }
    }

    /// Switches the socket to non-blocking mode or back (under TLS too: a read then
    /// decrypts what the socket has, without waiting).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            UpgradedStream::Tcp(s) => s.set_nonblocking(on),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.set_nonblocking(on),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.set_nonblocking(on),
        }
    }

    /// Whether a read would return bytes held above the socket (decrypted TLS records)
    /// without touching it. Always false without TLS.
    pub fn has_buffered(&mut self) -> bool {
        match self {
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.has_buffered(),
            _ => false,
        }
    }

    /// Ends the connection both ways (over TLS, after a `close_notify`).
    pub fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpgradedStream::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.shutdown(Shutdown::Both),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.shutdown(),
        }
    }
}

/// The socket's descriptor (under TLS too), to wait on it. Reading or writing it directly
/// breaks a TLS stream.
#[cfg(unix)]
impl std::os::fd::AsFd for UpgradedStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            UpgradedStream::Tcp(s) => s.as_fd(),
            UpgradedStream::Unix(s) => s.as_fd(),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.as_fd(),
        }
    }
}

impl Read for UpgradedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            UpgradedStream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.read(buf),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for UpgradedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            UpgradedStream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.write(buf),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            UpgradedStream::Tcp(s) => s.flush(),
            #[cfg(unix)]
            UpgradedStream::Unix(s) => s.flush(),
            #[cfg(feature = "ssl-rustls")]
            UpgradedStream::Tls(s) => s.flush(),
        }
    }
}

/// Ends a request's connection from outside its reader and writer: for a handler whose
/// response broke off mid-body, so that the client sees the connection end instead of
/// waiting for the rest. It shares the connection's socket (no second descriptor).
#[derive(Clone)]
pub struct ConnectionHandle(pub(crate) Arc<Connection>);

impl ConnectionHandle {
    /// Shuts the connection down both ways (no TLS `close_notify`: the end is abrupt on
    /// purpose). Reads and writes in progress on it fail at once.
    pub fn shutdown(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Both)
    }
}
