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

/// A connection handed over by [`crate::Request::upgrade`] (or, wsp patch 19,
/// [`crate::Request::tunnel`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Handler, Request, Response, Server};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    /// A server whose handler sends each request it gets to the test, and its address.
    fn server(
        max_connections: Option<usize>,
    ) -> (Server, std::net::SocketAddr, mpsc::Receiver<Request>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handler: Handler = Arc::new(move |rq| {
            let _ = tx.lock().unwrap().send(rq);
        });
        let server =
            Server::from_listener_with_handler(listener, None, handler, max_connections).unwrap();
        (server, addr, rx)
    }

    fn connect(addr: std::net::SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// Reads up to the end of a response head.
    fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "head cut short");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    #[test]
    fn an_upgrade_hands_over_the_socket_and_the_bytes_read_past_the_head() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nearly",
            )
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let Upgraded {
            mut stream,
            leftover,
            slot: _,
        } = request.upgrade("test", Response::empty(101)).unwrap();
        assert!(read_head(&mut client).starts_with("HTTP/1.1 101"));
        assert!(
            matches!(stream, UpgradedStream::Tcp(_)),
            "the socket itself"
        );
        // What was sent right after the head: read already, or still on the socket.
        let mut early = leftover;
        while early.len() < 5 {
            let mut buf = [0u8; 5];
            let n = stream.read(&mut buf[..5 - early.len()]).unwrap();
            assert!(n > 0, "end of stream before the early bytes");
            early.extend_from_slice(&buf[..n]);
        }
        assert_eq!(early, b"early");
        stream.write_all(b"both ways").unwrap();
        let mut echoed = [0u8; 9];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"both ways");
        // Nothing else holds the connection: dropping the stream ends it.
        drop(stream);
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    }

    #[test]
    fn a_request_with_a_body_cannot_switch_protocols() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let refused = request.upgrade("test", Response::empty(101));
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        assert!(read_head(&mut client).starts_with("HTTP/1.1 500"));
    }

    #[test]
    fn a_connection_past_the_cap_is_marked_and_an_upgraded_one_counts() {
        let (_server, addr, requests) = server(Some(1));
        let mut first = connect(addr);
        first
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        assert!(!request.over_capacity());
        let upgraded = request.upgrade("test", Response::empty(101)).unwrap();
        let mut second = connect(addr);
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let refused = requests.recv_timeout(WAIT).unwrap();
        assert!(
            refused.over_capacity(),
            "the upgraded connection holds the one slot"
        );
        drop(refused);
        drop(upgraded);
        // The slot is free once the upgraded stream is gone.
        let mut third = connect(addr);
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let served = requests.recv_timeout(WAIT).unwrap();
        assert!(!served.over_capacity());
    }

    #[test]
    fn a_connection_handle_ends_the_connection_after_the_request_became_a_writer() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let handle = request.connection_handle().unwrap();
        let mut writer = request.into_writer();
        writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            .unwrap();
        writer.flush().unwrap();
        handle.shutdown().unwrap();
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        assert!(
            got.ends_with(b"half"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        drop(writer);
    }

    // wsp patch 19: CONNECT, tunneled or answered.

    const CONNECT: &[u8] = b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n";

    /// Reads exactly `n` bytes (the stream's read time-out bounds the wait).
    fn read_n(stream: &mut impl Read, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        stream.read_exact(&mut got).unwrap();
        got
    }

    /// Whether the peer has closed the connection: a read gets its end, or a reset.
    fn closed(stream: &mut TcpStream) -> bool {
        match stream.read(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }

    #[test]
    fn a_connect_is_tunneled_with_the_bytes_sent_after_its_head() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client.write_all(&[CONNECT, b"EARLY"].concat()).unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        assert_eq!(*request.method(), crate::Method::Connect);
        assert_eq!(request.url(), "example.test:443");
        let Upgraded {
            mut stream,
            leftover,
            slot,
        } = request.tunnel().unwrap();
        // The answer is the status line alone: the handler's first bytes follow it at once.
        stream.write_all(b"FIRST").unwrap();
        let established = b"HTTP/1.1 200 Connection Established\r\n\r\n";
        let got = read_n(&mut client, established.len() + 5);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&[&established[..], b"FIRST"].concat())
        );
        // What the client sent right after its head: read already, or still on the socket.
        stream.tcp().unwrap().set_read_timeout(Some(WAIT)).unwrap();
        let mut early = leftover;
        if early.len() < 5 {
            early.extend(read_n(&mut stream, 5 - early.len()));
        }
        assert_eq!(early, b"EARLY");
        // Bytes flow both ways: the handler echoes what the client sends.
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                }
            }
            drop(slot);
        });
        let sent: Vec<u8> = (0..16 * 1024).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).unwrap();
        assert!(
            read_n(&mut client, sent.len()) == sent,
            "echoed bytes differ"
        );
        // Nothing else holds the connection: the handler's end ends it.
        client.shutdown(std::net::Shutdown::Write).unwrap();
        echo.join().unwrap();
        assert!(closed(&mut client));
    }

    #[test]
    fn an_http_1_0_connect_is_answered_in_http_1_0() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(b"CONNECT example.test:443 HTTP/1.0\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let mut upgraded = request.tunnel().unwrap();
        upgraded.stream.write_all(b"FIRST").unwrap();
        let expected = b"HTTP/1.0 200 Connection Established\r\n\r\nFIRST";
        assert_eq!(read_n(&mut client, expected.len()), expected);
    }

    #[test]
    fn a_connect_answered_normally_closes_its_connection() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client.write_all(CONNECT).unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        request
            .respond(Response::from_string("no").with_status_code(403))
            .unwrap();
        let head = read_head(&mut client);
        assert!(head.starts_with("HTTP/1.1 403"), "{}", head);
        assert!(head.contains("Content-Length: 2\r\n"), "{}", head);
        assert_eq!(read_n(&mut client, 2), b"no");
        assert!(closed(&mut client), "the connection ends after the answer");
        // A request after it reaches no handler (the write may fail: the socket is gone).
        let _ = client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(closed(&mut client));
        assert!(requests.recv_timeout(Duration::from_millis(200)).is_err());
    }

    #[test]
    fn tunnel_refuses_a_request_that_is_not_a_connect() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let refused = request.tunnel().err().unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            refused.to_string(),
            "this request cannot be tunneled (not a CONNECT without a body)"
        );
        // The request is answered 500 as it is dropped, and the connection serves on.
        assert!(read_head(&mut client).starts_with("HTTP/1.1 500"));
        client
            .write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let next = requests.recv_timeout(WAIT).unwrap();
        assert_eq!(next.url(), "/next");
    }

    #[test]
    fn the_two_hand_overs_refuse_each_others_requests() {
        let (_server, addr, requests) = server(None);
        let mut upgrading = connect(addr);
        upgrading
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let refused = request.tunnel().err().map(|e| e.kind());
        assert_eq!(refused, Some(io::ErrorKind::InvalidInput));
        assert!(read_head(&mut upgrading).starts_with("HTTP/1.1 500"));

        let mut tunneling = connect(addr);
        // A CONNECT asking for an upgrade too is still a CONNECT.
        tunneling
            .write_all(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n")
            .unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        let refused = request.upgrade("test", Response::empty(101));
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        assert!(read_head(&mut tunneling).starts_with("HTTP/1.1 500"));
        assert!(closed(&mut tunneling));
    }

    #[test]
    fn a_connect_with_a_body_cannot_be_tunneled() {
        let (_server, addr, requests) = server(None);
        let mut client = connect(addr);
        client
            .write_all(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        let mut request = requests.recv_timeout(WAIT).unwrap();
        let mut body = String::new();
        request.as_reader().read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello", "an ordinary body");
        let refused = request.tunnel().err().map(|e| e.kind());
        assert_eq!(refused, Some(io::ErrorKind::InvalidInput));
        assert!(read_head(&mut client).starts_with("HTTP/1.1 500"));
        assert!(closed(&mut client), "no request after a CONNECT");
    }

    #[test]
    fn a_tunneled_connection_counts_against_the_cap_while_its_slot_lives() {
        let (_server, addr, requests) = server(Some(1));
        let mut first = connect(addr);
        first.write_all(CONNECT).unwrap();
        let request = requests.recv_timeout(WAIT).unwrap();
        assert!(!request.over_capacity());
        let Upgraded { stream, slot, .. } = request.tunnel().unwrap();
        // The slot, not the stream, holds the place.
        drop(stream);
        let mut second = connect(addr);
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let refused = requests.recv_timeout(WAIT).unwrap();
        assert!(
            refused.over_capacity(),
            "the tunneled connection holds the one slot"
        );
        drop(refused);
        drop(slot);
        let mut third = connect(addr);
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let served = requests.recv_timeout(WAIT).unwrap();
        assert!(!served.over_capacity());
    }
}
