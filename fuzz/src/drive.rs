//! Runs a `WsConn` over an in-memory input through the reads that a wsp connection
//! makes: a greeting (on the server side), then exchanges of a text head and a streamed
//! binary body. Records
//! what each read gave, and checks on the way what must hold whatever the input.

use std::io::{self, Read};

use wsp::protocol::{Error, Role, WsConn};

use crate::stream::MemStream;

/// How the reads are made.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which end we play: the server expects masked frames, the client unmasked ones.
    pub role: Role,
    /// Limit for the greeting and each head.
    pub text_limit: usize,
    /// Size of the buffer body bytes are read into.
    pub chunk: usize,
    /// Body bytes read before the rest of the body is skipped.
    pub body_budget: usize,
    /// Limit given to `skip_rest`.
    pub skip_limit: u64,
    /// Most head + body exchanges after the greeting.
    pub exchanges: usize,
    /// Whether `check_idle` runs before the greeting.
    pub check_idle_first: bool,
}

/// A read's result in a form that compares with a model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Closed,
    Framing,
    UnexpectedMessage,
    TooLarge,
    InvalidUtf8,
    /// Any other error, by its message.
    Other(String),
}

/// One read and what it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `read_any_text`.
    Greeting(Result<String, Outcome>),
    /// `read_text`.
    Head(Result<String, Outcome>),
    /// A body: the bytes read (at most the budget, give or take a chunk), then how the
    /// reading and the `skip_rest` ended, and whether the message was then finished.
    Body {
        bytes: Vec<u8>,
        end: Result<(), Outcome>,
        done: bool,
    },
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Run {
    pub steps: Vec<Step>,
    /// What wsp wrote back (pongs, close echoes).
    pub output: Vec<u8>,
}

/// Reads from `input` as `plan` says until a read fails, a body is left unfinished, or
/// the exchanges run out.
///
/// # Panics
/// When wsp breaks a rule that holds for any input (the point of fuzzing it).
pub fn run(input: Vec<u8>, plan: &Plan) -> Run {
    let input_len = input.len();
    let mut ws = WsConn::new(MemStream::new(input), plan.role);
    let mut steps = Vec::new();
    if plan.check_idle_first {
        let _ = ws.check_idle();
    }
    let mut go_on = true;
    if plan.role == Role::Server {
        let greeting = text_step(ws.read_any_text(plan.text_limit, "greeting"), plan);
        go_on = greeting.is_ok();
        steps.push(Step::Greeting(greeting));
    }
    for _ in 0..plan.exchanges {
        if !go_on {
            break;
        }
        let head = text_step(ws.read_text(plan.text_limit, "head"), plan);
        go_on = head.is_ok();
        steps.push(Step::Head(head));
        if !go_on {
            break;
        }
        let body = body_step(&mut ws, plan);
        go_on = matches!(
            body,
            Step::Body {
                end: Ok(()),
                done: true,
                ..
            }
        );
        steps.push(body);
    }
    let stream = ws.get_ref();
    assert!(stream.consumed() <= input_len as u64);
    let body_bytes: usize = steps
        .iter()
        .map(|s| match s {
            Step::Body { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum();
    assert!(body_bytes <= input_len, "more body bytes than input bytes");
    let output = stream.output.clone();
    // What is written back only answers what came in: no amplification.
    assert!(
        output.len() <= 3 * input_len + 16,
        "{} bytes written for {input_len} read",
        output.len()
    );
    Run { steps, output }
}

fn text_step(result: Result<String, Error>, plan: &Plan) -> Result<String, Outcome> {
    match result {
        Ok(text) => {
            assert!(text.len() <= plan.text_limit, "text above its limit");
            Ok(text)
        }
        Err(e) => Err(outcome(&e)),
    }
}

/// Reads a body into a fixed buffer up to the budget, then skips the rest.
fn body_step(ws: &mut WsConn<MemStream>, plan: &Plan) -> Step {
    let mut reader = ws.body_reader();
    let mut buf = vec![0u8; plan.chunk];
    let mut bytes = Vec::new();
    let mut end = Ok(());
    while bytes.len() < plan.body_budget {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= buf.len());
                bytes.extend_from_slice(&buf[..n]);
            }
            Err(e) => {
                end = Err(io_outcome(&e));
                break;
            }
        }
    }
    if end.is_ok() {
        match reader.skip_rest(plan.skip_limit) {
            Ok(finished) => assert_eq!(finished, reader.is_done()),
            Err(e) => end = Err(io_outcome(&e)),
        }
    }
    let done = reader.is_done();
    if done {
        let n = reader
            .read(&mut buf)
            .expect("a finished body reads as end of message");
        assert_eq!(n, 0, "bytes read after the end of a body message");
    }
    Step::Body { bytes, end, done }
}

/// Classifies a protocol error; every error must say something.
pub fn outcome(e: &Error) -> Outcome {
    assert!(!e.to_string().is_empty(), "empty error message for {e:?}");
    match e {
        Error::Closed => Outcome::Closed,
        Error::Framing(_) => Outcome::Framing,
        Error::UnexpectedMessage { .. } => Outcome::UnexpectedMessage,
        Error::TooLarge { .. } => Outcome::TooLarge,
        Error::InvalidUtf8(_) => Outcome::InvalidUtf8,
        other => Outcome::Other(other.to_string()),
    }
}

/// Classifies an error from `BodyReader`, which wraps protocol errors in `io::Error`.
pub fn io_outcome(e: &io::Error) -> Outcome {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(inner) => outcome(inner),
        None => Outcome::Other(e.to_string()),
    }
}
