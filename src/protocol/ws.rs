//! Frame-level WebSocket I/O (RFC 6455), so that bodies stream instead of being held whole.
//!
//! tungstenite's message-level `read()` reassembles a whole message in memory, which a
//! 1 GiB body cannot afford, and its `FrameSocket` allocates each frame's payload whole.
//! So [`WsConn`] reads frame headers with tungstenite's [`FrameHeader`] and then copies
//! payload bytes straight from the socket into the caller's buffer: a body message of any
//! size, split into any number of frames of any size (the Go peer writes frames of a few
//! KiB), passes through a fixed buffer. Small messages (greeting, JSON heads) are
//! collected whole, up to a limit given by the caller.
//!
//! Control frames are handled wherever they appear between data frames: a ping is
//! answered with a pong, a pong is ignored, a close ends the connection with
//! [`Error::Closed`]. Writes are buffered until [`WsConn::flush`], so a head and an empty
//! body leave in one system call.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

use buffered::Buffered;
pub use buffered::READ_BUFFER_LEN;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::Error;
use crate::buffer::CopyBuffer;

/// RFC 6455 §5.5: control frames carry at most 125 payload bytes.
pub const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Most control frames accepted in a row, between two data frames or in one idle check.
/// A peer pinging every few seconds sends a handful; thousands in a row are a flood.
pub const MAX_CONTROL_RUN: usize = 1000;
/// The longest frame header: 2 bytes, a 64-bit length and a mask (RFC 6455 §5.2).
const MAX_HEADER_LEN: usize = 14;
/// Buffered output is written out once it grows past this, even before a flush.
const WRITE_THRESHOLD: usize = 64 * 1024;
/// An idle connection keeps a write buffer up to this size; a bigger one is given back.
const KEPT_WRITE_BUFFER: usize = 1024;

/// Which end of the connection we are: it decides who masks (RFC 6455 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection: expects masked frames, sends unmasked ones.
    Server,
    /// Dialed the connection: sends masked frames, expects unmasked ones.
    Client,
}

/// What [`WsConn::await_message`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// A data message starts: its first frame is next.
    Message,
    /// A control frame came and was handled (a ping answered): the peer is alive.
    Control,
    /// The peer closed the connection (close frame or end of stream).
    Closed,
}

/// What [`WsConn::check_idle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing arrived since the last check.
    Quiet,
    /// Control frames (or part of one) arrived: the peer is alive.
    Heard,
    /// End of stream, a socket error, a close frame, or a data frame nobody asked for.
    Gone,
}

/// The decoded header of one frame whose payload is still on the socket.
#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    fin: bool,
    opcode: OpCode,
    len: u64,
    mask: Option<[u8; 4]>,
}

/// One WebSocket connection after the opening handshake, owned by one thread at a time.
#[derive(Debug)]
pub struct WsConn<S> {
    io: Buffered<S>,
    role: Role,
    out: Vec<u8>,
}

impl<S: Read + Write> WsConn<S> {
    /// Wraps a stream whose handshake is done.
    pub fn new(stream: S, role: Role) -> Self {
        WsConn {
            io: Buffered::new(stream),
            role,
            out: Vec::new(),
        }
    }

    /// Wraps a stream whose handshake is done, with the bytes already read past it.
    pub fn with_leftover(stream: S, leftover: Vec<u8>, role: Role) -> Self {
        WsConn {
            io: Buffered::with_leftover(stream, leftover),
            role,
            out: Vec::new(),
        }
    }

    /// Wraps a buffered stream that may already hold bytes read past the handshake.
    pub fn from_buffered(io: BufReader<S>, role: Role) -> Self {
        let leftover = io.buffer().to_vec();
        WsConn {
            io: Buffered::with_leftover(io.into_inner(), leftover),
            role,
            out: Vec::new(),
        }
    }

    /// Gives back the memory of the read and write buffers, as far as they hold nothing:
    /// for a connection that may stay idle a long time. The next exchange allocates
    /// them again.
    pub fn release_buffers(&mut self) {
        self.io.release();
        if self.out.is_empty() && self.out.capacity() > KEPT_WRITE_BUFFER {
            self.out = Vec::new();
        }
    }

