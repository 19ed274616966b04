//! The byte stream under a client WebSocket: a plain TCP socket (`ws://`) or TLS over one
//! (`wss://`).
//!
//! The WebSocket code only reads and writes; the connection thread also sets socket
//! time-outs and waits for the socket to become readable. Both need the TCP socket
//! beneath, and the wait needs one more thing with TLS: rustls may already hold decrypted
//! bytes (a whole request frame read in the same record as the previous one), and then the
//! socket stays quiet although reading would not block. [`Stream::readable`] looks there
//! first, so an idle wait never sleeps on a request that has already arrived.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

use crate::sys::poll;

/// A connection to a server, with or without TLS.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`: the socket itself.
    Plain(TcpStream),
    /// `wss://`: rustls over the socket. Boxed: the TLS state is a few hundred bytes,
    /// and a plain stream should not carry that much room.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket beneath, for time-outs and `poll`. Never read or write it directly
    /// under TLS: the bytes on it are records, not the WebSocket's.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }

    /// Waits up to `timeout` until reading would not block: see [`poll::readable`]. Under
    /// TLS, bytes rustls already decrypted count as readable, and records that arrive are
    /// decrypted here: one that carries no data (a session ticket) must not end the wait,
    /// or the read that follows would block until the socket's time-out.
    ///
    /// # Errors
    /// When the system refuses to wait on the socket.
    pub fn readable(&mut self, timeout: Duration) -> io::Result<bool> {
        let tls = match self {
            Stream::Plain(socket) => return poll::readable(socket, timeout),
            Stream::Tls(tls) => tls,
        };
        let deadline = Instant::now() + timeout;
        loop {
            if !tls.conn.wants_read() {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !poll::readable(&tls.sock, left)? {
                return Ok(false);
            }
            // The socket has bytes (or its end): this read does not block. An end, an
            // error or a bad record is for the caller's read to find and report.
            match tls.conn.read_tls(&mut tls.sock) {
                Ok(0) | Err(_) => return Ok(true),
                Ok(_) => {
                    if tls.conn.process_new_packets().is_err() {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            // rustls, given nothing to send, would go and read the socket instead.
            Stream::Tls(_) if buf.is_empty() => Ok(0),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.write_all(buf),
            Stream::Tls(tls) => tls.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tls::Tls;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ServerConfig, ServerConnection};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A TLS server on 127.0.0.1 that sends `records` as separate records in one go,
    /// then waits for the client's byte before closing.
    fn server(records: &'static [&'static [u8]]) -> std::net::SocketAddr {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap().der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let conn = ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = StreamOwned::new(conn, socket);
            for record in records {
                tls.conn.writer().write_all(record).unwrap();
            }
            tls.flush().unwrap();
            let _ = tls.read(&mut [0u8; 1]);
        });
        addr
    }

    fn client(addr: std::net::SocketAddr) -> Stream {
        let tls = Tls::new(None, true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(tls.dial, name).unwrap();
        let socket = TcpStream::connect(addr).unwrap();
        Stream::Tls(Box::new(StreamOwned::new(conn, socket)))
    }

    #[test]
    fn bytes_decrypted_but_unread_count_as_readable() {
        let mut stream = client(server(&[b"ab", b"cd"]));
        let Stream::Tls(tls) = &mut stream else {
            unreachable!()
        };
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        // Both records come in one write (rustls flushes its queue with one `writev`):
        // reading one byte decrypts both, and the rest sits in rustls.
        assert!(poll::readable(stream.tcp(), Duration::from_secs(5)).unwrap());
        let mut got = vec![0u8; 1];
        stream.read_exact(&mut got).unwrap();
        let quiet = !poll::readable(stream.tcp(), Duration::ZERO).unwrap();
        assert!(
            stream.readable(Duration::ZERO).unwrap(),
            "3 bytes in rustls"
        );
        let mut rest = [0u8; 3];
        stream.read_exact(&mut rest).unwrap();
        assert_eq!((&got[..], &rest[..]), (&b"a"[..], &b"bcd"[..]));
        assert!(quiet, "the socket was drained");
        assert!(
            !stream.readable(Duration::from_millis(20)).unwrap(),
            "all read"
        );
        stream.write_all(b"x").unwrap();
    }
}
