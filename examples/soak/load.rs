//! The load: caller threads, each with its own ureq agent, looping over a mix of requests
//! relayed through the server's `/request` until told to stop, and recording each one:
//! when it started, how long it took, and how it ended. The answer is checked, not only
//! its status: a relay that mangles a body is a failure like any other.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::routes;

/// The caller's own time-out for a whole request, body included.
pub const CALLER_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of the `/bytes` bodies asked for.
pub const BYTES_LEN: usize = 65_536;
/// How long `/sleep` is asked to sleep, in ms.
const SLEEP_MS: u64 = 20;
/// How long a caller waits after a failure before its next request: a caller that
/// retried at once would turn a second of "no client yet" into thousands of failures.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(50);
/// Most body bytes a caller reads (a wrong, huge answer must not exhaust memory).
const MAX_BODY: u64 = 1 << 20;

/// One of the requests in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hello,
    Bytes,
    Post,
    Sleep,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Hello, Kind::Bytes, Kind::Post, Kind::Sleep];

    /// The request as a caller sees it, e.g. `GET /hello`.
    pub fn describe(self) -> String {
        match self {
            Kind::Hello => "GET /hello".into(),
            Kind::Bytes => format!("GET /bytes?n={BYTES_LEN}"),
            Kind::Post => "POST /post".into(),
            Kind::Sleep => format!("GET /sleep?ms={SLEEP_MS}"),
        }
    }

    fn path(self) -> String {
        match self {
            Kind::Hello => "/hello".into(),
            Kind::Bytes => format!("/bytes?n={BYTES_LEN}"),
            Kind::Post => "/post".into(),
            Kind::Sleep => format!("/sleep?ms={SLEEP_MS}"),
        }
    }
}

/// How a request ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// 200 and the expected body.
    Ok,
    /// Another status; the first line of its body.
    Status { code: u16, first_line: String },
    /// 200, but the body was not the expected one.
    BadBody(String),
    /// 200, then reading the body failed: the relay was cut after the head went out.
    BodyCut(String),
    /// No response at all; `connect` when the connection itself was refused.
    Transport { connect: bool, error: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Status { code, first_line } => format!("{code} {first_line}"),
            Outcome::BadBody(why) => format!("200 with a wrong body: {why}"),
            Outcome::BodyCut(why) => format!("200, body cut: {why}"),
            Outcome::Transport { error, .. } => format!("transport error: {error}"),
        }
    }
}

/// One request as the caller saw it; times are from the start of the load.
#[derive(Clone, Debug)]
pub struct Record {
    pub kind: Kind,
    pub start: Duration,
    pub latency: Duration,
    pub outcome: Outcome,
}

impl Record {
    pub fn end(&self) -> Duration {
        self.start + self.latency
    }

    /// Whether the request was under way at `at`.
    pub fn spans(&self, at: Duration) -> bool {
        self.start <= at && at <= self.end()
    }
}

/// Where callers send their requests.
#[derive(Clone, Copy)]
pub struct Target {
    pub server: SocketAddr,
    pub api: SocketAddr,
}

/// Starts `count` callers; each returns its records once `stop` is set.
pub fn spawn_callers(
    count: usize,
    target: Target,
    t0: Instant,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<Record>>> {
    (0..count)
        .map(|index| {
            let stop = Arc::clone(stop);
            thread::Builder::new()
                .name(format!("caller-{index}"))
                .spawn(move || run_caller(index, target, t0, &stop))
                .unwrap_or_else(|e| panic!("spawning caller {index}: {e}"))
        })
        .collect()
}

fn run_caller(index: usize, target: Target, t0: Instant, stop: &AtomicBool) -> Vec<Record> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(CALLER_TIMEOUT))
        .build()
        .into();
    let url = format!("http://{}/request", target.server);
    let mut records = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let kind = Kind::ALL[(index + n) % Kind::ALL.len()];
        let destination = format!("http://{}{}", target.api, kind.path());
        let body = format!("soak caller {index} request {n}");
        let started = Instant::now();
        let outcome = call(&agent, &url, &destination, kind, &body);
        let failed = !outcome.is_ok();
        records.push(Record {
            kind,
            start: started - t0,
            latency: started.elapsed(),
            outcome,
        });
        n += 1;
        if failed {
            thread::sleep(PAUSE_AFTER_FAILURE);
        }
    }
    records
}

/// Sends one request and checks its answer.
fn call(agent: &ureq::Agent, url: &str, destination: &str, kind: Kind, body: &str) -> Outcome {
    let sent = match kind {
        Kind::Post => agent
            .post(url)
            .header("X-PROXY-DESTINATION", destination)
            .send(body.as_bytes()),
        _ => agent
            .get(url)
            .header("X-PROXY-DESTINATION", destination)
            .call(),
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => return transport(e),
    };
    let status = response.status().as_u16();
    let read = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec();
    match (status, read) {
        (200, Ok(bytes)) => check_body(kind, &bytes, body),
        (200, Err(e)) => Outcome::BodyCut(e.to_string()),
        (code, Ok(bytes)) => Outcome::Status {
            code,
            first_line: first_line(&bytes),
        },
        (code, Err(e)) => Outcome::Status {
            code,
            first_line: format!("(body unreadable: {e})"),
        },
    }
}

fn transport(error: ureq::Error) -> Outcome {
    let connect = match &error {
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        ureq::Error::ConnectionFailed => true,
        _ => false,
    };
    Outcome::Transport {
        connect,
        error: error.to_string(),
    }
}

fn check_body(kind: Kind, got: &[u8], posted: &str) -> Outcome {
    let wrong = match kind {
        Kind::Hello => (got != b"hello world").then(|| format!("{:?}", first_line(got))),
        Kind::Sleep => (got != format!("slept {SLEEP_MS}").as_bytes())
            .then(|| format!("{:?}", first_line(got))),
        Kind::Post => (got != posted.as_bytes()).then(|| format!("echo {:?}", first_line(got))),
        Kind::Bytes => check_pattern(got),
    };
    wrong.map_or(Outcome::Ok, Outcome::BadBody)
}

/// The `/bytes` body: exactly [`BYTES_LEN`] bytes of the test API's pattern.
fn check_pattern(got: &[u8]) -> Option<String> {
    if got.len() != BYTES_LEN {
        return Some(format!("{} bytes instead of {BYTES_LEN}", got.len()));
    }
    let at = got
        .iter()
        .enumerate()
        .position(|(i, b)| *b != routes::pattern_byte(i as u64))?;
    Some(format!("byte {at} differs from the pattern"))
}

/// The first line of a body, at most 120 characters.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(120)
        .collect()
}
