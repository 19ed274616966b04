//! One end of a stream (a socket, plain or under TLS), shared by the stream's two
//! threads: one only reads it ([`EndReader`]), the other only writes it ([`EndWriter`]).
//!
//! A plain socket can be read and written at once from two threads. A rustls session
//! cannot be used from two threads without a lock, and a reader holding the lock while it
//! waits on the socket would stop the writer. So the session sits behind a mutex taken
//! only to encrypt or decrypt, never across a wait: the reader waits on the socket
//! without it, then hands the records to rustls; the writer encrypts under it, then
//! writes the records without it. Whole writes go one at a time (`writing`), so that two
//! threads' frames never interleave on the socket (the reader answers pings) and records
//! leave in the order rustls made them.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use parking_lot::Mutex;
use rustls::{ConnectionCommon, SideData};

/// Records read from the socket at a time: one TLS record and its overhead.
const RECORD_READ: usize = 16 * 1024 + 512;

/// What a stream needs of a rustls session, client or server side.
pub trait Session: Send {
    fn read_tls(&mut self, records: &mut dyn Read) -> io::Result<usize>;
    /// Decrypts what was read; returns how many plaintext bytes are waiting.
    fn process(&mut self) -> io::Result<usize>;
    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_plain(&mut self, buf: &[u8]) -> io::Result<usize>;
    fn wants_write(&self) -> bool;
    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize>;
    fn close_notify(&mut self);
}

impl<D: SideData + Send> Session for ConnectionCommon<D> {
    fn read_tls(&mut self, records: &mut dyn Read) -> io::Result<usize> {
        ConnectionCommon::read_tls(self, records)
    }

    fn process(&mut self) -> io::Result<usize> {
        let state = self
            .process_new_packets()
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        Ok(state.plaintext_bytes_to_read())
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader().read(buf)
    }

    fn write_plain(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn wants_write(&self) -> bool {
        rustls::CommonState::wants_write(self)
    }

    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        ConnectionCommon::write_tls(self, out)
    }

    fn close_notify(&mut self) {
        self.send_close_notify();
    }
}

/// A socket, with the TLS session over it if any, borrowed for the stream.
pub struct End<'a> {
    socket: &'a TcpStream,
    tls: Option<Mutex<&'a mut dyn Session>>,
    /// Held for each whole write to the socket.
    writing: Mutex<()>,
}

impl<'a> End<'a> {
    /// A plain TCP end.
    pub fn plain(socket: &'a TcpStream) -> Self {
        End {
            socket,
            tls: None,
            writing: Mutex::new(()),
        }
    }

    /// A TLS end: `session` over `socket`, its handshake done.
    pub fn tls(session: &'a mut dyn Session, socket: &'a TcpStream) -> Self {
        End {
            socket,
            tls: Some(Mutex::new(session)),
            writing: Mutex::new(()),
        }
    }

    /// The TCP socket: for time-outs and waiting.
    pub fn socket(&self) -> &TcpStream {
        self.socket
    }

    /// The reading half; one thread reads.
    pub fn reader(&self) -> EndReader<'_, 'a> {
        EndReader {
            end: self,
            raw: Vec::new(),
            start: 0,
        }
    }

    /// The writing half.
    pub fn writer(&self) -> EndWriter<'_, 'a> {
        EndWriter { end: self }
    }

    /// Whether decrypted bytes wait in the session, which the socket does not show.
    fn pending(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.lock().process().is_ok_and(|n| n > 0))
    }

    /// Ends this direction: `close_notify` under TLS, then the socket's writing side.
    pub fn shutdown_write(&self) {
        if let Some(tls) = &self.tls {
            let records = {
                let mut session = tls.lock();
                session.close_notify();
                drain(&mut **session)
            };
            if let Ok(records) = records {
                let _writing = self.writing.lock();
                let _ = (&*self.socket).write_all(&records);
            }
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Ends both directions at once: a thread waiting on the socket returns.
    pub fn abort(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Writes `buf` whole (encrypted under TLS).
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let Some(tls) = &self.tls else {
            let _writing = self.writing.lock();
            return (&*self.socket).write_all(buf);
        };
        let _writing = self.writing.lock();
        let records = {
            let mut session = tls.lock();
            let mut records = Vec::with_capacity(buf.len() + buf.len() / 64 + 64);
            let mut written = 0;
            while written < buf.len() {
                // rustls takes as much as its buffer limit allows; drained each time.
                let n = session.write_plain(&buf[written..])?;
                while session.wants_write() {
                    session.write_tls(&mut records)?;
                }
                if n == 0 {
                    return Err(ErrorKind::WriteZero.into());
                }
                written += n;
            }
            records
        };
        (&*self.socket).write_all(&records)
    }
}

/// The records the session has queued.
fn drain(session: &mut dyn Session) -> io::Result<Vec<u8>> {
    let mut records = Vec::new();
    while session.wants_write() {
        session.write_tls(&mut records)?;
    }
    Ok(records)
}

/// The reading half of an [`End`]. Writing through it (a pong) goes through the end's
/// write path, like the writer's.
pub struct EndReader<'e, 'a> {
    end: &'e End<'a>,
    /// Records read from the socket and not handed to rustls yet (`start..`).
    raw: Vec<u8>,
    start: usize,
}

impl EndReader<'_, '_> {
    /// Whether bytes wait above the socket, where waiting on the socket would not see
    /// them: records read and not decrypted yet, or plaintext decrypted and not read.
    pub fn pending(&self) -> bool {
        self.start < self.raw.len() || self.end.pending()
    }

    /// The socket beneath, to wait on.
    pub fn socket(&self) -> &TcpStream {
        self.end.socket
    }
}

impl Read for EndReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.end.tls else {
            return (&*self.end.socket).read(buf);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let fed = self.start < self.raw.len();
            let reply = {
                let mut session = tls.lock();
                match session.read_plain(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // The TCP stream ended without close_notify: an end, as over TCP.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                if fed {
                    let mut records = &self.raw[self.start..];
                    let taken = session.read_tls(&mut records)?;
                    self.start += taken;
                    let plaintext = session.process()?;
                    if taken == 0 && plaintext == 0 {
                        let why = "rustls took no records and has no plaintext";
                        return Err(io::Error::new(ErrorKind::InvalidData, why));
                    }
                    drain(&mut **session)?
                } else {
                    Vec::new()
                }
            };
            if !reply.is_empty() {
                // A key update's answer, say.
                let _writing = self.end.writing.lock();
                (&*self.end.socket).write_all(&reply)?;
            }
            if fed {
                // Records were decrypted: plaintext may be waiting now.
                continue;
            }
            // Nothing decrypted and nothing left to decrypt: wait on the socket, unlocked.
            self.raw.resize(RECORD_READ, 0);
            let read = (&*self.end.socket).read(&mut self.raw);
            // Only what came is records: a time-out leaves nothing to decrypt.
            self.raw.truncate(*read.as_ref().unwrap_or(&0));
            self.start = 0;
            let n = read?;
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for EndReader<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.end.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing half of an [`End`]: each write goes out whole before it returns.
pub struct EndWriter<'e, 'a> {
    end: &'e End<'a>,
}

impl Write for EndWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.end.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reading through the writer is never done; it is here so that a WebSocket can be
/// written over it.
impl Read for EndWriter<'_, '_> {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            ErrorKind::Unsupported,
            "the writing half does not read",
        ))
    }
}
