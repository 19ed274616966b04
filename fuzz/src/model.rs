//! Structured frame sequences for the `frames_structured` target, and a model of what
//! wsp must make of them.
//!
//! `arbitrary` turns the fuzzer's bytes into a [`Script`]: whole messages split into
//! fragments with control frames in between, all with valid headers (the right mask for
//! the direction, shortest lengths), plus raw frames with any first byte, stated length
//! and mask. Up to the first raw frame the outcome of every read is known, so [`check`]
//! compares wsp's results with the [`Model`]'s, and what wsp wrote back (pongs, the close
//! echo) with what the model expects.

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use wsp::protocol::Role;

use crate::drive::{Outcome, Plan, Run, Step};
use crate::wire::{self, Frame, Length};

/// Buffer sizes for body reads: tiny ones split frames and masks at every offset, the
/// ones above 8 KiB bypass wsp's read buffer.
const CHUNKS: [usize; 8] = [1, 2, 3, 5, 64, 4096, 8193, 65536];
/// Items stop being added past this many input bytes, to stay far below the RSS limit.
const MAX_INPUT: usize = 4 << 20;

/// A peer's whole input, and how we read it.
#[derive(Debug, Arbitrary)]
pub struct Script {
    /// We play the client (peer frames unmasked) rather than the server.
    pub client: bool,
    pub text_limit: u16,
    chunk: u8,
    /// Body bytes read before skipping the rest; `None` reads bodies whole.
    body_budget: Option<u16>,
    skip_limit: u16,
    pub items: Vec<Item>,
    /// Bytes after the items, e.g. a truncated frame.
    pub tail: Vec<u8>,
}

/// What the peer sends next.
#[derive(Debug, Arbitrary)]
pub enum Item {
    /// A data message, `first` then `rest` as continuation frames.
    Message {
        binary: bool,
        first: Fragment,
        rest: Vec<Fragment>,
    },
    /// A control frame between messages.
    Control(Control),
    /// Anything at all, frame-shaped.
    Raw(RawFrame),
}

/// One data frame, with control frames sent just before it.
#[derive(Debug, Arbitrary)]
pub struct Fragment {
    before: Vec<Control>,
    data: Payload,
    mask: [u8; 4],
}

#[derive(Debug, Arbitrary)]
pub enum Payload {
    Bytes(Vec<u8>),
    Text(String),
    /// `len << 1 >> (shift % 17)` bytes: mostly short, sometimes past 65535 (a 64-bit
    /// length), never past 128 KiB, so runs stay fast.
    Filled {
        byte: u8,
        len: u16,
        shift: u8,
    },
}

#[derive(Debug, Arbitrary)]
pub struct Control {
    kind: ControlKind,
    payload: Vec<u8>,
    mask: [u8; 4],
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum ControlKind {
    Ping,
    Pong,
    Close,
}

#[derive(Debug, Arbitrary)]
pub struct RawFrame {
    first_byte: u8,
    length: RawLength,
    mask: Option<[u8; 4]>,
    payload: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum RawLength {
    /// The payload's real length, in the shortest form.
    Actual,
    Short(u8),
    Medium(u16),
    Long(u64),
}

impl Script {
    /// How the driver reads this script's input.
    pub fn plan(&self) -> Plan {
        Plan {
            role: if self.client {
                Role::Client
            } else {
                Role::Server
            },
            text_limit: usize::from(self.text_limit),
            chunk: CHUNKS[usize::from(self.chunk) % CHUNKS.len()],
            body_budget: self.body_budget.map_or(usize::MAX, usize::from),
            skip_limit: u64::from(self.skip_limit),
            exchanges: 64,
            check_idle_first: false,
        }
    }

