//! The console's memory: the last exchanges relayed (a ring of `capture` of them), with
//! their heads, secrets redacted, and their bodies up to `inspectbodylimit` when
//! `inspect` is on. Kept only when the admin listener is configured: otherwise the
//! server has no [`Capture`] and the request path does nothing for it.
//!
//! Bounded: a record is its heads (bounded by the head limits) and two bodies of at most
//! the limit each, and the ring drops the oldest record past its size. Records are
//! shared (`Arc`), so a reader of the list holds the lock only to clone pointers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::metrics::Exchange;
use crate::headers::Headers;

/// Headers whose values never reach the console: credentials and session cookies.
pub const REDACTED: [&str; 5] = [
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
    "X-Secret-Key",
];

/// What the console shows instead of a redacted value.
pub const REDACTION: &str = "[redacted]";

/// A body as captured: its first bytes, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub total: u64,
}

impl Body {
    /// The whole body was kept.
    pub fn whole(&self) -> bool {
        self.bytes.len() as u64 == self.total
    }
}

/// Keeps the first `limit` bytes of a body as it passes, counting the rest.
#[derive(Debug)]
pub struct Keeper {
    body: Body,
    limit: usize,
}

impl Keeper {
    pub fn new(limit: usize) -> Self {
        Keeper {
            body: Body::default(),
            limit,
        }
    }

    /// Notes `piece`, the next bytes of the body.
    pub fn keep(&mut self, piece: &[u8]) {
        let room = self.limit.saturating_sub(self.body.bytes.len());
        self.body
            .bytes
            .extend_from_slice(&piece[..piece.len().min(room)]);
        self.body.total += piece.len() as u64;
    }

    pub fn into_body(self) -> Body {
        self.body
    }
}

/// One exchange as the console shows it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: u64,
    pub started: SystemTime,
    pub method: String,
    pub url: String,
    /// The status the caller got; 0 when it got none (the exchange broke first).
    pub status: u16,
    pub duration: Duration,
    pub client: String,
    pub caller: Option<SocketAddr>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub stream: bool,
    /// The request's headers as relayed. Kept whole for a replay; redacted whenever
    /// they are shown ([`Record::detail`]).
    pub request_headers: Headers,
    /// The response's headers as the client answered them (none when the answer was
    /// wsp's own); redacted when shown.
    pub response_headers: Headers,
    pub request_body: Option<Body>,
    pub response_body: Option<Body>,
}

impl Record {
    /// The record of an exchange that finished at `ended`.
    pub fn of(exchange: &Exchange<'_>, ended: SystemTime) -> Record {
        Record {
            id: 0,
            started: ended.checked_sub(exchange.duration).unwrap_or(UNIX_EPOCH),
            method: exchange.method.to_string(),
            url: exchange.destination.to_string(),
            status: exchange.status,
            duration: exchange.duration,
            client: exchange.client_id.to_string(),
            caller: exchange.caller,
            bytes_in: exchange.bytes_in,
            bytes_out: exchange.bytes_out,
            stream: exchange.stream,
            request_headers: exchange.request_header.cloned().unwrap_or_default(),
            response_headers: exchange.response_header.cloned().unwrap_or_default(),
            request_body: exchange.request_body.clone(),
            response_body: exchange.response_body.clone(),
        }
    }

    /// The list's view: no heads, no bodies.
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "duration_ms": (self.duration.as_secs_f64() * 1e4).round() / 10.0,
            "client": self.client,
            "caller": self.caller.map(|a| a.to_string()),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "started": rfc3339(self.started),
            "stream": self.stream,
        })
    }

    /// The detail view: the summary with heads and bodies.
    pub fn detail(&self) -> Value {
        let mut value = self.summary();
        value["request"] = part(&self.request_headers, self.request_body.as_ref());
        value["response"] = part(&self.response_headers, self.response_body.as_ref());
        value["response"]["status"] = json!(self.status);
        value
    }
}

fn part(headers: &Headers, body: Option<&Body>) -> Value {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    json!({
        "headers": redacted(headers),
        "body_base64": body.map(|b| engine.encode(&b.bytes)),
        "body_bytes": body.map(|b| b.total),
        "body_truncated": body.is_some_and(|b| !b.whole()),
    })
}

/// The ring of records, and the per-second counts the console charts.
#[derive(Debug)]
pub struct Capture {
    ring: Mutex<VecDeque<Arc<Record>>>,
    size: usize,
    last_id: AtomicU64,
    /// Bodies are kept up to this many bytes each, when `inspect` is on.
    pub body_limit: Option<usize>,
    pub seconds: Seconds,
}

