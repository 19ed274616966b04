//! A body message streamed either way: [`BodyReader`] reads one frame after frame into
//! the caller's buffer, [`WsConn::write_body`] sends one frame by frame as the source
//! yields bytes. Neither holds the body whole, whatever its size.

use std::io::{self, Read, Write};

use tungstenite::protocol::frame::coding::{Data, OpCode};

use super::frame::{apply_mask, put_header, MAX_HEADER_LEN};
use super::{Error, WsConn};
use crate::buffer::CopyBuffer;

/// Where a [`BodyReader`] stands in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    NotStarted,
    /// Inside a frame; `true` when that frame is the message's last.
    InFrame(bool),
    Done,
}

/// Streams the payload of one binary message: frame after frame, unmasked, control frames
/// answered in between. Reading returns 0 once the final frame is consumed; the
/// connection is then positioned at the next message. Dropping it earlier leaves the
/// connection mid-message: check [`BodyReader::is_done`] before reusing it.
#[derive(Debug)]
pub struct BodyReader<'a, S> {
    ws: &'a mut WsConn<S>,
    frame_left: u64,
    mask: Option<[u8; 4]>,
    mask_pos: usize,
    state: BodyState,
    /// The error that broke the message off, if one did.
    failed: Option<String>,
}

impl<S: Read + Write> WsConn<S> {
    /// Starts reading a binary message as a stream; see [`BodyReader`].
    pub fn body_reader(&mut self) -> BodyReader<'_, S> {
        BodyReader {
            ws: self,
            frame_left: 0,
            mask: None,
            mask_pos: 0,
            state: BodyState::NotStarted,
            failed: None,
        }
    }

    /// Sends a whole binary message read from `src`, frame by frame as bytes arrive, and
    /// flushes each frame so the peer sees the first bytes at once. With `len` known, the
    /// frame that completes it carries FIN; otherwise an empty final frame ends the
    /// message. Returns the number of body bytes sent.
    ///
    /// Each piece is read into its buffer behind room for the frame header, masked in
    /// place, and sent with its header in one write: the payload is never copied again.
    ///
    /// # Errors
    /// [`Error::BodySource`] when reading `src` fails (the message is then left unfinished
    /// and the connection must be dropped), or any error writing to the socket.
    pub fn write_body(&mut self, src: &mut dyn Read, len: Option<u64>) -> Result<u64, Error> {
        if len == Some(0) {
            self.write_frame(OpCode::Data(Data::Binary), true, &[])?;
            return self.flush().map(|()| 0);
        }
        let mut buffer = CopyBuffer::with_headroom(len, MAX_HEADER_LEN);
        let mut sent = 0u64;
        loop {
            let opcode = if sent == 0 {
                Data::Binary
            } else {
                Data::Continue
            };
            let (room, piece) = buffer.read_with_room(src).map_err(Error::BodySource)?;
            let piece_len = piece.len();
            sent += piece_len as u64;
            let fin = piece_len == 0 || len == Some(sent);
            let header = self.frame_header(OpCode::Data(opcode), fin);
            if let Some(mask) = header.mask {
                apply_mask(piece, mask, 0);
            }
            let header_len = put_header(&header, piece_len, room)?;
            self.send_framed(buffer.framed(header_len, piece_len))?;
            if fin {
                return Ok(sent);
            }
        }
    }

    /// Writes a frame already encoded (header and masked payload) now. Output still queued
    /// (a head) goes with it in one write: a small response then costs one system call.
    fn send_framed(&mut self, frame: &[u8]) -> Result<(), Error> {
        if self.out.is_empty() {
            self.io.get_mut().write_all(frame)?;
        } else {
            self.out.extend_from_slice(frame);
            self.io.get_mut().write_all(&self.out)?;
            self.out.clear();
        }
        self.io.get_mut().flush()?;
        Ok(())
    }
}

impl<S: Read + Write> BodyReader<'_, S> {
    /// True once the whole message has been read.
    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Reads and discards the rest of the message, at most `limit` more bytes.
    /// Returns whether the message was finished within the limit.
    pub fn skip_rest(&mut self, limit: u64) -> io::Result<bool> {
        io::copy(&mut self.by_ref().take(limit), &mut io::sink())?;
        Ok(self.is_done())
    }

    /// Moves to the next frame of the message, or to `Done` after the final one.
    fn next_frame(&mut self) -> Result<(), Error> {
        let expected = match self.state {
            BodyState::NotStarted => Data::Binary,
            BodyState::InFrame(false) => Data::Continue,
            BodyState::InFrame(true) | BodyState::Done => {
                self.state = BodyState::Done;
                return Ok(());
            }
        };
        let frame = self.ws.next_data_frame()?;
        if frame.opcode != OpCode::Data(expected) {
            return Err(match (expected, frame.opcode) {
                (Data::Binary, OpCode::Data(Data::Text)) => Error::UnexpectedMessage {
                    expected: "a binary body message",
                    got: "a text message",
                },
                _ => Error::Framing("frame out of sequence in a body message".into()),
            });
        }
        self.state = BodyState::InFrame(frame.fin);
        self.frame_left = frame.len;
        self.mask = frame.mask;
        self.mask_pos = 0;
        Ok(())
    }
}

impl<S: Read + Write> Read for BodyReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // After a failure the connection is out of step: reading on would take payload
        // bytes for frame headers. Every later read repeats the first error.
        if let Some(why) = &self.failed {
            return Err(io::Error::other(format!("body message broke off: {why}")));
        }
        let result = self.read_payload(buf);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }
}

impl<S: Read + Write> BodyReader<'_, S> {
    fn read_payload(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.frame_left == 0 {
            if self.state == BodyState::Done {
                return Ok(0);
            }
            self.next_frame()?;
        }
        let want = buf
            .len()
            .min(usize::try_from(self.frame_left).unwrap_or(usize::MAX));
        // One read: a peer may trickle a big frame's payload, and what has arrived must
        // go on to the caller now, not once a buffer's worth is in.
        let n = self.ws.io.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::Closed.into());
        }
        if let Some(mask) = self.mask {
            apply_mask(&mut buf[..n], mask, self.mask_pos);
        }
        self.mask_pos += n;
        self.frame_left -= n as u64;
        if self.frame_left == 0 && self.state == BodyState::InFrame(true) {
            self.state = BodyState::Done;
        }
        Ok(n)
    }
}
