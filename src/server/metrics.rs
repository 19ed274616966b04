//! The server's counters, and their Prometheus text rendering.
//!
//! Counting sits on the request path, so it is only relaxed atomic adds on fixed fields:
//! no lock, no allocation. The one map here, of per-client counters, is locked only when
//! a connection registers and when `/metrics` or `/status.json` is read; a connection
//! carries its client's [`ClientStats`] so a request never looks it up. How many
//! connections are idle or busy is the pool's to say: the renderers take it as
//! [`ClientView`]s. What the endpoints answer is [`super::status`]'s job.
//!
//! A client id's counters are kept after its connections go (a returning id is how a
//! reconnect is told), so the map grows by one small entry per distinct id ever seen.

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::pool::Pooled;

/// Upper bounds of the relay latency histogram, in seconds: from a request answered
/// locally in a millisecond to a slow upstream near the default 30 s time-outs.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in microseconds, so that a request is placed by integer comparison.
const BUCKET_MICROS: [u64; 12] = [
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Status classes counted, `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters of one client id, shared by all its connections.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Exchanges that got a response to the caller whole.
    served: AtomicU64,
    /// Exchanges that failed: the connection broke, timed out or the body was cut.
    errors: AtomicU64,
    /// Unix seconds when the client's current spell of connections began.
    connected_since: AtomicU64,
    /// Streams its connections carry now.
    pub(super) streams_open: AtomicU64,
}

/// What one relayed request came to: counted by [`Metrics::record`], and its
/// `Display` is the access-log line. The heads, the caller and the bodies are for the
/// console's capture only.
#[derive(Debug, Default)]
pub struct Exchange<'a> {
    pub method: &'a str,
    pub destination: &'a str,
    /// The status the caller got (526 or 504 when the exchange failed before a head).
    pub status: u16,
    /// Request body bytes sent to the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the caller.
    pub bytes_out: u64,
    pub duration: Duration,
    pub client_id: &'a str,
    /// Whether the exchange completed (a relayed error status still counts as served).
    pub ok: bool,
    /// For the console: who called, the heads relayed, the bodies kept (`inspect`), and
    /// whether it was a stream.
    pub caller: Option<std::net::SocketAddr>,
    pub request_header: Option<&'a crate::headers::Headers>,
    pub response_header: Option<&'a crate::headers::Headers>,
    pub request_body: Option<super::capture::Body>,
    pub response_body: Option<super::capture::Body>,
    pub stream: bool,
}

impl fmt::Display for Exchange<'_> {
    /// `GET http://api/x 200 in=0 out=12 3.2ms client=c1` (`failed` appended on error).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.duration.as_secs_f64() * 1000.0;
        write!(
            f,
            "{} {} {} in={} out={} {millis:.1}ms client={}",
            self.method,
            self.destination,
            self.status,
            self.bytes_in,
            self.bytes_out,
            self.client_id
        )?;
        if !self.ok {
            f.write_str(" failed")?;
        }
        Ok(())
    }
}

/// One client as the pool sees it, with its counters: a row of `/status.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientView {
    pub id: String,
    pub idle: usize,
    pub busy: usize,
    /// The `poolidlesize` the client announced; see [`Pooled::size`] for why `idle` may be
    /// above it.
    pub pool_idle_size: usize,
    /// Streams its connections carry now.
    pub streams: u64,
    pub requests: u64,
    pub errors: u64,
    /// Unix seconds (UTC) when the client's current connections began registering.
    pub connected_since: u64,
}

/// How many client ids [`Metrics::client`] remembers before forgetting those gone.
pub const REMEMBERED_CLIENTS: usize = 1024;

/// Every counter of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Relayed requests, by the status class the caller got.
    statuses: [AtomicU64; 5],
    /// Relayed requests per latency bucket (not cumulative); the last is above every bound.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    registrations: AtomicU64,
    reconnects: AtomicU64,
    /// Streams (`CONNECT`) open now, and ended: cleanly, or aborted.
    streams_open: AtomicU64,
    streams_clean: AtomicU64,
    streams_aborted: AtomicU64,
    /// Stream bytes from callers, to callers.
    stream_bytes_up: AtomicU64,
    stream_bytes_down: AtomicU64,
    stream_micros: AtomicU64,
    /// Requests refused 429 for `callerrate`, by address and by identity.
    rate_limited: [AtomicU64; 2],
    /// Configuration reloads that took, and those refused.
    reloads: [AtomicU64; 2],
    clients: Mutex<HashMap<Arc<str>, Arc<ClientStats>>>,
}

