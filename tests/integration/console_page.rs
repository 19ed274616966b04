//! The operator console page (`assets/console.html`) in headless Chromium, against a fake
//! of the admin API: what it lists and draws, its filters, details, replay, keyboard, token
//! and its handling of untrusted data.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::chromium::Browser;
use crate::support::READY;

const PAGE: &str = include_str!("../../assets/console.html");
const TOKEN: &str = "t0ken";
const XSS_URL: &str = r#"http://x/<img src=x onerror="window.pwned=1">"#;
const XSS_BODY: &str = r#"<script>window.pwned=2</script><img src=x onerror="window.pwned=3">"#;

/// What the fake admin API knows and what it was asked.
struct FakeState {
    token: Option<String>,
    /// Full exchanges (summary fields plus `request` and `response`), newest first.
    exchanges: Vec<Value>,
    /// The ids POSTed to `/api/requests/{id}/replay`, in order.
    replays: Vec<String>,
}

/// A fake admin listener on 127.0.0.1: the page at `/`, the JSON API with fixed data.
struct FakeAdmin {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: Arc<AtomicBool>,
}

impl FakeAdmin {
    fn start(token: Option<&str>, extra: Vec<Value>) -> FakeAdmin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake admin API");
        let addr = listener.local_addr().expect("fake admin address");
        let mut exchanges = extra;
        exchanges.extend(sample_exchanges());
        let state = Arc::new(Mutex::new(FakeState {
            token: token.map(str::to_string),
            exchanges,
            replays: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stopping) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                // A thread per connection: the browser opens several at once, some idle.
                thread::spawn(move || serve(conn, &st));
            }
        });
        FakeAdmin { addr, state, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn replays(&self) -> Vec<String> {
        self.state.lock().replays.clone()
    }
}

impl Drop for FakeAdmin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One exchange as `GET /api/requests/{id}` answers it.
#[allow(clippy::too_many_arguments)]
fn exchange(
    id: &str,
    method: &str,
    url: &str,
    status: u16,
    client: &str,
    stream: bool,
    request: Value,
    response: Value,
) -> Value {
    let bytes_in = request["body_bytes"].as_u64().unwrap_or(0);
    let bytes_out = response["body_bytes"].as_u64().unwrap_or(0);
    json!({
        "id": id, "method": method, "url": url, "status": status, "duration_ms": 2.4,
        "client": client, "caller": "127.0.0.1:50312", "bytes_in": bytes_in,
        "bytes_out": bytes_out, "started": "2026-12-07T04:52:00.123Z", "stream": stream,
        "request": request, "response": response,
    })
}

/// The 200 with a JSON body (newest), the 404 with a binary body, and a stream.
fn sample_exchanges() -> Vec<Value> {
    let hello = br#"{"greeting":"hello from lyon"}"#;
    let binary: Vec<u8> = (0u8..=255).rev().cycle().take(1500).collect();
    vec![
        exchange(
            "3",
            "GET",
            "http://api:8081/hello",
            200,
            "office-lyon",
            false,
            json!({"headers": {"Accept": ["application/json"], "User-Agent": ["curl/8.5.0"],
                    "Authorization": ["[redacted]"], "X-Trace": ["first", "second"]},
                   "body_base64": "", "body_bytes": 0, "body_truncated": false}),
            json!({"status": 200, "headers": {"Content-Type": ["application/json"]},
                   "body_base64": b64(hello), "body_bytes": hello.len(), "body_truncated": false}),
        ),
        exchange(
            "2",
            "GET",
            "http://api:8081/missing",
            404,
            "office-paris",
            false,
            json!({"headers": {"Accept": ["*/*"]}, "body_base64": null, "body_bytes": 0,
                   "body_truncated": false}),
            json!({"status": 404, "headers": {"Content-Type": ["application/octet-stream"]},
                   "body_base64": b64(&binary[..1024]), "body_bytes": binary.len(),
                   "body_truncated": true}),
        ),
        exchange(
            "1",
            "GET",
            "ws://api:8081/socket",
            101,
            "office-lyon",
            true,
            json!({"headers": {"Upgrade": ["websocket"]}, "body_base64": null, "body_bytes": 0,
                   "body_truncated": false}),
            json!({"status": 101, "headers": {"Upgrade": ["websocket"]}, "body_base64": null,
                   "body_bytes": 0, "body_truncated": false}),
        ),
    ]
}

