//! The secret key kept out of sight: given through `--secret-key-file` or `WSP_SECRET_KEY`,
//! it opens the door (a request is relayed end to end) yet appears neither in
//! `/proc/<pid>/cmdline` nor in the debug logs of either binary; a wrong key file is refused
//! by the server, and an unusable one stops the binary with a message naming it.
//!
//! These tests start the binaries without support's `--secret-key test-secret`, and set or
//! remove `WSP_SECRET_KEY` on each child only, never in this process (tests run in
//! parallel threads that spawn children of their own).

use std::process::Command;
use std::time::Duration;

use crate::config::ConfigFile;
use crate::support::*;

/// The environment variable the binaries read the key from.
const SECRET_KEY_ENV: &str = "WSP_SECRET_KEY";

/// A key that no other test uses, so finding it anywhere means it leaked.
const KEY: &str = "wsp-it-9f3c1e-key";

/// How long a binary with an unusable key may take to exit.
const FAIL_FAST: Duration = Duration::from_secs(10);

/// Starts `binary` with `args` and `WSP_SECRET_KEY` set to `env_key`, or removed when
/// `None`.
fn spawn(binary: &str, args: &[&str], env_key: Option<&str>) -> Proc {
    let mut command = Command::new(binary);
    command.args(args);
    match env_key {
        Some(key) => command.env(SECRET_KEY_ENV, key),
        None => command.env_remove(SECRET_KEY_ENV),
    };
    Proc::spawn_command(command)
}

/// Starts `wsp_server` on an ephemeral port at debug level with `args` and waits until
/// it listens.
fn start_server(args: &[&str], env_key: Option<&str>) -> Server {
    let mut all = vec!["--port", "0", "--log-level", "debug"];
    all.extend_from_slice(args);
    Server::from_proc(spawn(env!("CARGO_BIN_EXE_wsp_server"), &all, env_key))
}

/// Starts `wsp_client` registered to `server` at debug level with `args`.
fn start_client(server: &Server, args: &[&str], env_key: Option<&str>) -> Proc {
    let target = server.register_url();
    let mut all = vec!["--target", &target, "--log-level", "debug"];
    all.extend_from_slice(args);
    spawn(env!("CARGO_BIN_EXE_wsp_client"), &all, env_key)
}

/// A key file holding `key` and the newline an editor adds.
fn key_file(key: &str) -> ConfigFile {
    ConfigFile::new("wsp.key", &format!("{key}\n"))
}

/// Asserts that `key` is in neither the command line nor the log of `proc`.
fn assert_hidden(proc: &Proc, key: &str, name: &str) {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", proc.pid()))
        .unwrap_or_else(|e| panic!("reading the command line of {name}: {e}"));
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("wsp_"), "{name}'s command line: {cmdline}");
    assert!(!cmdline.contains(key), "{name}'s command line: {cmdline}");
    let log = proc.log.lock().clone();
    assert!(!log.contains(key), "{name}'s log holds the key:\n{log}");
}

/// Relays one request end to end and checks that neither process shows the key.
fn relay_and_check(server: &Server, client: &Proc) {
    let upstream = upstream();
    wait_relay_ready(server, &upstream);
    assert_hello(server, &upstream);
    // Both run at debug level: their per-request lines (the server's access log) are
    // there, the key is not.
    server.proc.wait_log("/hello 200 ");
    client.wait_log("/hello: 200");
    client.wait_log("connected to ");
    assert_hidden(&server.proc, KEY, "wsp_server");
    assert_hidden(client, KEY, "wsp_client");
}

#[test]
fn server_key_from_a_file_client_key_from_the_environment() {
    let file = key_file(KEY);
    let server = start_server(&["--secret-key-file", file.path()], None);
    let client = start_client(&server, &[], Some(KEY));
    relay_and_check(&server, &client);
}

#[test]
fn server_key_from_the_environment_client_key_from_a_file() {
    let file = key_file(KEY);
    let server = start_server(&[], Some(KEY));
    let client = start_client(&server, &["--secret-key-file", file.path()], None);
    relay_and_check(&server, &client);
}

#[test]
fn a_wrong_key_file_is_refused() {
    let right = key_file(KEY);
    let server = start_server(&["--secret-key-file", right.path()], None);
    let wrong_key = "wsp-it-9f3c1e-wrong";
    let wrong = key_file(wrong_key);
    // The environment's right key does not help: the flag's file comes first.
    let client = start_client(&server, &["--secret-key-file", wrong.path()], Some(KEY));
    client.wait_log("Invalid X-SECRET-KEY");
    let reply = relay(&server, "GET", "http://127.0.0.1:9/", &[], None);
    assert_eq!(
        (reply.status, reply.text().trim_end()),
        (526, "No proxy available")
    );
    assert_hidden(&server.proc, KEY, "wsp_server");
    for key in [KEY, wrong_key] {
        assert_hidden(&client, key, "wsp_client");
    }
}

/// Expects `proc` to exit with an error on its own, with a line naming all of `needles`.
fn assert_stops(mut proc: Proc, needles: &[&str]) {
    let code = proc.wait_exit(FAIL_FAST);
    let log = proc.log.lock().clone();
    assert!(
        matches!(code, Some(c) if c != 0),
        "expected a non-zero exit, got {code:?}; log:\n{log}"
    );
    let named = poll(READY, || {
        let log = proc.log.lock();
        log.lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
    });
    assert!(named.is_some(), "no line names {needles:?}; log:\n{log}");
}

#[test]
fn an_unusable_key_file_stops_the_binary() {
    let missing = std::env::temp_dir().join(format!("wsp-it-{}-missing.key", std::process::id()));
    let missing = missing.to_str().expect("UTF-8 path");
    let server = env!("CARGO_BIN_EXE_wsp_server");
    let proc = spawn(server, &["--port", "0", "--secret-key-file", missing], None);
    assert_stops(proc, &["--secret-key-file", missing, "No such file"]);

    let empty = ConfigFile::new("wsp.key", "\n");
    let client = env!("CARGO_BIN_EXE_wsp_client");
    let proc = spawn(client, &["--secret-key-file", empty.path()], Some(KEY));
    assert_stops(proc, &["--secret-key-file", empty.path(), "empty"]);

    let both = ["--secret-key", "a", "--secret-key-file", empty.path()];
    let proc = spawn(client, &both, None);
    assert_stops(proc, &["give either --secret-key or --secret-key-file"]);
}
