//! An in-memory socket: reads come from a fixed input, writes are recorded.

use std::io::{self, Cursor, Read, Write};

/// What a `WsConn` sees as its socket in the fuzz targets. Reading past the input is end
/// of stream, as when a peer closes; everything written is kept for inspection.
#[derive(Debug)]
pub struct MemStream {
    input: Cursor<Vec<u8>>,
    /// Every byte written, in order.
    pub output: Vec<u8>,
}

impl MemStream {
    /// A stream whose peer sends `input` and then closes.
    pub fn new(input: Vec<u8>) -> Self {
        MemStream {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }

    /// How many input bytes have been consumed.
    pub fn consumed(&self) -> u64 {
        self.input.position()
    }
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