    /// The underlying stream, e.g. to set socket time-outs.
    pub fn get_ref(&self) -> &S {
        self.io.get_ref()
    }

    /// The underlying stream, mutable: e.g. for a TLS stream to decrypt what arrived
    /// while waiting. Reading or writing WebSocket bytes through it breaks the framing.
    pub fn get_mut(&mut self) -> &mut S {
        self.io.get_mut()
    }

    /// Whether bytes from the peer are already buffered, so that reading will not wait.
    pub fn has_buffered(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    /// Waits for the next data message while idle, answering the control frames that come
    /// first, one per call. Nothing of a data frame is consumed, so a [`Awaited::Message`]
    /// is followed by [`read_text`](Self::read_text) or [`body_reader`](Self::body_reader).
    ///
    /// # Errors
    /// A socket read time-out while nothing had arrived is returned as [`Error::Io`] with
    /// its kind (`WouldBlock` or `TimedOut`, see [`Error::is_timeout`]) and leaves the
    /// connection as it was; any other error leaves it unusable.
    pub fn await_message(&mut self) -> Result<Awaited, Error> {
        let first = match self.io.fill_buf()? {
            [] => return Ok(Awaited::Closed),
            [first, ..] => *first,
        };
        if first & 0x08 == 0 {
            return Ok(Awaited::Message);
        }
        // A control frame: its few remaining bytes must follow at once; a time-out in
        // its middle would leave us inside a frame, so it is no plain time-out.
        let frame = self.read_frame_header().map_err(mid_frame)?;
        match self.handle_control(frame) {
            Ok(()) => Ok(Awaited::Control),
            Err(Error::Closed) => Ok(Awaited::Closed),
            Err(e) => Err(mid_frame(e)),
        }
    }

    /// Answers the control frames that arrived while the connection sat idle, and tells
    /// whether the peer is still there. Call it with the socket in non-blocking mode: it
    /// reads only what has already arrived, and only whole frames, at most
    /// [`MAX_CONTROL_RUN`] of them (a flood waits for the next check).
    pub fn check_idle(&mut self) -> Idle {
        let mut heard = Idle::Quiet;
        for _ in 0..MAX_CONTROL_RUN {
            let pending = match self.io.fill_buf() {
                Ok([]) => return Idle::Gone,
                Ok(pending) => pending,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return heard,
                Err(_) => return Idle::Gone,
            };
            let mut cursor = Cursor::new(pending);
            let complete = match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => match header.opcode {
                    // The length is the peer's word: a long control frame is refused
                    // before it is added to anything.
                    OpCode::Control(_) if len > MAX_CONTROL_PAYLOAD => return Idle::Gone,
                    OpCode::Control(_) => cursor.position() + len <= pending.len() as u64,
                    OpCode::Data(_) => return Idle::Gone,
                },
                Ok(None) => false,
                Err(_) => return Idle::Gone,
            };
            if !complete {
                // Part of a frame, cut at the end of what was read: read on behind it.
                // If the rest has not arrived yet, nothing is proven.
                match self.io.fill_more() {
                    Ok(0) => return Idle::Gone,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return heard,
                    Err(_) => return Idle::Gone,
                }
            }
            let handled = self
                .read_frame_header()
                .and_then(|frame| self.handle_control(frame));
            if handled.is_err() {
                return Idle::Gone;
            }
            heard = Idle::Heard;
        }
        heard
    }

    /// Reads a whole text message of at most `limit` bytes (a head or a greeting).
    ///
    /// # Errors
    /// [`Error::UnexpectedMessage`] for a binary message, [`Error::TooLarge`] past
    /// `limit`, [`Error::InvalidUtf8`], or any framing or I/O error.
    pub fn read_text(&mut self, limit: usize, what: &'static str) -> Result<String, Error> {
        let (opcode, bytes) = self.read_small_message(limit, what)?;
        if opcode != Data::Text {
            return Err(Error::UnexpectedMessage {
                expected: what,
                got: "a binary message",
            });
        }
        String::from_utf8(bytes).map_err(|_| Error::InvalidUtf8(what))
    }

