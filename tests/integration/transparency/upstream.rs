//! The scripted internal API: a raw-socket HTTP/1.1 server that answers each request with
//! the exact bytes its case prescribes (steps: send, trickle, pause, wait for the caller,
//! close), and records the request as it arrived, so the harness can compare what reached
//! the upstream directly with what reached it through wsp.
//!
//! A request names its case in `X-Harness-Case` and its run in `X-Harness-Run` (both
//! ordinary end-to-end headers, relayed like any other). Connections are kept alive as the
//! request allows, unless the script closes them.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::wire::{content_length, field, has_token, split_head, Conn, End, Field};

/// How long a kept-alive connection may sit idle before the upstream closes it.
const IDLE: Duration = Duration::from_secs(30);
/// How long a request (head and body) may take to arrive.
const REQUEST_TIME: Duration = Duration::from_secs(30);
/// How long the upstream waits for the caller to have seen a part of the body.
pub const BARRIER_WAIT: Duration = Duration::from_secs(10);
/// Pause between the bytes of a trickle.
const TRICKLE_PAUSE: Duration = Duration::from_millis(2);

/// One thing the upstream does in answer to a request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes at once.
    Send(Vec<u8>),
    /// Write these bytes one at a time.
    Trickle(Vec<u8>),
    Pause(Duration),
    /// Wait (at most [`BARRIER_WAIT`]) until the caller has seen this text in the body: a
    /// proxy that holds back a part of a streamed body fails here, not by timing.
    AwaitCaller(&'static str),
    /// Send `100 Continue` if the request asked for it (`Expect: 100-continue`), as a
    /// server does.
    ContinueIfAsked,
    /// Read the request body now; without this step it is read before the first one.
    ReadBody,
    /// Close the connection.
    Close,
}

/// A request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target, byte for byte.
    pub target: String,
    pub version: String,
    pub fields: Vec<Field>,
    pub body: Vec<u8>,
    pub body_end: End,
}

/// What both the upstream's threads and the test share.
#[derive(Default)]
struct Shared {
    scripts: HashMap<String, Vec<Step>>,
    seen: Mutex<HashMap<u64, Seen>>,
    /// (run, text) the caller has seen.
    signals: Mutex<HashSet<(u64, String)>>,
    signalled: Condvar,
    /// Runs whose script gave up waiting for the caller, with what it waited for.
    missed: Mutex<Vec<(u64, String)>>,
    stop: AtomicBool,
}

/// The running upstream; stops accepting when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Starts on an ephemeral port of 127.0.0.1 with a script per case name.
    pub fn start(scripts: HashMap<String, Vec<Step>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted upstream");
        let addr = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            scripts,
            ..Shared::default()
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = accepting.clone();
                thread::spawn(move || serve(&shared, Conn::new(stream)));
            }
        });
        Upstream { addr, shared }
    }

    /// The request of run `run`, once it has arrived (waits at most `within`).
    pub fn seen(&self, run: u64, within: Duration) -> Option<Seen> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(seen) = self.shared.seen.lock().expect("lock").get(&run) {
                return Some(seen.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tells run `run`'s script that the caller has seen `text`.
    pub fn signal(&self, run: u64, text: &str) {
        let mut signals = self.shared.signals.lock().expect("lock");
        if signals.insert((run, text.to_string())) {
            self.shared.signalled.notify_all();
        }
    }

    /// What run `run`'s script waited for in vain.
    pub fn missed(&self, run: u64) -> Vec<String> {
        let missed = self.shared.missed.lock().expect("lock");
        missed
            .iter()
            .filter(|(r, _)| *r == run)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answers requests on one connection until it closes, idles out or a script closes it.
fn serve(shared: &Shared, mut conn: Conn) {
    loop {
        conn.set_deadline(IDLE);
        let Ok(Some(head)) = conn.read_head() else {
            return;
        };
        conn.set_deadline(REQUEST_TIME);
        let (start, fields) = split_head(&head);
        let mut parts = start.splitn(3, ' ');
        let mut seen = Seen {
            method: parts.next().unwrap_or_default().to_string(),
            target: parts.next().unwrap_or_default().to_string(),
            version: parts.next().unwrap_or_default().to_string(),
            fields,
            body: Vec::new(),
            body_end: End::Framed,
        };
        let run: u64 = text_field(&seen.fields, "x-harness-run")
            .parse()
            .unwrap_or(0);
        let case = text_field(&seen.fields, "x-harness-case");
        let Some(steps) = shared.scripts.get(&case) else {
            let _ =
                conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\nno such case");
            return;
        };
        if !steps.iter().any(|s| matches!(s, Step::ReadBody)) {
            read_body(&mut conn, &mut seen);
            record(shared, run, &seen);
        }
        let closes = has_token(&seen.fields, "connection", "close") || seen.version == "HTTP/1.0";
        for step in steps {
            if !perform(shared, &mut conn, run, step, &mut seen) {
                return;
            }
        }
        if closes {
            return;
        }
    }
}

/// Does one step; false when the connection is to be closed (or broke).
fn perform(shared: &Shared, conn: &mut Conn, run: u64, step: &Step, seen: &mut Seen) -> bool {
    match step {
        Step::Send(bytes) => conn.write_all(bytes).is_ok(),
        Step::Trickle(bytes) => bytes.iter().all(|b| {
            thread::sleep(TRICKLE_PAUSE);
            conn.write_all(&[*b]).is_ok()
        }),
        Step::Pause(time) => {
            thread::sleep(*time);
            true
        }
        Step::AwaitCaller(text) => {
            if !wait_signal(shared, run, text) {
                shared
                    .missed
                    .lock()
                    .expect("lock")
                    .push((run, text.to_string()));
            }
            true
        }
        Step::ContinueIfAsked => {
            !has_token(&seen.fields, "expect", "100-continue")
                || conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_ok()
        }
        Step::ReadBody => {
            read_body(conn, seen);
            record(shared, run, seen);
            true
        }
        Step::Close => false,
    }
}

fn wait_signal(shared: &Shared, run: u64, text: &str) -> bool {
    let key = (run, text.to_string());
    let signals = shared.signals.lock().expect("lock");
    let (signals, _) = shared
        .signalled
        .wait_timeout_while(signals, BARRIER_WAIT, |s| !s.contains(&key))
        .expect("lock");
    signals.contains(&key)
}

/// The request body by its framing: chunked, `Content-Length`, or none.
fn read_body(conn: &mut Conn, seen: &mut Seen) {
    let (body, end) = if has_token(&seen.fields, "transfer-encoding", "chunked") {
        let (body, _, end) = conn.read_chunked(&mut |_| {});
        (body, end)
    } else {
        let length = content_length(&seen.fields).unwrap_or(0);
        conn.read_exact_body(length, &mut |_| {})
    };
    seen.body = body;
    seen.body_end = end;
}

fn record(shared: &Shared, run: u64, seen: &Seen) {
    shared.seen.lock().expect("lock").insert(run, seen.clone());
}

fn text_field(fields: &[Field], name: &str) -> String {
    String::from_utf8_lossy(field(fields, name).unwrap_or_default()).into_owned()
}