    /// The bytes the peer sends, and the model of them.
    pub fn encode(&self) -> (Vec<u8>, Model) {
        let mask = |key: [u8; 4]| (!self.client).then_some(key);
        let mut bytes = Vec::new();
        let mut known = VecDeque::new();
        let mut seen_raw = false;
        for item in &self.items {
            if bytes.len() > MAX_INPUT {
                break;
            }
            let frames = match item {
                Item::Message {
                    binary,
                    first,
                    rest,
                } => message_frames(*binary, first, rest),
                Item::Control(c) => vec![(c.frame(), c.mask)],
                Item::Raw(raw) => {
                    raw.encode(&mut bytes);
                    seen_raw = true;
                    continue;
                }
            };
            for (frame, key) in frames {
                wire::encode(
                    &mut bytes,
                    frame.fin,
                    frame.opcode,
                    mask(key),
                    &frame.payload,
                );
                if !seen_raw {
                    known.push_back(frame);
                }
            }
        }
        bytes.extend_from_slice(&self.tail);
        let model = Model {
            frames: known,
            exact_end: !seen_raw && self.tail.is_empty(),
            expected_output: Vec::new(),
        };
        (bytes, model)
    }
}

fn message_frames(binary: bool, first: &Fragment, rest: &[Fragment]) -> Vec<(Frame, [u8; 4])> {
    let mut frames = Vec::new();
    let count = 1 + rest.len();
    for (i, fragment) in std::iter::once(first).chain(rest).enumerate() {
        frames.extend(fragment.before.iter().map(|c| (c.frame(), c.mask)));
        let opcode = match (i, binary) {
            (0, true) => wire::BINARY,
            (0, false) => wire::TEXT,
            _ => wire::CONTINUE,
        };
        let frame = Frame {
            fin: i + 1 == count,
            opcode,
            payload: fragment.data.bytes(),
        };
        frames.push((frame, fragment.mask));
    }
    frames
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b.clone(),
            Payload::Text(t) => t.as_bytes().to_vec(),
            Payload::Filled { byte, len, shift } => {
                let len = usize::from(*len) << 1 >> (shift % 17);
                vec![*byte; len]
            }
        }
    }
}

impl Control {
    /// A valid control frame: final, payload cut to 125 bytes.
    fn frame(&self) -> Frame {
        let opcode = match self.kind {
            ControlKind::Ping => wire::PING,
            ControlKind::Pong => wire::PONG,
            ControlKind::Close => wire::CLOSE,
        };
        let mut payload = self.payload.clone();
        payload.truncate(125);
        Frame {
            fin: true,
            opcode,
            payload,
        }
    }
}

impl RawFrame {
    fn encode(&self, out: &mut Vec<u8>) {
        let length = match self.length {
            RawLength::Actual => {
                let mut frame = Vec::new();
                wire::encode(&mut frame, false, 0, self.mask, &self.payload);
                frame[0] = self.first_byte;
                out.extend_from_slice(&frame);
                return;
            }
            RawLength::Short(n) => Length::Short(n),
            RawLength::Medium(n) => Length::Medium(n),
            RawLength::Long(n) => Length::Long(n),
        };
        wire::encode_raw(out, self.first_byte, length, self.mask, &self.payload);
    }
}

/// What a correct reader makes of the known frames. Each read returns `None` once it
/// would need frames past the known ones (a raw frame or the tail follows).
#[derive(Debug)]
pub struct Model {
    frames: VecDeque<Frame>,
    /// The input ends right after the known frames.
    exact_end: bool,
    /// What a reader writes back: a pong per ping, a close echoed.
    pub expected_output: Vec<Frame>,
}

impl Model {
    /// The next data frame, answering control frames on the way.
    fn next_data_frame(&mut self) -> Option<Result<Frame, Outcome>> {
        loop {
            let Some(frame) = self.frames.pop_front() else {
                return self.exact_end.then_some(Err(Outcome::Closed));
            };
            match frame.opcode {
                wire::PING => self.expected_output.push(Frame {
                    opcode: wire::PONG,
                    ..frame
                }),
                wire::PONG => {}
                wire::CLOSE => {
                    self.expected_output.push(frame);
                    return Some(Err(Outcome::Closed));
                }
                _ => return Some(Ok(frame)),
            }
        }
    }