/// An exchange made of hostile text everywhere the page shows data.
fn xss_exchange() -> Value {
    exchange(
        "4",
        "GET",
        XSS_URL,
        200,
        "<b>bold-client</b>",
        false,
        json!({"headers": {"X-Probe": [XSS_BODY]}, "body_base64": b64(XSS_BODY.as_bytes()),
               "body_bytes": XSS_BODY.len(), "body_truncated": false}),
        json!({"status": 200, "headers": {"<img src=x onerror=window.pwned=4>": ["v"]},
               "body_base64": b64(XSS_BODY.as_bytes()), "body_bytes": XSS_BODY.len(),
               "body_truncated": false}),
    )
}

fn summary(exchange: &Value) -> Value {
    let mut s = exchange.clone();
    if let Some(map) = s.as_object_mut() {
        map.remove("request");
        map.remove("response");
    }
    s
}

/// 60 seconds of traffic ending a second ago, one second without requests.
fn stats() -> Value {
    let now = now_secs();
    let seconds: Vec<Value> = (1..=60)
        .rev()
        .map(|ago| {
            let t = now - ago;
            if ago == 30 {
                return json!({"t": t, "requests": 0, "p50_ms": null, "p99_ms": null});
            }
            json!({"t": t, "requests": 5 + t % 7, "p50_ms": 2.0 + (t % 5) as f64 * 0.3,
                   "p99_ms": 8.0 + (t % 11) as f64})
        })
        .collect();
    json!({ "seconds": seconds })
}

fn clients() -> Value {
    let since = now_secs() - 3600;
    json!({"clients": [
        {"id": "office-lyon", "idle": 9, "busy": 1, "streams": 1, "pool_idle_size": 10,
         "requests": 1532, "errors": 2, "connected_since": since},
        {"id": "office-paris", "idle": 4, "busy": 0, "streams": 0, "pool_idle_size": 4,
         "requests": 17, "errors": 0, "connected_since": since + 600},
    ]})
}

/// One request on one connection, answered with `Connection: close`.
fn serve(mut conn: TcpStream, state: &Mutex<FakeState>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (method, target, auth, head_len, body_len) = loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let body_len: usize = header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                break (
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                    header("authorization"),
                    len,
                    body_len,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => continue,
            _ => return,
        }
    };
    // Drain a body, if any, so the close does not reset the connection before the answer.
    while buf.len() < head_len + body_len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, content_type, body) = route(state, &method, &target, auth.as_deref());
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

fn route(
    state: &Mutex<FakeState>,
    method: &str,
    target: &str,
    auth: Option<&str>,
) -> (u16, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    let path = target.split('?').next().unwrap_or("");
    let reply = |status: u16, value: Value| (status, JSON, value.to_string().into_bytes());
    if path == "/" && method == "GET" {
        return (200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec());
    }
    if !path.starts_with("/api/") {
        return reply(404, json!({"error": "not found"}));
    }
    let mut st = state.lock();
    if let Some(token) = &st.token {
        if auth != Some(format!("Bearer {token}").as_str()) {
            return reply(401, json!({"error": "admin token needed"}));
        }
    }
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["requests"]) => {
            let list: Vec<Value> = st.exchanges.iter().map(summary).collect();
            reply(200, json!({ "requests": list }))
        }
        ("DELETE", ["requests"]) => {
            st.exchanges.clear();
            (204, JSON, Vec::new())
        }
        ("GET", ["requests", id]) => match st.exchanges.iter().find(|e| e["id"] == *id) {
            Some(e) => reply(200, e.clone()),
            None => reply(404, json!({"error": "no such exchange"})),
        },
        ("POST", ["requests", id, "replay"]) => {
            st.replays.push(id.to_string());
            let Some(original) = st.exchanges.iter().find(|e| e["id"] == *id).cloned() else {
                return reply(404, json!({"error": "no such exchange"}));
            };
            let mut again = original;
            again["id"] = json!("99");
            again["caller"] = json!("replay");
            st.exchanges.insert(0, again);
            reply(200, json!({"id": "99"}))
        }
        ("GET", ["clients"]) => reply(200, clients()),
        ("GET", ["stats"]) => reply(200, stats()),
        _ => reply(404, json!({"error": "not found"})),
    }
}

