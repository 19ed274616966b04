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
//! This file is the connection: [`WsConn`] owns the stream and its buffers, reads and
//! writes the small messages, pings, closes, and checks an idle connection. Writes are
//! buffered until [`WsConn::flush`], so a head and an empty body leave in one system call.
//!
//! - [`frame`]: one frame at a time: headers read, checked and written, masking, and the
//!   control frames that may come between any two data frames (a ping is answered with a
//!   pong, a pong is ignored, a close ends the connection with [`Error::Closed`]).
//! - [`body`]: a body message streamed either way, [`BodyReader`] and
//!   [`WsConn::write_body`].
//! - [`buffered`]: the read buffer, which exists only while it is used.

// The list above links to modules internal to the crate, which public docs leave out:
// `cargo doc --document-private-items` shows them.
#![allow(rustdoc::private_intra_doc_links)]

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

pub use body::BodyReader;
use buffered::Buffered;
use frame::{MAX_CONTROL_PAYLOAD, MAX_CONTROL_RUN};

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::Error;

/// An idle connection keeps a write buffer up to this size; a bigger one is given back.
const KEPT_WRITE_BUFFER: usize = 1024;

/// Close code for a connection that is not needed any more, e.g. an idle one beyond the
/// pool's size (RFC 6455 §7.4.1: normal closure).
pub(crate) const CLOSE_NORMAL: u16 = 1000;
/// Close code for a connection we give up: shutting down, or the peer no longer answers
/// pings (RFC 6455: going away).
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a peer that broke the protocol, e.g. with a bad greeting (RFC 6455:
/// protocol error).
pub(crate) const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for an exchange that failed on our side and left the connection out of
/// step (RFC 6455: internal error).
pub(crate) const CLOSE_INTERNAL_ERROR: u16 = 1011;

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

    /// Takes the bytes already read from the socket and not consumed (see
    /// [`Buffered::take_unread`]); [`WsConn::put_unread`] gives them back.
    pub fn take_unread(&mut self) -> Vec<u8> {
        self.io.take_unread()
    }

    /// Puts back bytes another reader of this connection's socket read past what it
    /// consumed: they are read before the socket.
    pub fn put_unread(&mut self, unread: Vec<u8>) {
        self.io.put_unread(unread);
    }

    /// Takes the bytes read and not consumed, and the stream: the connection is done with.
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        let unread = self.io.take_unread();
        (self.io.into_stream(), unread)
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

    /// Queues a whole text message (one frame).
    pub fn write_text(&mut self, text: &str) -> Result<(), Error> {
        self.write_frame(OpCode::Data(Data::Text), true, text.as_bytes())
    }

    /// Sends a ping control frame now.
    pub fn ping(&mut self) -> Result<(), Error> {
        self.write_frame(OpCode::Control(Control::Ping), true, &[])?;
        self.flush()
    }

    /// Sends a close frame with a status code (one of the `CLOSE_*` codes) and reason, best
    /// effort: the connection is being given up anyway.
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
pub(crate) fn is_timeout_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

mod body;
mod buffered;
mod frame;
#[cfg(test)]
mod tests;
