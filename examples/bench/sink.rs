//! The upload sink of the peer rows: an HTTP/1.1 server on its own threads of this
//! program, on 127.0.0.1:0, that reads a request's whole `Content-Length` body into one
//! buffer, then answers `200` with the number of bytes it read. It answers only once it
//! has read all of it and never closes its side before, which is what a 1 GiB upload
//! through a tunnel needs to be timed: the test API's `/hello` answers as soon as the head
//! is in and drains the body afterwards (tiny_http), and when it then closes its side,
//! rathole's WebSocket transport, which has no half-close, ends the whole connection and
//! cuts the upload.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::bulk::{self, Pattern, BUF_LEN, BULK_LEN};
use crate::http::IO_TIMEOUT;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most header lines in a request head.
const MAX_HEADERS: usize = 64;

/// The sink, stopped when dropped.
pub struct Sink {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Sink {
    pub fn start() -> Result<Sink, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("binding the upload sink: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("reading the upload sink's address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || accept(listener, &stopped));
        Ok(Sink { addr, stop })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Uploads [`BULK_LEN`] pattern bytes to the sink (`path` on `addr`: the sink's own
/// address or a tunnel's) and checks its count; returns how long it took.
pub fn upload(
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
    pattern: &Pattern,
) -> Result<Duration, String> {
    let (took, head, body) = bulk::upload(addr, path, destination, pattern)?;
    let count = String::from_utf8_lossy(&body);
    if head.status == 200 && count == BULK_LEN.to_string() {
        Ok(took)
    } else {
        Err(format!(
            "the sink answered {} {count:?}; expected 200 {BULK_LEN}",
            head.status
        ))
    }
}

fn accept(listener: TcpListener, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        thread::spawn(move || {
            if let Err(e) = handle_upload(stream) {
                eprintln!("bench: upload sink: {e}");
            }
        });
    }
}

/// Reads one request and its whole body, then answers with the body's length.
fn handle_upload(mut stream: TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| format!("setting a time-out: {e}"))?;
    let mut buf = vec![0u8; BUF_LEN];
    let mut filled = 0;
    let (length, used) = loop {
        let n = stream
            .read(&mut buf[filled..])
            .map_err(|e| format!("reading a request head: {e}"))?;
        if n == 0 {
            return Ok(()); // a connection that sent nothing (e.g. the wake-up of Drop)
        }
        filled += n;
        if let Some(head) = parse_head(&buf[..filled])? {
            break head;
        }
        if filled > MAX_HEAD {
            return Err(format!("request head longer than {MAX_HEAD} bytes"));
        }
    };
    let mut read = (filled - used) as u64;
    while read < length {
        let want = (length - read).min(BUF_LEN as u64) as usize;
        match stream.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("body cut after {read} of {length} bytes")),
            Ok(n) => read += n as u64,
            Err(e) => return Err(format!("reading the body at byte {read}: {e}")),
        }
    }
    let count = read.to_string();
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{count}",
        count.len()
    );
    stream
        .write_all(answer.as_bytes())
        .map_err(|e| format!("answering: {e}"))
}

/// The request's `Content-Length` (0 without one) and the head's length, or `None` while
/// the head is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(u64, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed request head: {e}")),
    };
    let length = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            let text = String::from_utf8_lossy(h.value);
            text.trim()
                .parse()
                .map_err(|_| format!("bad Content-Length {text:?}"))
        })
        .transpose()?
        .unwrap_or(0);
    Ok(Some((length, used)))
}