/// A browser showing the page of `fake` at `path`, once `rows` exchanges are listed.
fn open(fake: &FakeAdmin, path: &str, rows: usize) -> Browser {
    let mut browser = Browser::start();
    browser.navigate(&fake.url(path));
    must(
        &mut browser,
        &format!("document.querySelectorAll('#exchanges tr[data-id]').length === {rows}"),
        &format!("{rows} exchanges listed"),
    );
    browser
}

/// Waits for `js` to be true, or fails with what the page shows.
fn must(browser: &mut Browser, js: &str, what: &str) {
    if !browser.wait_for(js, READY) {
        let shown = browser.eval("document.body.innerText");
        panic!(
            "{what}: never true ({js}); page log: {:?}; page text:\n{}",
            browser.page_log(),
            shown.as_str().unwrap_or("")
        );
    }
}

fn text(browser: &mut Browser, css: &str) -> String {
    let js = format!(
        "(document.querySelector({}) || {{}}).textContent || ''",
        json!(css)
    );
    browser.eval(&js).as_str().unwrap_or("").to_string()
}

fn row_ids(browser: &mut Browser) -> Vec<String> {
    let ids = browser
        .eval("[...document.querySelectorAll('#exchanges tr[data-id]')].map(r => r.dataset.id)");
    serde_json::from_value(ids).expect("row ids as strings")
}

#[test]
fn lists_clients_exchanges_and_draws_the_chart() {
    let fake = FakeAdmin::start(None, Vec::new());
    let mut browser = open(&fake, "/", 3);

    assert_eq!(row_ids(&mut browser), ["3", "2", "1"], "newest first");
    let rows = text(&mut browser, "#exchanges");
    for needle in [
        "http://api:8081/hello",
        "http://api:8081/missing",
        "ws://api:8081/socket",
        "404",
        "office-paris",
    ] {
        assert!(
            rows.contains(needle),
            "{needle:?} not in the exchanges: {rows}"
        );
    }
    let stream_tags = browser.eval(
        "[...document.querySelectorAll('#exchanges tr[data-id] .tag')]\
         .map(t => t.closest('tr').dataset.id + ':' + t.textContent)",
    );
    assert_eq!(
        stream_tags,
        json!(["1:stream"]),
        "only the stream is tagged"
    );
    let status_classes = browser.eval(
        "[...document.querySelectorAll('#exchanges tr[data-id] .status')].map(s => s.className)",
    );
    assert_eq!(
        status_classes,
        json!(["status s2xx", "status s4xx", "status s1xx"]),
        "statuses colored by class"
    );

    let clients = browser.eval(
        "[...document.querySelectorAll('#clients tr[data-client-id]')].map(r => r.dataset.clientId)",
    );
    assert_eq!(clients, json!(["office-lyon", "office-paris"]));
    let lyon = text(&mut browser, "#clients tr[data-client-id='office-lyon']");
    assert!(
        lyon.contains("1532") && lyon.contains("office-lyon"),
        "client row: {lyon:?}"
    );

    // Three series drawn across the 60 seconds of stats: long paths, not just axes.
    let series = browser.eval(
        "Object.fromEntries([...document.querySelectorAll('#chart path[data-series]')]\
         .map(p => [p.dataset.series, p.getAttribute('d').split(/[ML]/).length]))",
    );
    for name in ["requests", "p50", "p99"] {
        let points = series[name].as_u64().unwrap_or(0);
        assert!(points > 50, "{name} series too short: {series}");
    }
    // The requests line rises off zero: drawn from the data, not a flat placeholder.
    let height = browser
        .eval("document.querySelector('#chart path[data-series=requests]').getBBox().height");
    assert!(
        height.as_f64().unwrap_or(0.0) > 10.0,
        "requests line height {height}"
    );
    let labels = text(&mut browser, "#chart");
    assert!(
        labels.contains("requests / s") && labels.contains("latency ms"),
        "axis titles: {labels:?}"
    );

    let updated = text(&mut browser, "#last-update");
    assert!(
        updated.len() == 8 && updated.as_bytes()[2] == b':' && updated.as_bytes()[5] == b':',
        "#last-update is not a time: {updated:?}"
    );
    assert_eq!(
        browser.eval("document.getElementById('error').hidden"),
        json!(true)
    );
    assert!(
        browser.page_log().is_empty(),
        "page errors: {:?}",
        browser.page_log()
    );
}