impl Capture {
    /// A ring of `size` records (at least 1); bodies kept up to `body_limit` if set.
    pub fn new(size: usize, body_limit: Option<usize>) -> Self {
        Capture {
            ring: Mutex::new(VecDeque::new()),
            size: size.max(1),
            last_id: AtomicU64::new(0),
            body_limit,
            seconds: Seconds::default(),
        }
    }

    /// Records a finished exchange (a stream too), and counts it for the chart.
    pub fn record(&self, exchange: &Exchange<'_>) -> u64 {
        let now = SystemTime::now();
        if !exchange.stream {
            self.seconds.count(now, exchange.duration);
        }
        self.add(Record::of(exchange, now))
    }

    /// A keeper for a body, when bodies are inspected.
    pub fn keeper(&self) -> Option<Keeper> {
        self.body_limit.map(Keeper::new)
    }

    /// Adds `record` (its id is given here), dropping the oldest past the ring's size.
    /// Returns the id.
    pub fn add(&self, mut record: Record) -> u64 {
        // The id is taken under the ring's lock, so that the ring holds records in the
        // order of their ids, which [`Capture::get`] relies on.
        let mut ring = self.ring.lock();
        record.id = self.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = record.id;
        if ring.len() == self.size {
            ring.pop_front();
        }
        ring.push_back(Arc::new(record));
        id
    }

    /// The records, newest first.
    pub fn list(&self) -> Vec<Arc<Record>> {
        self.ring.lock().iter().rev().cloned().collect()
    }

    /// The record `id`, if still in the ring.
    pub fn get(&self, id: u64) -> Option<Arc<Record>> {
        let ring = self.ring.lock();
        // Ids grow by one: the record is at a known distance from the newest.
        let newest = ring.back()?.id;
        let back = usize::try_from(newest.checked_sub(id)?).ok()?;
        let index = ring.len().checked_sub(back + 1)?;
        ring.get(index).filter(|r| r.id == id).cloned()
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.ring.lock().clear();
    }
}

/// How many seconds of request rates and latencies the console charts.
pub const SECONDS_KEPT: usize = 300;

/// Upper bounds of the latency buckets, in microseconds: from 100 µs, each about 1.26
/// times the last (ten per decade), to about 100 s; percentiles are read as a bucket's
/// upper bound, within 26 %.
fn latency_bounds() -> impl Iterator<Item = u64> {
    (0..=60).map(|i| (100.0 * 10f64.powf(f64::from(i) / 10.0)) as u64)
}

const LATENCY_SLOTS: usize = 62;

/// Requests per second and their latencies, for the last [`SECONDS_KEPT`] seconds.
#[derive(Debug, Default)]
pub struct Seconds {
    slots: Mutex<VecDeque<Second>>,
}

#[derive(Debug, Clone)]
struct Second {
    /// Unix seconds.
    at: u64,
    requests: u64,
    latency: [u32; LATENCY_SLOTS],
}

impl Seconds {
    /// Counts a request that ended at `at` after `duration`.
    pub fn count(&self, at: SystemTime, duration: Duration) {
        let second = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let slot = latency_bounds()
            .position(|bound| micros <= bound)
            .unwrap_or(LATENCY_SLOTS - 1);
        let mut slots = self.slots.lock();
        if slots.back().is_none_or(|s| s.at < second) {
            slots.push_back(Second {
                at: second,
                requests: 0,
                latency: [0; LATENCY_SLOTS],
            });
            while slots
                .front()
                .is_some_and(|s| s.at + SECONDS_KEPT as u64 <= second)
            {
                slots.pop_front();
            }
        }
        // A request ending in an earlier second than the last (threads race) counts
        // in the last one: a second's worth of error at most.
        if let Some(last) = slots.back_mut() {
            last.requests += 1;
            last.latency[slot] += 1;
        }
    }

    /// `{"seconds": [{"t", "requests", "p50_ms", "p99_ms"}, ...]}`, oldest first.
    pub fn render(&self) -> Value {
        let slots = self.slots.lock().clone();
        let seconds: Vec<Value> = slots
            .iter()
            .map(|s| {
                json!({
                    "t": s.at,
                    "requests": s.requests,
                    "p50_ms": percentile(&s.latency, s.requests, 0.50),
                    "p99_ms": percentile(&s.latency, s.requests, 0.99),
                })
            })
            .collect();
        json!({ "seconds": seconds })
    }
}

