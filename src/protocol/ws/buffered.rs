//! The read buffer of a [`super::WsConn`], which exists only while it is used.
//!
//! Frame headers and small messages are read through a buffer, so that a head and its
//! frames cost one system call rather than one per field. But a server or a client holds
//! a thousand idle connections, and a buffer each would be most of its memory. So the
//! buffer is allocated by the first read that needs it and given back by
//! [`Buffered::release`] once emptied; big reads go around it. A released buffer comes
//! back small ([`FIRST_READ_LEN`], enough for any control frame) and grows to
//! [`READ_BUFFER_LEN`] when a read fills it: an idle connection answering pings never
//! churns through big allocations, which would leave the heap fragmented, and the block
//! that glibc then keeps cached for its thread stays small. The first head after an idle
//! spell may take one read more.

use std::io::{self, BufRead, Read};

use crate::buffer::zeroed;

/// Size of the read buffer once a read has filled a smaller one. Reads this big or
/// bigger bypass it.
pub const READ_BUFFER_LEN: usize = 8 * 1024;
/// Size of a read buffer allocated after a release: a control frame is at most 131 bytes.
pub const FIRST_READ_LEN: usize = 256;

/// A stream with a read buffer allocated on demand; see the module documentation.
#[derive(Debug)]
pub struct Buffered<S> {
    inner: S,
    /// Empty while released.
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
}

impl<S> Buffered<S> {
    /// A stream with no buffered bytes yet.
    pub fn new(inner: S) -> Self {
        Self::with_leftover(inner, Vec::new())
    }

    /// A stream of which `leftover` was already read (past a handshake, say).
    pub fn with_leftover(inner: S, leftover: Vec<u8>) -> Self {
        let filled = leftover.len();
        Buffered {
            inner,
            buf: leftover.into_boxed_slice(),
            pos: 0,
            filled,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    #[cfg(test)]
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The stream, its buffer dropped: take the unread bytes first.
    pub fn into_stream(self) -> S {
        self.inner
    }

    /// The bytes read from the stream and not consumed yet.
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// Takes the bytes read and not consumed, leaving the buffer released: for another
    /// reader of the same socket to read first (a stream through the tunnel).
    pub fn take_unread(&mut self) -> Vec<u8> {
        let unread = self.buffer().to_vec();
        self.buf = Box::default();
        self.pos = 0;
        self.filled = 0;
        unread
    }

    /// Puts back bytes read from the socket by another reader, to be read before the
    /// socket again. Only on an empty buffer (after [`Buffered::take_unread`]).
    pub fn put_unread(&mut self, unread: Vec<u8>) {
        debug_assert!(self.pos == self.filled, "bytes put back over unread ones");
        self.filled = unread.len();
        self.pos = 0;
        self.buf = unread.into_boxed_slice();
    }

    /// Gives the buffer's memory back, unless it still holds bytes.
    pub fn release(&mut self) {
        if self.pos == self.filled {
            self.buf = Box::default();
            self.pos = 0;
            self.filled = 0;
        }
    }

    /// Whether the buffer is allocated, for tests.
    #[cfg(test)]
    pub fn is_allocated(&self) -> bool {
        !self.buf.is_empty()
    }
}

impl<S: Read> Read for Buffered<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // Nothing buffered and a big read: straight from the stream, no copy.
        if self.pos == self.filled && out.len() >= READ_BUFFER_LEN {
            return self.inner.read(out);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<S: Read> BufRead for Buffered<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            let wanted = match self.buf.len() {
                0 => FIRST_READ_LEN,
                // The last read filled it: more may come in one go.
                n if n < READ_BUFFER_LEN && self.filled == n => READ_BUFFER_LEN,
                n => n.max(FIRST_READ_LEN),
            };
            if wanted != self.buf.len() {
                self.buf = zeroed(wanted).into_boxed_slice();
            }
            (self.pos, self.filled) = (0, 0);
            self.filled = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.filled);
    }
}

impl<S: Read> Buffered<S> {
    /// Reads more after the bytes already buffered (a frame cut at the end of the
    /// buffer, say), moving them to its front first and growing it if they fill it.
    /// Returns how many bytes came (0: end of stream).
    ///
    /// # Errors
    /// Those of the stream, and `InvalidData` when [`READ_BUFFER_LEN`] bytes are
    /// already buffered: the caller asks for more than a frame header and a control
    /// payload.
    pub fn fill_more(&mut self) -> io::Result<usize> {
        let kept = self.filled - self.pos;
        if kept >= READ_BUFFER_LEN {
            let why = "read buffer full of an unfinished frame";
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        if kept == self.buf.len() || self.buf.is_empty() {
            let mut bigger = zeroed((2 * kept).clamp(FIRST_READ_LEN, READ_BUFFER_LEN));
            bigger[..kept].copy_from_slice(self.buffer());
            self.buf = bigger.into_boxed_slice();
        } else {
            self.buf.copy_within(self.pos..self.filled, 0);
        }
        self.pos = 0;
        self.filled = kept;
        let n = self.inner.read(&mut self.buf[kept..])?;
        self.filled += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_leftover_then_stream_and_releases_only_when_empty() {
        let stream: &[u8] = b"world";
        let mut io = Buffered::with_leftover(stream, b"hello ".to_vec());
        let mut first = [0u8; 3];
        io.read_exact(&mut first).unwrap();
        io.release();
        assert_eq!(io.buffer(), b"lo ", "not released while holding bytes");
        let mut rest = String::new();
        io.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "lo world");
        io.release();
        assert!(!io.is_allocated());
    }

    #[test]
    fn big_reads_go_around_the_buffer() {
        let data = vec![5u8; 4 * READ_BUFFER_LEN];
        let mut io = Buffered::new(&data[..]);
        let mut out = vec![0u8; 2 * READ_BUFFER_LEN];
        assert_eq!(io.read(&mut out).unwrap(), 2 * READ_BUFFER_LEN);
        assert!(!io.is_allocated(), "no buffer needed");
        let mut small = [0u8; 10];
        io.read_exact(&mut small).unwrap();
        assert_eq!(io.buffer().len(), FIRST_READ_LEN - 10, "small at first");
        let mut rest = vec![0u8; FIRST_READ_LEN - 10];
        io.read_exact(&mut rest).unwrap();
        io.read_exact(&mut small).unwrap();
        assert_eq!(io.buffer().len(), READ_BUFFER_LEN - 10, "grown once filled");
    }

    #[test]
    fn fill_more_keeps_the_unread_bytes_in_front() {
        let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        let mut io = Buffered::new(&data[..]);
        io.fill_buf().unwrap();
        io.consume(FIRST_READ_LEN - 3);
        assert_eq!(io.fill_more().unwrap(), FIRST_READ_LEN - 3);
        assert_eq!(
            io.buffer(),
            &data[FIRST_READ_LEN - 3..2 * FIRST_READ_LEN - 3]
        );
        // A buffer full of unread bytes grows.
        assert_eq!(io.fill_more().unwrap(), FIRST_READ_LEN);
        assert_eq!(
            io.buffer(),
            &data[FIRST_READ_LEN - 3..3 * FIRST_READ_LEN - 3]
        );
    }
}
