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
    /// Bytes kept free in front of every piece, so that a frame header can be written just
    /// before the payload and both leave in one write, without copying the payload.
    headroom: usize,
    /// The last read filled the buffer: the next one gets a bigger one.
    filled: bool,
}

impl CopyBuffer {
    /// A buffer for a body of `length` bytes, when known.
    pub fn for_body(length: Option<u64>) -> CopyBuffer {
        CopyBuffer::with_headroom(length, 0)
    }

    /// A buffer for a body of `length` bytes, when known, with `headroom` bytes free in
    /// front of every piece (see [`CopyBuffer::read_with_room`]).
    pub fn with_headroom(length: Option<u64>, headroom: usize) -> CopyBuffer {
        let start = match length {
            Some(n) => usize::try_from(n).unwrap_or(MAX_PIECE).clamp(1, MAX_PIECE),
            None => UNKNOWN_LENGTH_START,
        };
        CopyBuffer {
            buf: zeroed(headroom + start),
            headroom,
            filled: false,
        }
    }

    /// Reads the next piece from `src`, retrying when interrupted; empty at its end.
    ///
    /// # Errors
    /// Whatever reading `src` fails with.
    pub fn read_from(&mut self, src: &mut dyn Read) -> io::Result<&[u8]> {
        let (_, piece) = self.read_with_room(src)?;
        Ok(piece)
    }

    /// Like [`CopyBuffer::read_from`], but also hands out the headroom in front of the
    /// piece: `(room, piece)` are adjacent, so `room`'s tail and `piece` form one slice of
    /// the buffer again (see [`CopyBuffer::framed`]).
    ///
    /// # Errors
    /// Whatever reading `src` fails with.
    pub fn read_with_room(&mut self, src: &mut dyn Read) -> io::Result<(&mut [u8], &mut [u8])> {
        let room = self.headroom;
        let len = self.buf.len() - room;
        if self.filled && len < MAX_PIECE {
            self.buf = zeroed(room + (len * 2).min(MAX_PIECE));
        }
        let n = loop {
            match src.read(&mut self.buf[room..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.filled = room + n == self.buf.len();
        let (head, rest) = self.buf.split_at_mut(room);
        Ok((head, &mut rest[..n]))
    }

    /// The last `header_len` bytes of the headroom followed by the first `piece_len` bytes
    /// of the piece: a header written into the room's tail and its payload, as one slice.
    pub fn framed(&self, header_len: usize, piece_len: usize) -> &[u8] {
        &self.buf[self.headroom - header_len..self.headroom + piece_len]
    }

    /// The current size, for tests.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.len() - self.headroom
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
    fn headroom_sits_in_front_of_every_piece() {
        let body = [5u8; 10];
        let mut buffer = CopyBuffer::with_headroom(Some(10), 4);
        let (room, piece) = buffer.read_with_room(&mut &body[..]).unwrap();
        assert_eq!((room.len(), piece.len()), (4, 10));
        room[2..].copy_from_slice(b"hd");
        assert_eq!(
            buffer.framed(2, 10),
            b"hd\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05"
        );
        assert_eq!(buffer.capacity(), 10, "the room comes on top of the piece");
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
