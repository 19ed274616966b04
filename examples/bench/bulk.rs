//! The bulk rows: a 1 GiB download (`GET /bytes?n=2^30`) and a 1 GiB upload, each
//! [`RUNS`] times straight to the test API and [`RUNS`] times through a fresh tunnel.
//!
//! Both directions are checked, not just timed: every downloaded byte is compared with the
//! test API's pattern, and an upload to `/upload-count` must come back with the right
//! length and FNV-1a hash. `/upload-count` hashes byte by byte, which caps even the direct
//! upload well below the proxy's speed on a slow core; so the upload is measured a second
//! time into `/hello`, which discards the body unread by any hash (only its length is
//! checked, by the framing: the test API answers only once it has read `Content-Length`
//! bytes).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::binaries::Binaries;
use crate::http::{self, Head};
use crate::routes::{self, Fnv1a, PATTERN_PERIOD};
use crate::stack::{Tunnel, TunnelSpec, Upstream, Usage};

/// Size of each transfer: 1 GiB.
pub const BULK_LEN: u64 = 1 << 30;
/// Transfers per direction and path; the report shows the median.
pub const RUNS: usize = 3;
/// Bytes read or written per system call.
pub const BUF_LEN: usize = 256 * 1024;

/// What a bulk row moves, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Download,
    /// To `/upload-count`: length and hash checked.
    UploadCounted,
    /// To `/hello`: discarded by the test API.
    UploadDiscarded,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Download, Kind::UploadCounted, Kind::UploadDiscarded];

    fn tag(self) -> &'static str {
        match self {
            Kind::Download => "download",
            Kind::UploadCounted => "upload-count",
            Kind::UploadDiscarded => "upload-hello",
        }
    }
}

/// The timings of one bulk row.
pub struct BulkResult {
    pub kind: Kind,
    pub direct: Vec<Duration>,
    pub tunnel: Vec<Duration>,
    pub usage: Usage,
}

/// The `/bytes` pattern, one buffer plus one period long, so that any buffer-sized piece
/// starting anywhere in the pattern is a slice of it.
pub struct Pattern {
    table: Vec<u8>,
}

impl Pattern {
    pub fn new() -> Pattern {
        let len = BUF_LEN + PATTERN_PERIOD as usize;
        Pattern {
            table: (0..len as u64).map(routes::pattern_byte).collect(),
        }
    }

    /// The `len` (at most [`BUF_LEN`]) pattern bytes from `position` on.
    pub fn at(&self, position: u64, len: usize) -> &[u8] {
        let phase = (position % PATTERN_PERIOD) as usize;
        &self.table[phase..phase + len]
    }

    /// The FNV-1a hash of the first [`BULK_LEN`] pattern bytes, as `/upload-count` reports.
    pub fn fnv_of_bulk(&self) -> String {
        let mut fnv = Fnv1a::default();
        let mut position = 0;
        while position < BULK_LEN {
            let len = (BULK_LEN - position).min(BUF_LEN as u64) as usize;
            fnv.update(self.at(position, len));
            position += len as u64;
        }
        format!("{:016x}", fnv.finish())
    }
}

/// Everything a bulk row needs.
pub struct Bench<'a> {
    pub bins: &'a Binaries,
    pub log_dir: &'a Path,
    pub upstream: &'a Upstream,
    pub pattern: &'a Pattern,
    /// [`Pattern::fnv_of_bulk`], computed once.
    pub expected_fnv: &'a str,
}

/// Measures one bulk row: direct, then through a fresh tunnel.
pub fn measure(bench: &Bench, kind: Kind) -> Result<BulkResult, String> {
    let path = match kind {
        Kind::Download => format!("/bytes?n={BULK_LEN}"),
        Kind::UploadCounted => "/upload-count".to_string(),
        Kind::UploadDiscarded => "/hello".to_string(),
    };
    let mut direct = Vec::new();
    for _ in 0..RUNS {
        direct.push(transfer(bench, kind, bench.upstream.addr, &path, None)?);
    }
    let spec = TunnelSpec {
        tag: kind.tag(),
        server_log_level: "warn",
        server_flags: &[],
        client_flags: &[],
    };
    let tunnel = Tunnel::start_ready(bench.bins, bench.log_dir, &spec, bench.upstream)?;
    let destination = bench.upstream.url(&path);
    let begin = tunnel.begin_row()?;
    let mut through = Vec::new();
    for _ in 0..RUNS {
        let took = transfer(bench, kind, tunnel.addr, "/request", Some(&destination))?;
        through.push(took);
    }
    let usage = tunnel.end_row(begin)?;
    Ok(BulkResult {
        kind,
        direct,
        tunnel: through,
        usage,
    })
}