#[test]
fn filters_by_text_and_status_class() {
    let fake = FakeAdmin::start(None, Vec::new());
    let mut browser = open(&fake, "/", 3);
    let one_row = |id: &str| {
        format!(
            "(r => r.length === 1 && r[0].dataset.id === '{id}')\
             (document.querySelectorAll('#exchanges tr[data-id]'))"
        )
    };

    browser.fill("#filter", "404");
    must(&mut browser, &one_row("2"), "text 404 leaves the 404");
    browser.fill("#filter", "OFFICE-PARIS");
    must(&mut browser, &one_row("2"), "client filter, any case");
    browser.fill("#filter", "socket");
    must(&mut browser, &one_row("1"), "URL filter");
    browser.fill("#filter", "");
    must(
        &mut browser,
        "document.querySelectorAll('#exchanges tr[data-id]').length === 3",
        "an empty filter shows all",
    );

    browser.fill("#status-class", "2xx");
    must(&mut browser, &one_row("3"), "2xx leaves the 200");
    browser.fill("#status-class", "4xx");
    must(&mut browser, &one_row("2"), "4xx leaves the 404");
    browser.fill("#status-class", "5xx");
    must(
        &mut browser,
        "document.querySelectorAll('#exchanges tr[data-id]').length === 0 \
         && document.querySelector('#exchanges').textContent.includes('no exchange matches')",
        "5xx leaves none, and says so",
    );
    // The filter holds across the page's refreshes.
    let before = text(&mut browser, "#last-update");
    must(
        &mut browser,
        &format!("document.getElementById('last-update').textContent !== {before:?}"),
        "a refresh",
    );
    assert!(
        row_ids(&mut browser).is_empty(),
        "a refresh undid the filter"
    );
}

#[test]
fn details_and_replay() {
    let fake = FakeAdmin::start(None, Vec::new());
    let mut browser = open(&fake, "/", 3);

    browser.click("#exchanges tr[data-id='3']");
    must(
        &mut browser,
        "document.getElementById('details').textContent.includes('hello from lyon')",
        "the response body of #3 shown",
    );
    let details = text(&mut browser, "#details");
    for needle in [
        "curl/8.5.0",
        "User-Agent",
        "[redacted]",
        "second",
        r#"{"greeting":"hello from lyon"}"#,
        "Content-Type",
        "application/json",
    ] {
        assert!(
            details.contains(needle),
            "{needle:?} not in details: {details}"
        );
    }
    assert_eq!(
        browser.eval("document.querySelector('#exchanges tr.selected').dataset.id"),
        json!("3")
    );

    browser.click("#replay");
    must(
        &mut browser,
        "document.getElementById('replay-result').textContent.includes('replayed as #99')",
        "replay result",
    );
    must(
        &mut browser,
        "!!document.querySelector('#exchanges tr[data-id=\"99\"]')",
        "the replayed exchange listed",
    );
    assert_eq!(fake.replays(), ["3"], "one POST for #3");
    // The selection survives the refreshes that brought #99.
    assert_eq!(
        browser.eval("document.querySelector('#exchanges tr.selected').dataset.id"),
        json!("3")
    );

    // The 404: request body not captured, response body binary, truncated, as hex.
    browser.click("#exchanges tr[data-id='2']");
    must(
        &mut browser,
        "document.getElementById('details').textContent.includes('00000000  ff fe fd')",
        "a hex dump of the 404's body",
    );
    let details = text(&mut browser, "#details");
    assert!(details.contains("not captured"), "request body: {details}");
    assert!(
        details.contains("(1500 bytes, truncated)"),
        "size: {details}"
    );
    assert!(
        details.contains("000003f0") && !details.contains("00000400"),
        "only the first 1 KiB dumped: {details}"
    );
    assert!(
        browser.page_log().is_empty(),
        "page errors: {:?}",
        browser.page_log()
    );
}

