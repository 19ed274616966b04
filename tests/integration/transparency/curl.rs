//! A real caller: curl, straight to the upstream, through `/request` and through proxy
//! mode (`-x`). Each run fetches a case, then a second URL on the same connection
//! (`--next`), and the runs must agree: curl's exit status, the status, the body bytes,
//! the end-to-end headers; and through wsp the second fetch must reuse the connection.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::caller::Route;
use super::cases::{self, Case};
use super::compare::field_differences;
use super::wire::{split_head, Field};
use super::Harness;

/// What curl prints after each fetch: its exit status for that fetch, the HTTP status,
/// and how many connections it opened.
const WRITE_OUT: &str = "%{exitcode} %{http_code} %{num_connects}\\n";

/// What one curl run of a case gave.
#[derive(Debug)]
struct Fetch {
    /// curl's exit status for the fetch of the case.
    exit: String,
    status: String,
    fields: Vec<Field>,
    body: Vec<u8>,
    /// Connections curl opened for the second fetch: 0 when it reused the first's.
    second_connects: String,
}

/// The cases curl runs, with curl's own options for each.
fn chosen() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("200-empty", vec![]),
        (
            "201-created-empty",
            vec![
                "--data-binary",
                "{\"a\":1}",
                "-H",
                "Content-Type: application/json",
            ],
        ),
        ("304-not-modified", vec!["-H", "If-None-Match: \"v1\""]),
        ("head-with-length", vec!["--head"]),
        ("chunked-trailers", vec![]),
        ("set-cookie-60", vec![]),
        ("http10-close-delimited", vec![]),
        ("short-body", vec![]),
        (
            "100-continue-upload",
            vec![
                "-X",
                "PUT",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                "@-",
            ],
        ),
    ]
}

/// Runs curl for `case` by `route`: the case, then the second request, one connection.
fn fetch(harness: &Harness, case: &str, options: &[&str], route: Route, dir: &Path) -> Fetch {
    let head = dir.join(format!("{case}-{route:?}.head"));
    let body = dir.join(format!("{case}-{route:?}.body"));
    let mut command = Command::new("curl");
    command.args(["-s", "-S", "--max-time", "15", "-w", WRITE_OUT]);
    command.args(target(harness, route, &format!("/cases/{case}")));
    command.args(["-H", &format!("X-Harness-Case: {case}")]);
    command.args(options);
    command.args(["-D", path(&head), "-o", path(&body)]);
    command.args(["--next", "-s", "-o", "/dev/null", "-w", WRITE_OUT]);
    command.args(target(harness, route, "/cases/again"));
    command.args(["-H", "X-Harness-Case: again"]);
    let out = run(command);
    let mut lines = out
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>());
    let (first, second) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    Fetch {
        exit: first.first().cloned().unwrap_or_default(),
        status: first.get(1).cloned().unwrap_or_default(),
        fields: final_head(&std::fs::read(&head).unwrap_or_default()),
        body: std::fs::read(&body).unwrap_or_default(),
        second_connects: second.get(2).cloned().unwrap_or_else(|| "none".into()),
    }
}

/// Runs curl, its standard input the upload case's body: its output.
fn run(mut command: Command) -> String {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("start curl (is it installed?)");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&[b'x'; 10_000]);
    }
    let output = child.wait_with_output().expect("curl");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The URL and options that send a request for `path` of the upstream by `route`.
fn target(harness: &Harness, route: Route, path: &str) -> Vec<String> {
    let url = format!("http://{}{path}", harness.api);
    match route {
        Route::Direct => vec![url],
        Route::Request => vec![
            format!("http://{}/request", harness.server.addr),
            "-H".into(),
            format!("X-PROXY-DESTINATION: {url}"),
        ],
        Route::Proxy => vec!["-x".into(), format!("http://{}", harness.server.addr), url],
    }
}

/// The fields of the last head in curl's dump (interim answers come first).
fn final_head(dump: &[u8]) -> Vec<Field> {
    let text = String::from_utf8_lossy(dump);
    let last = text
        .split("\r\n\r\n")
        .filter(|h| !h.trim().is_empty())
        .last()
        .unwrap_or_default();
    split_head(format!("{last}\r\n\r\n").as_bytes()).1
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsp-it-{}-curl", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir:?}: {e}"));
    dir
}

#[test]
fn curl_gets_through_wsp_what_it_gets_directly() {
    let chosen = chosen();
    let all = cases::quick();
    let cases: Vec<Case> = all
        .into_iter()
        .filter(|c| chosen.iter().any(|(n, _)| *n == c.name))
        .collect();
    assert_eq!(cases.len(), chosen.len(), "every chosen case exists");
    let harness = Arc::new(Harness::start(&cases));
    let dir = temp_dir();
    let mut failures = Vec::new();
    for (case, options) in &chosen {
        let direct = fetch(&harness, case, options, Route::Direct, &dir);
        for route in super::TUNNELS {
            let tunnel = fetch(&harness, case, options, route, &dir);
            let mut found = Vec::new();
            if (&tunnel.exit, &tunnel.status) != (&direct.exit, &direct.status) {
                found.push(format!(
                    "curl exit {} status {} through wsp, {} {} direct",
                    tunnel.exit, tunnel.status, direct.exit, direct.status
                ));
            }
            // With --head, curl writes the head where the body would go: compared above.
            if tunnel.body != direct.body && !options.contains(&"--head") {
                found.push(format!(
                    "body {:?} through wsp, {:?} direct",
                    String::from_utf8_lossy(&tunnel.body),
                    String::from_utf8_lossy(&direct.body)
                ));
            }
            found.extend(field_differences(
                &direct.fields,
                &tunnel.fields,
                "response",
            ));
            // A cut answer must end the connection; any other must leave it for reuse.
            let reuse = if direct.exit == "0" { "0" } else { "1" };
            if tunnel.second_connects != reuse {
                found.push(format!(
                    "second fetch opened {} connections (expected {reuse})",
                    tunnel.second_connects
                ));
            }
            failures.extend(
                found
                    .into_iter()
                    .map(|f| format!("{case} via {route:?}: {f}")),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
