//! The buffer a body is copied through, piece by piece, on its way between two sockets.
//!
//! Big pieces make system calls and frame headers vanish next to the copy, but a buffer
//! allocated (and zeroed) at 64 KiB for every 12-byte answer costs more than the answer.
//! So a [`CopyBuffer`] starts at the body's length when that is known, small when it is
//! not, and doubles each time a read fills it, up to [`MAX_PIECE`].

use std::io::{self, Read};

/// The largest piece a body is copied in.
pub const MAX_PIECE: usize = 64 * 1024;
/// The first size for a body of unknown length.
const UNKNOWN_LENGTH_START: usize = 4 * 1024;

/// A buffer for copying one body; see the module documentation.
#[derive(Debug)]
pub struct CopyBuffer {
    buf: Vec<u8>,
    /// The last read filled the buffer: the next one gets a bigger one.
    filled: bool,
}

impl CopyBuffer {
    /// A buffer for a body of `length` bytes, when known.
    pub fn for_body(length: Option<u64>) -> CopyBuffer {
        let start = match length {
            Some(n) => usize::try_from(n).unwrap_or(MAX_PIECE).clamp(1, MAX_PIECE),
            None => UNKNOWN_LENGTH_START,
        };
        CopyBuffer {
            buf: zeroed(start),
            filled: false,
        }
    }

    /// Reads the next piece from `src`, retrying when interrupted; empty at its end.
    ///
    /// # Errors
    /// Whatever reading `src` fails with.
    pub fn read_from(&mut self, src: &mut dyn Read) -> io::Result<&[u8]> {
        if self.filled && self.buf.len() < MAX_PIECE {
            self.buf = zeroed((self.buf.len() * 2).min(MAX_PIECE));
        }
        let n = loop {
            match src.read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.filled = n == self.buf.len();
        Ok(&self.buf[..n])
    }

    /// The current size, for tests.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.len()
    }
}

/// `n` zero bytes, allocated with `malloc` rather than `calloc` (which `vec![0; n]`
/// becomes): glibc's `calloc` bypasses the per-thread cache that `free` fills, so buffers
/// allocated and freed again and again (one per response, one per idle round of a
/// connection) would each take fresh memory until the cache is full, seven per size and
/// thread; a thousand idle connections grew by a megabyte per ping round that way.
#[allow(clippy::slow_vector_initialization)] // deliberately not `vec![0; n]`, see above
pub fn zeroed(n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(n);
    buf.resize(n, 0);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_small_body_gets_a_buffer_of_its_size() {
        assert_eq!(CopyBuffer::for_body(Some(12)).capacity(), 12);
        assert_eq!(CopyBuffer::for_body(Some(0)).capacity(), 1);
        assert_eq!(CopyBuffer::for_body(Some(1 << 40)).capacity(), MAX_PIECE);
        assert_eq!(CopyBuffer::for_body(None).capacity(), UNKNOWN_LENGTH_START);
    }

    #[test]
    fn grows_while_reads_fill_it_and_copies_every_byte() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut src = &body[..];
        let mut buffer = CopyBuffer::for_body(None);
        let mut copied = Vec::new();
        loop {
            let piece = buffer.read_from(&mut src).unwrap();
            if piece.is_empty() {
                break;
            }
            copied.extend_from_slice(piece);
        }
        assert_eq!(copied, body);
        assert_eq!(buffer.capacity(), MAX_PIECE);
    }

    #[test]
    fn a_body_longer_than_announced_still_passes_whole() {
        let body = [7u8; 100];
        let mut src = &body[..];
        let mut buffer = CopyBuffer::for_body(Some(10));
        let mut total = 0;
        loop {
            let n = buffer.read_from(&mut src).unwrap().len();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 100);
    }
}