#[test]
fn keyboard_opens_replays_and_closes() {
    let fake = FakeAdmin::start(None, Vec::new());
    let mut browser = open(&fake, "/", 3);

    browser.press("/");
    assert_eq!(
        browser.eval("[document.activeElement.id, document.activeElement.value]"),
        json!(["filter", ""]),
        "/ focuses the filter without typing into it"
    );
    browser.press("Escape");

    let focusable = browser.eval(
        "[...document.querySelectorAll('#exchanges tr[data-id], #clients tr[data-client-id], \
         button')].every(e => e.tabIndex >= 0)",
    );
    assert_eq!(focusable, json!(true), "rows and buttons focusable");

    browser.eval("document.querySelector('#exchanges tr[data-id=\"3\"]').focus()");
    browser.press("ArrowDown");
    assert_eq!(
        browser.eval("document.activeElement.dataset.id"),
        json!("2")
    );
    browser.press("ArrowUp");
    browser.press("Enter");
    must(
        &mut browser,
        "document.getElementById('details').textContent.includes('hello from lyon')",
        "Enter opens the details",
    );

    browser.press("r");
    must(
        &mut browser,
        "document.getElementById('replay-result').textContent.includes('replayed as #99')",
        "r replays",
    );
    assert_eq!(fake.replays(), ["3"]);

    browser.press("Escape");
    must(
        &mut browser,
        "document.getElementById('details-panel').hidden \
         && !document.querySelector('#exchanges tr.selected')",
        "Escape closes the details",
    );
    browser.press("r");
    // Nothing selected: no replay. The list keeps refreshing meanwhile.
    let before = text(&mut browser, "#last-update");
    must(
        &mut browser,
        &format!("document.getElementById('last-update').textContent !== {before:?}"),
        "a refresh",
    );
    assert_eq!(fake.replays(), ["3"], "r without a selection replayed");
}

#[test]
fn token_in_the_url_is_sent_and_a_missing_one_is_explained() {
    let fake = FakeAdmin::start(Some(TOKEN), Vec::new());
    let mut browser = open(&fake, &format!("/?token={TOKEN}"), 3);
    assert_eq!(
        browser.eval("document.getElementById('error').hidden"),
        json!(true)
    );

    browser.navigate(&fake.url("/"));
    must(
        &mut browser,
        "!document.getElementById('error').hidden",
        "the error banner",
    );
    let error = text(&mut browser, "#error");
    assert!(error.contains("token"), "banner: {error:?}");
    assert!(row_ids(&mut browser).is_empty(), "rows without a token");
    assert_eq!(text(&mut browser, "#last-update"), "never");

    browser.navigate(&fake.url("/?token=wrong"));
    must(
        &mut browser,
        "document.getElementById('error').textContent.includes('token')",
        "the banner for a wrong token",
    );
}

#[test]
fn untrusted_data_stays_text() {
    let fake = FakeAdmin::start(None, vec![xss_exchange()]);
    let mut browser = open(&fake, "/", 4);
    browser.click("#exchanges tr[data-id='4']");
    must(
        &mut browser,
        "document.getElementById('details').textContent.includes('window.pwned=2')",
        "the hostile body shown",
    );
    assert!(
        text(&mut browser, "#exchanges").contains(XSS_URL),
        "URL as literal text"
    );
    assert!(text(&mut browser, "#exchanges").contains("<b>bold-client</b>"));
    assert!(text(&mut browser, "#details").contains(XSS_BODY));
    assert!(text(&mut browser, "#details").contains("<img src=x onerror=window.pwned=4>"));
    assert_eq!(
        browser.eval("[document.querySelectorAll('img, b').length, document.scripts.length]"),
        json!([0, 1]),
        "markup from the data became elements"
    );
    // An injected handler would fire within a moment; give it a second to.
    assert!(
        !browser.wait_for("window.pwned !== undefined", Duration::from_secs(1)),
        "window.pwned set"
    );
}

#[test]
fn screenshot_of_the_loaded_page() {
    let fake = FakeAdmin::start(None, Vec::new());
    let mut browser = open(&fake, "/", 3);
    browser.click("#exchanges tr[data-id='3']");
    must(
        &mut browser,
        "document.getElementById('details').textContent.includes('hello from lyon') \
         && document.querySelectorAll('#chart path[data-series]').length === 3",
        "details and chart drawn",
    );
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console.png");
    let _ = std::fs::remove_file(&path);
    browser.screenshot(&path);
    let png = std::fs::read(&path).expect("read the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10 * 1024, "screenshot only {} bytes", png.len());
}