    /// Reads a whole message of either kind, at most `limit` bytes, as text. The greeting
    /// uses this: the Go server accepts a binary greeting, so we do too.
    pub fn read_any_text(&mut self, limit: usize, what: &'static str) -> Result<String, Error> {
        let (_, bytes) = self.read_small_message(limit, what)?;
        String::from_utf8(bytes).map_err(|_| Error::InvalidUtf8(what))
    }

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

    /// Queues a whole text message (one frame).
    pub fn write_text(&mut self, text: &str) -> Result<(), Error> {
        self.write_frame(OpCode::Data(Data::Text), true, text.as_bytes())
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

    /// Sends a ping control frame now.
    pub fn ping(&mut self) -> Result<(), Error> {
        self.write_frame(OpCode::Control(Control::Ping), true, &[])?;
        self.flush()
    }

    /// Sends a close frame with a status code and reason, best effort: the connection is
    /// being given up anyway.
    pub fn close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend(reason.bytes().take(MAX_CONTROL_PAYLOAD as usize - 2));
        let _ = self.write_frame(OpCode::Control(Control::Close), true, &payload);
        let _ = self.flush();
    }

    /// Writes out everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        let stream = self.io.get_mut();
        stream.write_all(&self.out)?;
        self.out.clear();
        stream.flush()?;
        Ok(())
    }

    /// Queues one frame, masking it when we are the client.
    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<(), Error> {
        let header = self.frame_header(opcode, fin);
        header
            .format(payload.len() as u64, &mut self.out)
            .map_err(|e| Error::Framing(e.to_string()))?;
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(mask) = header.mask {
            apply_mask(&mut self.out[start..], mask, 0);
        }
        if self.out.len() >= WRITE_THRESHOLD {
            self.io.get_mut().write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
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

    /// The header of a frame we send, with a fresh mask when we are the client.
    fn frame_header(&self, opcode: OpCode, fin: bool) -> FrameHeader {
        FrameHeader {
            is_final: fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: (self.role == Role::Client).then(|| fastrand::u32(..).to_ne_bytes()),
        }
    }

    /// Reads a whole message of at most `limit` bytes into memory.
    fn read_small_message(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<(Data, Vec<u8>), Error> {
        let first = self.next_data_frame()?;
        let kind = match first.opcode {
            OpCode::Data(kind @ (Data::Text | Data::Binary)) => kind,
            _ => {
                return Err(Error::Framing(
                    "continuation frame outside a message".into(),
                ))
            }
        };
        let mut bytes = Vec::new();
        let mut frame = first;
        loop {
            if bytes.len() as u64 + frame.len > limit as u64 {
                return Err(Error::TooLarge { what, limit });
            }
            self.read_payload_into(&frame, &mut bytes)?;
            if frame.fin {
                return Ok((kind, bytes));
            }
            frame = self.next_data_frame()?;
            if frame.opcode != OpCode::Data(Data::Continue) {
                return Err(Error::Framing(format!("new message started inside {what}")));
            }
        }
    }

    /// Appends a frame's (unmasked) payload to `bytes`.
    fn read_payload_into(&mut self, frame: &FrameInfo, bytes: &mut Vec<u8>) -> Result<(), Error> {
        let start = bytes.len();
        let len = usize::try_from(frame.len).map_err(|_| Error::Framing("huge frame".into()))?;
        bytes.resize(start + len, 0);
        self.io.read_exact(&mut bytes[start..])?;
        if let Some(mask) = frame.mask {
            apply_mask(&mut bytes[start..], mask, 0);
        }
        Ok(())
    }

    /// Reads frame headers until a data frame comes, answering control frames on the way.
    /// More than [`MAX_CONTROL_RUN`] control frames in a row is a flood, not a peer
    /// keeping a connection alive, and is refused rather than answered forever.
    fn next_data_frame(&mut self) -> Result<FrameInfo, Error> {
        for _ in 0..=MAX_CONTROL_RUN {
            let frame = self.read_frame_header()?;
            if let OpCode::Data(_) = frame.opcode {
                return Ok(frame);
            }
            self.handle_control(frame)?;
        }
        Err(Error::Framing(format!(
            "more than {MAX_CONTROL_RUN} control frames in a row (ping flood)"
        )))
    }

    /// Reads a control frame's payload and acts on it: a ping is answered with a pong, a
    /// pong ignored, a close echoed and reported as [`Error::Closed`].
    fn handle_control(&mut self, frame: FrameInfo) -> Result<(), Error> {
        let mut payload = Vec::new();
        self.read_payload_into(&frame, &mut payload)?;
        match frame.opcode {
            OpCode::Control(Control::Ping) => {
                self.write_frame(OpCode::Control(Control::Pong), true, &payload)?;
                self.flush()
            }
            OpCode::Control(Control::Pong) => Ok(()),
            _ => {
                // Close (reserved opcodes were refused by the header parser).
                self.write_frame(OpCode::Control(Control::Close), true, &payload)?;
                let _ = self.flush();
                Err(Error::Closed)
            }
        }
    }

    /// Reads and checks one frame header. The payload is left on the socket.
    fn read_frame_header(&mut self) -> Result<FrameInfo, Error> {
        let mut buf = [0u8; 14];
        self.io.read_exact(&mut buf[..2])?;
        let extra_len = match buf[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let masked = buf[1] & 0x80 != 0;
        let header_len = 2 + extra_len + if masked { 4 } else { 0 };
        self.io.read_exact(&mut buf[2..header_len])?;
        let (header, len) = FrameHeader::parse(&mut Cursor::new(&buf[..header_len]))
            .map_err(|e| Error::Framing(e.to_string()))?
            .ok_or_else(|| Error::Framing("truncated frame header".into()))?;
        let frame = FrameInfo {
            fin: header.is_final,
            opcode: header.opcode,
            len,
            mask: header.mask,
        };
        self.check_frame(&header, &frame)?;
        Ok(frame)
    }

    /// Refuses what RFC 6455 forbids: reserved bits without an extension, a mask in the
    /// wrong direction, lengths with the top bit set, long or fragmented control frames.
    fn check_frame(&self, header: &FrameHeader, frame: &FrameInfo) -> Result<(), Error> {
        let why = if header.rsv1 || header.rsv2 || header.rsv3 {
            "reserved bits set but no extension was negotiated"
        } else if self.role == Role::Server && frame.mask.is_none() {
            "unmasked frame from a client"
        } else if self.role == Role::Client && frame.mask.is_some() {
            "masked frame from a server"
        } else if frame.len >> 63 != 0 {
            "frame length has its most significant bit set"
        } else if matches!(frame.opcode, OpCode::Control(_))
            && (!frame.fin || frame.len > MAX_CONTROL_PAYLOAD)
        {
            "control frame fragmented or longer than 125 bytes"
        } else {
            return Ok(());
        };
        Err(Error::Framing(why.into()))
    }
}

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

/// Writes `header`, for a payload of `len` bytes, into the tail of `room`; returns its
/// length. `room` must hold [`MAX_HEADER_LEN`] bytes.
fn put_header(header: &FrameHeader, len: usize, room: &mut [u8]) -> Result<usize, Error> {
    let mut encoded = [0u8; MAX_HEADER_LEN];
    let mut cursor = &mut encoded[..];
    header
        .format(len as u64, &mut cursor)
        .map_err(|e| Error::Framing(e.to_string()))?;
    let header_len = MAX_HEADER_LEN - cursor.len();
    let start = room.len() - header_len;
    room[start..].copy_from_slice(&encoded[..header_len]);
    Ok(header_len)
}

/// An error met inside a control frame: even a time-out leaves the stream mid-frame.
fn mid_frame(e: Error) -> Error {
    match e {
        Error::Io(e) if is_timeout_kind(e.kind()) => {
            Error::Framing(format!("control frame cut short: {e}"))
        }
        other => other,
    }
}

/// Whether an I/O error kind is a socket time-out (Linux reports `WouldBlock`).
pub fn is_timeout_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// XORs `buf` with the mask, `pos` being the offset of `buf[0]` in the frame payload.
/// Works a word at a time: masking byte by byte costs more than the copy it rides on.
fn apply_mask(buf: &mut [u8], mask: [u8; 4], pos: usize) {
    let mut rotated = mask;
    rotated.rotate_left(pos % 4);
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
}

mod buffered;
#[cfg(test)]
mod tests;