/// The upper bound, in ms, of the bucket holding the `q` quantile of `count` latencies.
fn percentile(buckets: &[u32; LATENCY_SLOTS], count: u64, q: f64) -> Option<f64> {
    let rank = ((count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (bucket, bound) in buckets.iter().zip(latency_bounds().chain([u64::MAX])) {
        seen += u64::from(*bucket);
        if seen >= rank {
            return Some(bound.min(100_000_000) as f64 / 1000.0);
        }
    }
    None
}

/// `headers` with the values of the [`REDACTED`] ones replaced.
fn redacted(headers: &Headers) -> Headers {
    let mut shown = headers.clone();
    for (name, values) in shown.iter_mut() {
        if REDACTED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            for value in values.iter_mut() {
                *value = REDACTION.to_string();
            }
        }
    }
    shown
}

/// `2026-12-07T04:52:00.123Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The calendar date of a day counted from 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's days-to-civil, in eras of 400 years).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(url: &str) -> Record {
        Record {
            id: 0,
            started: UNIX_EPOCH,
            method: "GET".into(),
            url: url.into(),
            status: 200,
            duration: Duration::from_millis(3),
            client: "c".into(),
            caller: None,
            bytes_in: 0,
            bytes_out: 0,
            stream: false,
            request_headers: Headers::from([
                ("Authorization".into(), vec!["Bearer x".into()]),
                ("Accept".into(), vec!["*/*".into()]),
            ]),
            response_headers: Headers::from([("Set-Cookie".into(), vec!["a=b".into()])]),
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_finds_them_by_id() {
        let capture = Capture::new(3, None);
        let ids: Vec<u64> = (0..5)
            .map(|i| capture.add(record(&format!("/{i}"))))
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let urls: Vec<String> = capture.list().iter().map(|r| r.url.clone()).collect();
        assert_eq!(urls, ["/4", "/3", "/2"]);
        assert!(capture.get(2).is_none(), "dropped from the ring");
        assert_eq!(capture.get(4).map(|r| r.url.clone()), Some("/3".into()));
        assert!(capture.get(6).is_none());
        capture.clear();
        assert!(capture.list().is_empty() && capture.get(5).is_none());
    }

    #[test]
    fn records_added_from_many_threads_are_all_found_by_id() {
        let capture = Capture::new(10_000, None);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..500 {
                        capture.add(record("/"));
                    }
                });
            }
        });
        let list = capture.list();
        assert_eq!(list.len(), 4000);
        assert!(list
            .iter()
            .all(|r| capture.get(r.id).is_some_and(|g| g.id == r.id)));
    }

    #[test]
    fn secrets_are_redacted_and_bodies_kept_to_the_limit() {
        let capture = Capture::new(10, Some(4));
        let mut keeper = capture.keeper().expect("inspecting");
        keeper.keep(b"hel");
        keeper.keep(b"lo world");
        let mut r = record("/");
        r.request_body = Some(keeper.into_body());
        let id = capture.add(r);
        let detail = capture.get(id).expect("record").detail();
        assert_eq!(detail["request"]["headers"]["Authorization"][0], REDACTION);
        assert_eq!(detail["request"]["headers"]["Accept"][0], "*/*");
        assert_eq!(detail["response"]["headers"]["Set-Cookie"][0], REDACTION);
        assert_eq!(detail["request"]["body_base64"], "aGVsbA==");
        assert_eq!(detail["request"]["body_bytes"], 11);
        assert_eq!(detail["request"]["body_truncated"], true);
        assert_eq!(detail["response"]["body_base64"], Value::Null);
    }

    #[test]
    fn seconds_count_requests_and_read_percentiles_within_a_bucket() {
        let seconds = Seconds::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_000);
        for ms in 1..=100 {
            seconds.count(t, Duration::from_millis(ms));
        }
        seconds.count(t + Duration::from_secs(1), Duration::from_micros(50));
        let v = seconds.render();
        assert_eq!(v["seconds"][0]["t"], 1000);
        assert_eq!(v["seconds"][0]["requests"], 100);
        let p50 = v["seconds"][0]["p50_ms"].as_f64().expect("p50");
        let p99 = v["seconds"][0]["p99_ms"].as_f64().expect("p99");
        assert!((50.0..=63.0).contains(&p50), "{p50}");
        assert!((99.0..=126.0).contains(&p99), "{p99}");
        assert_eq!(v["seconds"][1]["p50_ms"], 0.1);
        // Past the window, old seconds go.
        seconds.count(t + Duration::from_secs(400), Duration::from_millis(1));
        assert_eq!(
            seconds.render()["seconds"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn times_are_rfc_3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_796_615_520_123);
        assert_eq!(rfc3339(at), "2026-12-07T03:52:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
