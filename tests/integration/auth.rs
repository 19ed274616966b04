//! Caller authentication on `/request`: off by default (wsp's behaviour), and when `auth`
//! is set, 401 with `WWW-Authenticate` unless the caller presents a configured bearer token
//! or basic-auth user; the credentials never reach the internal API.

use base64::Engine;

use crate::config::ConfigFile;
use crate::support::*;

const TOKEN: &str = "it-token-5d1f";
const FLAG_TOKEN: &str = "it-flag-token-77a0";
const USER: &str = "alice";
const PASSWORD: &str = "it-pw-c0ffee";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A server with `auth` (a token in the file, a user whose password comes from the
/// environment, a token from `--auth-token-file`), a client and the test API, ready.
struct AuthStack {
    upstream: TestApi,
    server: Server,
    _client: Proc,
    _files: (ConfigFile, ConfigFile),
}

impl AuthStack {
    fn start() -> AuthStack {
        let config = ConfigFile::server(&format!(
            "auth :\n  tokens :\n   - token : {TOKEN}\n  users :\n   - user : {USER}\n     passwordenv : IT_WSP_PASSWORD\n"
        ));
        let token_file = ConfigFile::new("token", &format!("{FLAG_TOKEN}\n"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsp_server"));
        command
            .args([
                "--config",
                config.path(),
                "--auth-token-file",
                token_file.path(),
            ])
            .env("IT_WSP_PASSWORD", PASSWORD);
        let server = Server::from_proc(Proc::spawn_command(command));
        let client = start_client(&server, &[]);
        let upstream = upstream();
        let stack = AuthStack {
            upstream,
            server,
            _client: client,
            _files: (config, token_file),
        };
        poll(READY, || {
            (stack.get("/hello", Some(&bearer(TOKEN))).status == 200).then_some(())
        })
        .unwrap_or_else(|| panic!("never ready: {}", stack.server.proc.log.lock()));
        stack
    }

    fn get(&self, path: &str, authorization: Option<&str>) -> Reply {
        let destination = format!("http://{}{path}", self.upstream.addr());
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        relay(&self.server, "GET", &destination, &headers, None)
    }
}

fn assert_unauthorized(reply: &Reply, text: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.text(), format!("{text}\n"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let challenges = reply.header_values("www-authenticate");
    assert!(
        challenges.contains(&"Bearer realm=\"wsp\""),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Basic realm=\"wsp\"")),
        "{challenges:?}"
    );
}

#[test]
fn off_by_default_and_authorization_then_reaches_the_api() {
    let stack = Stack::start(&[], &[]);
    let reply = stack.relay(
        "GET",
        "/echo-headers",
        &[("Authorization", "Bearer for-the-api")],
        None,
    );
    let echo = Echo::parse(&reply);
    assert_eq!(echo.values("authorization"), ["Bearer for-the-api"]);
}

#[test]
fn missing_or_wrong_credentials_get_401_with_challenges() {
    let stack = AuthStack::start();
    assert_unauthorized(&stack.get("/hello", None), "Authentication required");
    assert_unauthorized(
        &stack.get("/hello", Some(&bearer("wrong"))),
        "Invalid credentials",
    );
    assert_unauthorized(
        &stack.get("/hello", Some(&basic(USER, "wrong"))),
        "Invalid credentials",
    );
    assert_unauthorized(
        &stack.get("/hello", Some(&basic("mallory", PASSWORD))),
        "Invalid credentials",
    );
    assert_unauthorized(
        &stack.get("/hello", Some("Digest x")),
        "Unsupported or malformed credentials",
    );
    // The secrets stay out of the log even at the default level.
    let log = stack.server.proc.log.lock();
    assert!(!log.contains(TOKEN) && !log.contains(PASSWORD), "{log}");
}

#[test]
fn right_bearer_or_basic_credentials_pass_and_are_not_forwarded() {
    let stack = AuthStack::start();
    let credentials = [bearer(TOKEN), bearer(FLAG_TOKEN), basic(USER, PASSWORD)];
    for authorization in &credentials {
        let reply = stack.get("/echo-headers", Some(authorization));
        assert_eq!(reply.status, 200, "{authorization}: {}", reply.text());
        let echo = Echo::parse(&reply);
        assert_eq!(
            echo.values("authorization"),
            Vec::<&str>::new(),
            "{authorization}"
        );
    }
    let reply = stack.get("/hello", Some(&basic(USER, PASSWORD)));
    assert_eq!(reply.text(), "hello world");
}
