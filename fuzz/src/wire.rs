//! RFC 6455 frames written and read here without wsp's or tungstenite's code, so that
//! the targets check wsp against a second implementation rather than against itself.

/// Opcode of a continuation frame.
pub const CONTINUE: u8 = 0x0;
/// Opcode of the first frame of a text message.
pub const TEXT: u8 = 0x1;
/// Opcode of the first frame of a binary message.
pub const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// One decoded frame, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Appends a well-formed frame: shortest length encoding, payload masked with `mask`.
pub fn encode(out: &mut Vec<u8>, fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
    out.push(u8::from(fin) << 7 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len() as u64;
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    push_payload(out, mask, payload);
}

/// How a hand-made frame states its length, whatever its payload really is.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// Seven bits (0..=125; 126 and 127 announce the longer forms).
    Short(u8),
    /// `126` then 16 bits.
    Medium(u16),
    /// `127` then 64 bits.
    Long(u64),
}

/// Appends a frame built from raw parts: any first byte (FIN, RSV bits, opcode), any
/// stated length, then `payload` (masked when `mask` is set) whatever its real length.
pub fn encode_raw(
    out: &mut Vec<u8>,
    first_byte: u8,
    length: Length,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.push(first_byte);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match length {
        Length::Short(n) => out.push(mask_bit | (n & 0x7f)),
        Length::Medium(n) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Length::Long(n) => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    push_payload(out, mask, payload);
}

fn push_payload(out: &mut Vec<u8>, mask: Option<[u8; 4]>, payload: &[u8]) {
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
}

/// Decodes a whole byte stream of frames, as written by one side: every frame must be
/// masked when `masked` (a client's) and unmasked otherwise, with no RSV bits, and the
/// stream must end on a frame boundary.
///
/// # Errors
/// A description of the first thing that is not so.
pub fn decode_all(mut bytes: &[u8], masked: bool) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (frame, used) = decode_one(bytes, masked)?;
        frames.push(frame);
        bytes = &bytes[used..];
    }
    Ok(frames)
}

fn decode_one(bytes: &[u8], masked: bool) -> Result<(Frame, usize), String> {
    let truncated = || format!("truncated frame in {bytes:02x?}");
    let [b0, b1, ..] = *bytes else {
        return Err(truncated());
    };
    if b0 & 0x70 != 0 {
        return Err(format!("RSV bits set in first byte {b0:#04x}"));
    }
    if (b1 & 0x80 != 0) != masked {
        return Err(format!("mask bit is not {masked} in second byte {b1:#04x}"));
    }
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            let ext = bytes.get(2..4).ok_or_else(truncated)?;
            (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4)
        }
        127 => {
            let ext: [u8; 8] = bytes
                .get(2..10)
                .ok_or_else(truncated)?
                .try_into()
                .map_err(|_| truncated())?;
            (u64::from_be_bytes(ext), 10)
        }
        n => (u64::from(n), 2),
    };
    let mut key = None;
    if masked {
        let k: [u8; 4] = bytes
            .get(at..at + 4)
            .ok_or_else(truncated)?
            .try_into()
            .map_err(|_| truncated())?;
        key = Some(k);
        at += 4;
    }
    let len = usize::try_from(len).map_err(|_| truncated())?;
    let end = at.checked_add(len).ok_or_else(truncated)?;
    let mut payload = bytes.get(at..end).ok_or_else(truncated)?.to_vec();
    if let Some(key) = key {
        for (b, k) in payload.iter_mut().zip(key.iter().cycle()) {
            *b ^= k;
        }
    }
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Ok((frame, end))
}