/// One checked transfer of [`BULK_LEN`] bytes; returns how long it took.
fn transfer(
    bench: &Bench,
    kind: Kind,
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
) -> Result<Duration, String> {
    let via = if destination.is_some() {
        "through the tunnel"
    } else {
        "direct"
    };
    let checked = match kind {
        Kind::Download => download(addr, path, destination, bench.pattern),
        Kind::UploadCounted => {
            upload(addr, path, destination, bench.pattern).and_then(|(took, head, body)| {
                let count = String::from_utf8_lossy(&body).into_owned();
                let fnv = head.header("x-body-fnv").unwrap_or("(none)");
                if head.status == 200 && count == BULK_LEN.to_string() && fnv == bench.expected_fnv
                {
                    Ok(took)
                } else {
                    Err(format!(
                        "/upload-count answered {} {count:?} with x-body-fnv {fnv}; expected \
                         200 {BULK_LEN} with {}",
                        head.status, bench.expected_fnv
                    ))
                }
            })
        }
        Kind::UploadDiscarded => {
            upload(addr, path, destination, bench.pattern).and_then(|(took, head, body)| {
                match (head.status, body.as_slice()) {
                    (200, b"hello world") => Ok(took),
                    (status, body) => Err(format!(
                        "/hello answered {status} {:?}",
                        String::from_utf8_lossy(body)
                    )),
                }
            })
        }
    };
    checked.map_err(|e| format!("{} {via}: {e}", kind.tag()))
}

/// Downloads `path` (a [`BULK_LEN`]-byte body of the pattern: the test API's `/bytes`, or
/// nginx's file of it) and compares every byte with the pattern.
pub fn download(
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
    pattern: &Pattern,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = http::connect(addr)?;
    http::write_head(&mut stream, "GET", path, destination, None)?;
    let (head, leftover) = http::read_head(&mut stream)?;
    if head.status != 200 || head.content_length != Some(BULK_LEN) {
        return Err(format!(
            "status {} with Content-Length {:?}; expected 200 with {BULK_LEN}",
            head.status, head.content_length
        ));
    }
    let check = |data: &[u8], position: u64| {
        if data.len() as u64 > BULK_LEN - position || data != pattern.at(position, data.len()) {
            Err(format!(
                "wrong bytes in the body at {position}..{}",
                position + data.len() as u64
            ))
        } else {
            Ok(())
        }
    };
    check(&leftover, 0)?;
    let mut position = leftover.len() as u64;
    let mut buf = vec![0u8; BUF_LEN];
    while position < BULK_LEN {
        let want = (BULK_LEN - position).min(BUF_LEN as u64) as usize;
        let n = stream
            .read(&mut buf[..want])
            .map_err(|e| format!("reading the body at byte {position}: {e}"))?;
        if n == 0 {
            return Err(format!("body cut after {position} of {BULK_LEN} bytes"));
        }
        check(&buf[..n], position)?;
        position += n as u64;
    }
    Ok(started.elapsed())
}

/// Uploads [`BULK_LEN`] pattern bytes to `path`; returns the time until the whole answer
/// was read, and the answer.
pub fn upload(
    addr: SocketAddr,
    path: &str,
    destination: Option<&str>,
    pattern: &Pattern,
) -> Result<(Duration, Head, Vec<u8>), String> {
    let started = Instant::now();
    let mut stream = http::connect(addr)?;
    http::write_head(&mut stream, "POST", path, destination, Some(BULK_LEN))?;
    let mut position = 0;
    while position < BULK_LEN {
        let len = (BULK_LEN - position).min(BUF_LEN as u64) as usize;
        stream
            .write_all(pattern.at(position, len))
            .map_err(|e| format!("sending the body after {position} bytes: {e}"))?;
        position += len as u64;
    }
    let (head, leftover) = http::read_head(&mut stream)?;
    let body = http::read_small_body(&mut stream, &head, leftover)?;
    Ok((started.elapsed(), head, body))
}
