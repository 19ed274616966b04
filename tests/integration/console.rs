//! The admin listener's JSON API (`--admin`): the ring of recent exchanges, redaction,
//! body capture, replay, the token, and that nothing of it answers on the public port.
//! The internal API here is a recorder that keeps every request it gets, so a test can
//! compare what the console shows with what really crossed the tunnel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::config::ConfigFile;
use crate::support::chromium::Browser;
use crate::support::{get, poll, relay, start_client, status_field, Proc, Server};

/// A request as the recorder got it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

/// An internal API that answers `200 seen` to everything and records what it got.
fn recorder() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            let log = log.clone();
            thread::spawn(move || {
                let mut writer = socket.try_clone().expect("clone");
                let mut reader = BufReader::new(socket);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end().to_string();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        headers.push(h);
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let line = line.trim_end().to_string();
                    log.lock().expect("log").push(Seen {
                        line,
                        headers,
                        body,
                    });
                    let answer =
                        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nSet-Cookie: s=1\r\n\r\nseen";
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A server with its console on an ephemeral port (and `extra` flags), a client, and the
/// console's address once both are up.
fn console_stack(extra: &[&str]) -> (Server, Proc, SocketAddr) {
    let mut args = vec!["--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let line = server.proc.wait_log("console on http://");
    let admin = line
        .split("console on http://")
        .nth(1)
        .and_then(|rest| rest.trim_end().trim_end_matches('/').parse().ok())
        .expect("the console's address in the log");
    let client = start_client(&server, &[]);
    let ready = poll(Duration::from_secs(20), || {
        let status = get(&format!("http://{}/status.json", server.addr), &[]);
        String::from_utf8_lossy(&status.body)
            .contains("\"idle\"")
            .then_some(())
    });
    assert!(ready.is_some(), "the client never registered");
    (server, client, admin)
}

/// `GET` of the console API's `path`, as JSON.
fn api(admin: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let reply = get(&format!("http://{admin}{path}"), headers);
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, value)
}

/// `POST` (replay) or `DELETE` on the console, status and JSON.
fn act(admin: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let agent = crate::support::caller();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{admin}{path}"))
        .body(())
        .expect("request");
    let response = agent.run(request).expect("console call");
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn decode(value: &Value) -> Vec<u8> {
    let text = value.as_str().expect("base64 text");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[test]
fn exchanges_are_listed_newest_first_with_secrets_redacted() {
    let (api_addr, seen) = recorder();
    let (server, _client, admin) = console_stack(&[]);
    for path in ["/one", "/two"] {
        let url = format!("http://{api_addr}{path}?q=1");
        let headers = [("Authorization", "Bearer top-secret"), ("Cookie", "sid=42")];
        let reply = relay(&server, "GET", &url, &headers, None);
        assert_eq!(reply.text(), "seen");
    }
    let (status, list) = api(admin, "/api/requests", &[]);
    assert_eq!(status, 200);
    let list = list["requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{list:?}");
    let newest = &list[0];
    assert_eq!(newest["url"], format!("http://{api_addr}/two?q=1"));
    assert_eq!(list[1]["url"], format!("http://{api_addr}/one?q=1"));
    assert_eq!(
        (&newest["method"], &newest["status"]),
        (&"GET".into(), &200.into())
    );
    assert_eq!(newest["bytes_out"], 4);
    assert!(newest["duration_ms"].as_f64().is_some_and(|d| d > 0.0));
    assert!(newest["caller"]
        .as_str()
        .is_some_and(|c| c.starts_with("127.0.0.1:")));
    let started = newest["started"].as_str().unwrap_or_default();
    assert!(started.len() == 24 && started.ends_with('Z') && started.as_bytes()[10] == b'T');
    let id = newest["id"].as_str().expect("id");
    let (_, detail) = api(admin, &format!("/api/requests/{id}"), &[]);
    let request_headers = &detail["request"]["headers"];
    assert_eq!(request_headers["Authorization"][0], "[redacted]");
    assert_eq!(request_headers["Cookie"][0], "[redacted]");
    assert_eq!(detail["response"]["headers"]["Set-Cookie"][0], "[redacted]");
    assert_eq!(detail["response"]["status"], 200);
    // Without --inspect, no body is kept.
    assert_eq!(detail["response"]["body_base64"], Value::Null);
    // The internal API did get the secret: only the console hides it.
    let got = seen
        .lock()
        .expect("log")
        .last()
        .cloned()
        .expect("a request");
    assert!(
        got.headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("Authorization: Bearer top-secret")),
        "{got:?}"
    );
    let (status, _) = api(admin, "/api/requests/999", &[]);
    assert_eq!(status, 404);
}

#[test]
fn bodies_are_kept_up_to_the_limit_and_a_replay_goes_through_again() {
    let (api_addr, seen) = recorder();
    let (server, _client, admin) = console_stack(&["--inspect", "--inspect-body-limit", "16"]);
    let url = format!("http://{api_addr}/post");
    let small = b"hello, small body";
    let reply = relay(
        &server,
        "POST",
        &url,
        &[("X-Trace", "t1")],
        Some(&small[..16]),
    );
    assert_eq!(reply.status, 200);
    let big = vec![b'x'; 100];
    relay(&server, "POST", &url, &[], Some(&big));
    let (_, list) = api(admin, "/api/requests", &[]);
    let ids: Vec<String> = list["requests"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|r| r["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let (big_id, small_id) = (&ids[0], &ids[1]);
    let (_, detail) = api(admin, &format!("/api/requests/{big_id}"), &[]);
    assert_eq!(decode(&detail["request"]["body_base64"]), vec![b'x'; 16]);
    assert_eq!(detail["request"]["body_bytes"], 100);
    assert_eq!(detail["request"]["body_truncated"], true);
    assert_eq!(decode(&detail["response"]["body_base64"]), b"seen");
    // A body kept whole can be replayed: the API gets the same request again.
    let before = seen.lock().expect("log").len();
    let (status, replayed) = act(admin, "POST", &format!("/api/requests/{small_id}/replay"));
    assert_eq!(status, 200, "{replayed}");
    let log = seen.lock().expect("log").clone();
    assert_eq!(log.len(), before + 1);
    let (original, again) = (&log[0], &log[before]);
    assert_eq!(again.line, original.line);
    assert_eq!(again.body, original.body);
    assert!(
        again
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("X-Trace: t1")),
        "{again:?}"
    );
    let new_id = replayed["id"].as_str().expect("new id");
    let (_, newest) = api(admin, &format!("/api/requests/{new_id}"), &[]);
    assert_eq!(newest["method"], "POST");
    // One cut to the limit cannot be.
    let (status, why) = act(admin, "POST", &format!("/api/requests/{big_id}/replay"));
    assert_eq!(status, 409, "{why}");
    // DELETE forgets them all.
    let (status, _) = act(admin, "DELETE", "/api/requests");
    assert_eq!(status, 204);
    let (_, list) = api(admin, "/api/requests", &[]);
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(0));
}

#[test]
fn the_token_is_required_and_nothing_answers_on_the_public_port() {
    let token = ConfigFile::new("admin-token", "adm1n\n");
    let (server, _client, admin) = console_stack(&["--admin-token-file", token.path()]);
    for path in ["/api/requests", "/api/clients", "/api/stats", "/metrics"] {
        let (status, _) = api(admin, path, &[]);
        assert_eq!(status, 401, "{path} without the token");
        let (status, _) = api(admin, path, &[("Authorization", "Bearer wrong")]);
        assert_eq!(status, 401, "{path} with a wrong token");
        let reply = get(
            &format!("http://{admin}{path}"),
            &[("Authorization", "Bearer adm1n")],
        );
        assert_eq!(reply.status, 200, "{path} with the token");
    }
    // The page holds no data: anyone gets it, and it asks for the token itself.
    let page = get(&format!("http://{admin}/"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("wsp console"));
    let (_, clients) = api(admin, "/api/clients", &[("Authorization", "Bearer adm1n")]);
    assert_eq!(clients["clients"].as_array().map(Vec::len), Some(1));
    // The public port serves none of it.
    for path in ["/api/requests", "/api/clients", "/"] {
        let reply = get(&format!("http://{}{path}", server.addr), &[]);
        assert_eq!(reply.status, 404, "{path} on the public port");
    }
}

#[test]
fn the_ring_stays_bounded_over_ten_thousand_requests() {
    let (api_addr, _seen) = recorder();
    let (server, _client, admin) = console_stack(&["--capture", "50", "--inspect"]);
    let url = format!("http://{api_addr}/many");
    let burst = |n: usize| {
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..n / 4 {
                        assert_eq!(relay(&server, "GET", &url, &[], None).status, 200);
                    }
                });
            }
        });
    };
    burst(1000);
    let rss_after_1000 = status_field(server.proc.pid(), "VmRSS:");
    burst(9000);
    let rss_after_10000 = status_field(server.proc.pid(), "VmRSS:");
    let (_, list) = api(admin, "/api/requests", &[]);
    let list = list["requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 50);
    let newest: u64 = list[0]["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .unwrap_or(0);
    assert_eq!(newest, 10_000);
    let (_, stats) = api(admin, "/api/stats", &[]);
    let counted: u64 = stats["seconds"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["requests"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(counted, 10_000);
    // 9,000 more exchanges with their bodies, and the memory stays where it was.
    assert!(
        rss_after_10000 < rss_after_1000 + 3 * 1024,
        "RSS grew from {rss_after_1000} to {rss_after_10000} KiB"
    );
}

#[test]
fn the_real_console_in_a_browser_lists_an_exchange_and_replays_it() {
    let (api_addr, seen) = recorder();
    let token = ConfigFile::new("admin-token", "br0wser\n");
    let flags = ["--inspect", "--admin-token-file", token.path()];
    let (server, _client, admin) = console_stack(&flags);
    let url = format!("http://{api_addr}/from-the-browser-test");
    let reply = relay(
        &server,
        "POST",
        &url,
        &[("X-Trace", "b1")],
        Some(b"{\"n\":1}"),
    );
    assert_eq!(reply.text(), "seen");
    let mut browser = Browser::start();
    browser.navigate(&format!("http://{admin}/?token=br0wser"));
    let listed = browser.wait_for(
        "[...document.querySelectorAll('#exchanges tr[data-id]')]\
           .some(r => r.textContent.includes('/from-the-browser-test'))",
        Duration::from_secs(20),
    );
    assert!(
        listed,
        "the exchange never showed; page log: {:?}",
        browser.page_log()
    );
    let client_shown = browser.wait_for(
        "document.querySelectorAll('#clients tr[data-client-id]').length === 1",
        Duration::from_secs(10),
    );
    assert!(client_shown, "the client never showed");
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-live.png");
    browser.click("#exchanges tr[data-id]");
    let opened = browser.wait_for(
        "document.querySelector('#details').textContent.includes('X-Trace')",
        Duration::from_secs(10),
    );
    assert!(opened, "the details never showed the request's headers");
    browser.screenshot(&shot);
    assert!(std::fs::metadata(&shot)
        .map(|m| m.len() > 10_000)
        .unwrap_or(false));
    let before = seen.lock().expect("log").len();
    browser.click("#replay");
    let replayed = poll(Duration::from_secs(20), || {
        (seen.lock().expect("log").len() == before + 1).then_some(())
    });
    assert!(replayed.is_some(), "the internal API never saw the replay");
    let log = seen.lock().expect("log").clone();
    assert_eq!(log[before].line, log[0].line);
    assert_eq!(log[before].body, b"{\"n\":1}");
    assert!(browser.wait_for(
        "document.body.textContent.includes('replayed as #')",
        Duration::from_secs(10),
    ));
}
