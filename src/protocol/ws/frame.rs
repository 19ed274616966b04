//! One WebSocket frame at a time (RFC 6455 §5): headers read and checked, headers written,
//! payloads masked, and the control frames that may come between any two data frames: a
//! ping is answered with a pong, a pong is ignored, a close is echoed and ends the
//! connection. How frames make up messages is left to the connection and to `body`.

use std::io::{Cursor, Read, Write};

use tungstenite::protocol::frame::coding::{Control, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::{Error, Role, WsConn};

/// RFC 6455 §5.5: control frames carry at most 125 payload bytes.
pub(super) const MAX_CONTROL_PAYLOAD: u64 = 125;
/// Most control frames accepted in a row, between two data frames or in one idle check.
/// A peer pinging every few seconds sends a handful; thousands in a row are a flood.
pub(super) const MAX_CONTROL_RUN: usize = 1000;
/// The longest frame header: 2 bytes, a 64-bit length and a mask (RFC 6455 §5.2).
pub(super) const MAX_HEADER_LEN: usize = 14;
/// Buffered output is written out once it grows past this, even before a flush.
const WRITE_THRESHOLD: usize = 64 * 1024;

/// The decoded header of one frame whose payload is still on the socket.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameInfo {
    pub(super) fin: bool,
    pub(super) opcode: OpCode,
    pub(super) len: u64,
    pub(super) mask: Option<[u8; 4]>,
}

impl<S: Read + Write> WsConn<S> {
    /// Reads and checks one frame header. The payload is left on the socket.
    pub(super) fn read_frame_header(&mut self) -> Result<FrameInfo, Error> {
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

    /// Reads frame headers until a data frame comes, answering control frames on the way.
    /// More than [`MAX_CONTROL_RUN`] control frames in a row is a flood, not a peer
    /// keeping a connection alive, and is refused rather than answered forever.
    pub(super) fn next_data_frame(&mut self) -> Result<FrameInfo, Error> {
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
    pub(super) fn handle_control(&mut self, frame: FrameInfo) -> Result<(), Error> {
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

    /// Appends a frame's (unmasked) payload to `bytes`.
    pub(super) fn read_payload_into(
        &mut self,
        frame: &FrameInfo,
        bytes: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let start = bytes.len();
        let len = usize::try_from(frame.len).map_err(|_| Error::Framing("huge frame".into()))?;
        bytes.resize(start + len, 0);
        self.io.read_exact(&mut bytes[start..])?;
        if let Some(mask) = frame.mask {
            apply_mask(&mut bytes[start..], mask, 0);
        }
        Ok(())
    }

    /// The header of a frame we send, with a fresh mask when we are the client.
    pub(super) fn frame_header(&self, opcode: OpCode, fin: bool) -> FrameHeader {
        FrameHeader {
            is_final: fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: (self.role == Role::Client).then(|| fastrand::u32(..).to_ne_bytes()),
        }
    }

    /// Queues one frame, masking it when we are the client.
    pub(super) fn write_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Result<(), Error> {
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
}

/// Writes `header`, for a payload of `len` bytes, into the tail of `room`; returns its
/// length. `room` must hold [`MAX_HEADER_LEN`] bytes.
pub(super) fn put_header(
    header: &FrameHeader,
    len: usize,
    room: &mut [u8],
) -> Result<usize, Error> {
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

/// XORs `buf` with the mask, `pos` being the offset of `buf[0]` in the frame payload.
/// Works a word at a time: masking byte by byte costs more than the copy it rides on.
pub(super) fn apply_mask(buf: &mut [u8], mask: [u8; 4], pos: usize) {
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