    /// A whole message of at most `limit` bytes as text; a binary one is refused when
    /// `text_only`.
    pub fn read_text(&mut self, limit: usize, text_only: bool) -> Option<Result<String, Outcome>> {
        let first = match self.next_data_frame()? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e)),
        };
        if first.opcode == wire::CONTINUE {
            return Some(Err(Outcome::Framing));
        }
        let binary = first.opcode == wire::BINARY;
        let mut bytes = Vec::new();
        let mut frame = first;
        loop {
            if bytes.len() + frame.payload.len() > limit {
                return Some(Err(Outcome::TooLarge));
            }
            bytes.extend_from_slice(&frame.payload);
            if frame.fin {
                break;
            }
            frame = match self.next_data_frame()? {
                Ok(f) if f.opcode == wire::CONTINUE => f,
                Ok(_) => return Some(Err(Outcome::Framing)),
                Err(e) => return Some(Err(e)),
            };
        }
        if text_only && binary {
            return Some(Err(Outcome::UnexpectedMessage));
        }
        Some(String::from_utf8(bytes).map_err(|_| Outcome::InvalidUtf8))
    }

    /// A whole binary message: its bytes up to where it ends or fails.
    pub fn read_body(&mut self) -> Option<(Vec<u8>, Result<(), Outcome>)> {
        let mut bytes = Vec::new();
        let mut expected = wire::BINARY;
        loop {
            let frame = match self.next_data_frame()? {
                Ok(frame) => frame,
                Err(e) => return Some((bytes, Err(e))),
            };
            if frame.opcode != expected {
                let e = if expected == wire::BINARY && frame.opcode == wire::TEXT {
                    Outcome::UnexpectedMessage
                } else {
                    Outcome::Framing
                };
                return Some((bytes, Err(e)));
            }
            bytes.extend_from_slice(&frame.payload);
            if frame.fin {
                return Some((bytes, Ok(())));
            }
            expected = wire::CONTINUE;
        }
    }
}

/// Compares a run with the model, step by step, as far as the model knows the input.
///
/// # Panics
/// On the first difference.
pub fn check(script: &Script, plan: &Plan, mut model: Model, run: &Run) {
    let limit = plan.text_limit;
    let mut all_known = true;
    for step in &run.steps {
        let known = match step {
            Step::Greeting(got) => model
                .read_text(limit, false)
                .map(|want| assert_eq!(got, &want, "greeting")),
            Step::Head(got) => model
                .read_text(limit, true)
                .map(|want| assert_eq!(got, &want, "head")),
            Step::Body { bytes, end, done } => {
                let answered = model.expected_output.len();
                let known = model
                    .read_body()
                    .and_then(|want| check_body(plan, bytes, end, *done, want));
                if known.is_none() {
                    // The model read the whole body; wsp stopped somewhere inside it.
                    model.expected_output.truncate(answered);
                }
                known
            }
        };
        if known.is_none() {
            all_known = false;
            break;
        }
    }
    let written = wire::decode_all(&run.output, script.client)
        .unwrap_or_else(|e| panic!("wsp wrote a malformed frame: {e}"));
    if all_known {
        assert_eq!(written, model.expected_output, "frames written back");
    } else {
        assert!(
            written.starts_with(&model.expected_output),
            "frames written back: {written:?}, expected {:?} first",
            model.expected_output
        );
    }
}

/// Checks one body; `None` when the run stopped where the model cannot follow.
fn check_body(
    plan: &Plan,
    bytes: &[u8],
    end: &Result<(), Outcome>,
    done: bool,
    (want_bytes, want_end): (Vec<u8>, Result<(), Outcome>),
) -> Option<()> {
    assert!(want_bytes.starts_with(bytes), "body bytes differ");
    if plan.body_budget == usize::MAX {
        assert_eq!(bytes, want_bytes.as_slice(), "body bytes");
    }
    match end {
        Err(e) => assert_eq!(Err(e), want_end.as_ref(), "body error"),
        Ok(()) if done => {
            assert_eq!(want_end, Ok(()), "body finished where the model fails");
            let most = bytes.len() as u64 + plan.skip_limit;
            assert!(
                want_bytes.len() as u64 <= most,
                "finished past the skip limit"
            );
        }
        // Left mid-message within the limits: the position is not known.
        Ok(()) => return None,
    }
    Some(())
}
