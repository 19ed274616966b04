//! `/status` (plain and JSON), `/metrics` and the access log: what an operator watches.

use serde_json::Value;

use crate::support::{get, poll, relay, start_client, upstream, Server, Stack, READY};

const CLIENT: &str = "obs-client";

fn stack() -> Stack {
    Stack::start(&[], &["--id", CLIENT, "--pool-idle-size", "2"])
}

fn status_json(server: &Server, path: &str, headers: &[(&str, &str)]) -> Value {
    let reply = get(&format!("http://{}{path}", server.addr), headers);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

/// The `/status.json` row of client `id`, if it is pooled.
fn client_row(status: &Value, id: &str) -> Option<Value> {
    let clients = status["clients"].as_array()?;
    clients.iter().find(|c| c["id"] == id).cloned()
}

/// `/metrics` parsed: each sample line as (series with labels, value). Panics on a line
/// that is not a comment or `series value`.
fn metrics(server: &Server) -> Vec<(String, f64)> {
    let reply = get(&format!("http://{}/metrics", server.addr), &[]);
    assert_eq!(reply.status, 200);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = reply.text();
    let samples = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    samples
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            (series.to_string(), value)
        })
        .collect()
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    let found = samples.iter().find(|(s, _)| s == series);
    found
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {series}"))
}

#[test]
fn status_stays_plain_ok() {
    let stack = stack();
    let reply = get(&format!("http://{}/status", stack.server.addr), &[]);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
}

#[test]
fn status_json_lists_the_client_and_counts_its_requests() {
    let stack = stack();
    let server = &stack.server;
    // The request that found the relay ready is counted once its exchange is over, which
    // may be just after its caller read the answer: wait for it, so it is not counted
    // among the three below.
    let row = poll(READY, || {
        let row = client_row(&status_json(server, "/status.json", &[]), CLIENT)?;
        (row["requests"].as_u64()? >= 1).then_some(row)
    })
    .expect("client listed, with the readiness request counted");
    let served = row["requests"].as_u64().expect("requests");
    assert!(row["connected_since"].as_u64().expect("unix seconds") > 1_600_000_000);
    assert_eq!(row["errors"], 0);
    for _ in 0..3 {
        assert_eq!(stack.relay("GET", "/hello", &[], None).status, 200);
    }
    let accept = [("Accept", "application/json")];
    let after = poll(READY, || {
        let status = status_json(server, "/status", &accept);
        let row = client_row(&status, CLIENT)?;
        (row["requests"].as_u64() == Some(served + 3)).then_some(row)
    })
    .expect("requests counted");
    let pooled = after["idle"].as_u64().unwrap_or(0) + after["busy"].as_u64().unwrap_or(0);
    assert!(pooled >= 1, "{after}");
}

/// `idle: 3` for a pool size of 2 is by design: a client opens a new connection when one
/// turns busy (the Go client does too), so that the next request finds one idle; the
/// server closes those beyond the size once idle for `idletimeout`. `/status.json` shows
/// the size beside the counts, so the numbers explain themselves.
#[test]
fn status_json_shows_the_pool_size_and_the_spare_connection() {
    let upstream = upstream();
    let server = Server::start(&["--idle-timeout", "500"]);
    let _client = start_client(&server, &["--id", CLIENT, "--pool-idle-size", "2"]);
    let row_with = |idle: u64| {
        let found = poll(READY, || {
            let row = client_row(&status_json(&server, "/status.json", &[]), CLIENT)?;
            (row["idle"] == idle && row["busy"] == 0).then_some(row)
        });
        found.unwrap_or_else(|| panic!("never {idle} idle: {}", get_status(&server)))
    };
    // Full, before any request: exactly the announced size.
    let row = row_with(2);
    assert_eq!(row["pool_idle_size"], 2, "{row}");
    let hello = format!("http://{}/hello", upstream.addr());
    assert_eq!(relay(&server, "GET", &hello, &[], None).status, 200);
    // While that connection was busy the client opened another one: 3 idle now.
    assert_eq!(row_with(3)["pool_idle_size"], 2);
    // Idle beyond the size for longer than idletimeout: closed (clean-up every 5 s).
    row_with(2);
}

fn get_status(server: &Server) -> String {
    get(&format!("http://{}/status.json", server.addr), &[]).text()
}

#[test]
fn metrics_count_requests_bytes_and_latency() {
    let stack = stack();
    let server = &stack.server;
    let before = metrics(server);
    let relayed = |s: &[(String, f64)]| value(s, "wsp_relay_duration_seconds_count");
    assert_eq!(stack.relay("GET", "/hello", &[], None).status, 200);
    assert_eq!(stack.relay("GET", "/fail", &[], None).status, 500);
    let body = vec![b'x'; 1000];
    assert_eq!(stack.relay("POST", "/post", &[], Some(&body)).status, 200);
    let after = poll(READY, || {
        let now = metrics(server);
        (relayed(&now) == relayed(&before) + 3.0).then_some(now)
    })
    .expect("three more requests relayed");
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(delta("wsp_requests_total{class=\"2xx\"}"), 2.0);
    assert_eq!(delta("wsp_requests_total{class=\"5xx\"}"), 1.0);
    assert_eq!(delta("wsp_request_bytes_total"), 1000.0);
    // "hello world", "fail", and the 1000 bytes echoed.
    assert_eq!(delta("wsp_response_bytes_total"), 1015.0);
    let classes: f64 = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .map(|c| value(&after, &format!("wsp_requests_total{{class=\"{c}\"}}")))
        .sum();
    assert_eq!(
        classes,
        relayed(&after),
        "every relayed request has a class"
    );
    let idle = format!("wsp_connections{{client=\"{CLIENT}\",state=\"idle\"}}");
    assert!(value(&after, &idle) >= 1.0);
    assert_buckets_cumulative(&after);
}

fn assert_buckets_cumulative(samples: &[(String, f64)]) {
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| s.starts_with("wsp_relay_duration_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let inf = value(samples, "wsp_relay_duration_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(buckets.last(), Some(&inf), "+Inf is the last bucket");
    assert_eq!(inf, value(samples, "wsp_relay_duration_seconds_count"));
}

#[test]
fn each_relayed_request_gets_an_access_log_line() {
    let stack = stack();
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.status, 200);
    let wanted = format!("GET {} 200 in=0 out=11 ", stack.url("/hello"));
    let line = stack.server.proc.wait_log(&wanted);
    assert!(line.contains("INFO"), "{line}");
    assert!(line.ends_with(&format!("ms client={CLIENT}")), "{line}");
}

#[test]
fn a_client_coming_back_counts_as_a_reconnect() {
    let mut stack = Stack::start(
        &["--ping-interval", "100", "--ping-timeout", "1000"],
        &["--id", CLIENT, "--pool-idle-size", "1"],
    );
    let server = &stack.server;
    assert_eq!(value(&metrics(server), "wsp_reconnects_total"), 0.0);
    let _ = stack.client.child.kill();
    let _ = stack.client.child.wait();
    poll(READY, || {
        let status = status_json(server, "/status.json", &[]);
        client_row(&status, CLIENT).is_none().then_some(())
    })
    .expect("the client's connections dropped");
    stack.client = start_client(server, &["--id", CLIENT, "--pool-idle-size", "1"]);
    poll(READY, || {
        (value(&metrics(server), "wsp_reconnects_total") == 1.0).then_some(())
    })
    .expect("the reconnect counted");
}