impl Metrics {
    /// Counts a relayed request by its status class.
    fn count_status(&self, status: u16) {
        if let Some(counter) = (status / 100)
            .checked_sub(1)
            .and_then(|i| self.statuses.get(usize::from(i)))
        {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Counts a relayed request: status, latency, bytes, and its client's tally.
    pub fn record(&self, client: &ClientStats, exchange: &Exchange<'_>) {
        self.count_status(exchange.status);
        let micros = u64::try_from(exchange.duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_MICROS.partition_point(|&bound| bound < micros);
        self.latency[bucket].fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(micros, Relaxed);
        self.bytes_in.fetch_add(exchange.bytes_in, Relaxed);
        self.bytes_out.fetch_add(exchange.bytes_out, Relaxed);
        let tally = if exchange.ok {
            &client.served
        } else {
            &client.errors
        };
        tally.fetch_add(1, Relaxed);
    }

    /// Counts a request refused for its caller's rate, by `kind` (`address` or
    /// `identity`).
    pub fn count_rate_limited(&self, kind: &str) {
        let i = usize::from(kind == "identity");
        self.rate_limited[i].fetch_add(1, Relaxed);
    }

    /// Counts a reload (SIGHUP), taken or refused.
    pub fn count_reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// Counts a stream that starts carrying bytes over `client`'s connection.
    pub fn stream_opened(&self, client: &ClientStats) {
        self.streams_open.fetch_add(1, Relaxed);
        client.streams_open.fetch_add(1, Relaxed);
    }

    /// Counts a stream that ended, with the bytes it carried from and to its caller. A
    /// stream is not a request: it stays out of the request counters and the latency.
    pub fn stream_ended(
        &self,
        client: &ClientStats,
        clean: bool,
        (up, down): (u64, u64),
        duration: Duration,
    ) {
        self.streams_open.fetch_sub(1, Relaxed);
        client.streams_open.fetch_sub(1, Relaxed);
        let ended = if clean {
            &self.streams_clean
        } else {
            &self.streams_aborted
        };
        ended.fetch_add(1, Relaxed);
        self.stream_bytes_up.fetch_add(up, Relaxed);
        self.stream_bytes_down.fetch_add(down, Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.stream_micros.fetch_add(micros, Relaxed);
    }

    /// Counts an exchange that failed and will be tried over another connection.
    pub fn count_failed(&self, client: &ClientStats) {
        client.errors.fetch_add(1, Relaxed);
    }

    /// The counters of client `id`, and whether it was never seen before.
    ///
    /// Ids are remembered after their client left, to count its return as a reconnect,
    /// but not without bound: clients get a new random id at every start by default, so
    /// past [`REMEMBERED_CLIENTS`] the ids of clients with no connection left are
    /// forgotten (a client whose connections hold its counters is never forgotten).
    pub fn client(&self, id: &Arc<str>) -> (Arc<ClientStats>, bool) {
        let mut clients = self.clients.lock();
        if let Some(stats) = clients.get(id) {
            return (stats.clone(), false);
        }
        if clients.len() >= REMEMBERED_CLIENTS {
            clients.retain(|_, stats| Arc::strong_count(stats) > 1);
        }
        let stats = Arc::new(ClientStats::default());
        clients.insert(id.clone(), stats.clone());
        (stats, true)
    }

    /// Counts a registration. `fresh`: the client had no connection pooled, so a spell
    /// begins now; if the id was seen before (`first` false), it is a reconnect.
    pub fn registered(&self, client: &ClientStats, first: bool, fresh: bool) {
        self.registrations.fetch_add(1, Relaxed);
        if fresh {
            client.connected_since.store(unix_now(), Relaxed);
            if !first {
                self.reconnects.fetch_add(1, Relaxed);
            }
        }
    }

    /// The rows of `/status.json`: `pooled` is each pooled client's connection counts
    /// (from [`super::pool::Hub::clients`]).
    pub fn views(&self, pooled: Vec<Pooled>) -> Vec<ClientView> {
        let clients = self.clients.lock();
        let mut views: Vec<ClientView> = pooled
            .into_iter()
            .map(|pooled| {
                let stats = clients.get(&pooled.id).cloned().unwrap_or_default();
                ClientView {
                    id: pooled.id.to_string(),
                    idle: pooled.idle,
                    busy: pooled.busy,
                    pool_idle_size: pooled.size,
                    streams: stats.streams_open.load(Relaxed),
                    requests: stats.served.load(Relaxed),
                    errors: stats.errors.load(Relaxed),
                    connected_since: stats.connected_since.load(Relaxed),
                }
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }

    /// Everything in the Prometheus text exposition format 0.0.4.
    pub fn render(&self, clients: &[ClientView]) -> String {
        let mut out = String::new();
        render_clients(&mut out, clients);
        header(
            &mut out,
            "wsp_requests_total",
            "counter",
            "Relayed requests by the status class the caller got.",
        );
        for (class, counter) in CLASSES.iter().zip(&self.statuses) {
            let n = counter.load(Relaxed);
            let _ = writeln!(out, "wsp_requests_total{{class=\"{class}\"}} {n}");
        }
        self.render_latency(&mut out);
        let totals = [
            (
                "wsp_request_bytes_total",
                "Request body bytes relayed to clients.",
                &self.bytes_in,
            ),
            (
                "wsp_response_bytes_total",
                "Response body bytes relayed to callers.",
                &self.bytes_out,
            ),
            (
                "wsp_registrations_total",
                "WebSocket connections registered.",
                &self.registrations,
            ),
            (
                "wsp_reconnects_total",
                "Registrations of a known client id that had no connection left.",
                &self.reconnects,
            ),
        ];
        for (name, help, counter) in totals {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", counter.load(Relaxed));
        }
        self.render_streams(&mut out);
        let name = "wsp_rate_limited_total";
        header(
            &mut out,
            name,
            "counter",
            "Requests refused 429 over callerrate.",
        );
        for (by, counter) in ["address", "identity"].iter().zip(&self.rate_limited) {
            let _ = writeln!(out, "{name}{{by=\"{by}\"}} {}", counter.load(Relaxed));
        }
        let name = "wsp_config_reloads_total";
        header(
            &mut out,
            name,
            "counter",
            "Configuration reloads (SIGHUP), taken or refused.",
        );
        for (result, counter) in ["ok", "error"].iter().zip(&self.reloads) {
            let _ = writeln!(
                out,
                "{name}{{result=\"{result}\"}} {}",
                counter.load(Relaxed)
            );
        }
        out
    }

    /// The streams' gauge and counters.
    fn render_streams(&self, out: &mut String) {
        let name = "wsp_streams_open";
        header(
            out,
            name,
            "gauge",
            "Streams (CONNECT, WebSockets) carrying bytes now.",
        );
        let _ = writeln!(out, "{name} {}", self.streams_open.load(Relaxed));
        let name = "wsp_streams_total";
        header(out, name, "counter", "Streams ended, cleanly or aborted.");
        let clean = self.streams_clean.load(Relaxed);
        let aborted = self.streams_aborted.load(Relaxed);
        let _ = writeln!(out, "{name}{{result=\"clean\"}} {clean}");
        let _ = writeln!(out, "{name}{{result=\"aborted\"}} {aborted}");
        let name = "wsp_stream_bytes_total";
        header(
            out,
            name,
            "counter",
            "Bytes streams carried, from (up) and to (down) callers.",
        );
        let up = self.stream_bytes_up.load(Relaxed);
        let down = self.stream_bytes_down.load(Relaxed);
        let _ = writeln!(out, "{name}{{direction=\"up\"}} {up}");
        let _ = writeln!(out, "{name}{{direction=\"down\"}} {down}");
        let name = "wsp_stream_duration_seconds_total";
        header(out, name, "counter", "Time streams stayed open, summed.");
        let secs = self.stream_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name} {secs}");
    }

    /// The histogram, cumulative as Prometheus wants; `_count` is the `+Inf` bucket, so
    /// the two agree even while requests are being counted.
    fn render_latency(&self, out: &mut String) {
        let name = "wsp_relay_duration_seconds";
        header(
            out,
            name,
            "histogram",
            "Time to relay a request, arrival to response end.",
        );
        let mut cumulative = 0;
        for (i, counter) in self.latency.iter().enumerate() {
            cumulative += counter.load(Relaxed);
            match LATENCY_BUCKETS.get(i) {
                Some(le) => writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}"),
                None => writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}"),
            }
            .ok();
        }
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Per-client gauges and counters.
fn render_clients(out: &mut String, clients: &[ClientView]) {
    let name = "wsp_connections";
    header(
        out,
        name,
        "gauge",
        "Registered connections by client and state.",
    );
    for c in clients {
        let id = escape(&c.id);
        let _ = writeln!(out, "{name}{{client=\"{id}\",state=\"idle\"}} {}", c.idle);
        let _ = writeln!(out, "{name}{{client=\"{id}\",state=\"busy\"}} {}", c.busy);
    }
    let per_client = [
        ("wsp_client_requests_total", "Requests a client served."),
        (
            "wsp_client_errors_total",
            "Exchanges that failed on a client's connections.",
        ),
    ];
    for (i, (name, help)) in per_client.into_iter().enumerate() {
        header(out, name, "counter", help);
        for c in clients {
            let n = if i == 0 { c.requests } else { c.errors };
            let _ = writeln!(out, "{name}{{client=\"{}\"}} {n}", escape(&c.id));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
