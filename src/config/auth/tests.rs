//! Unit tests of `auth`: where each secret comes from, and the errors for a bad entry.

use crate::config::testing::{TempFile, MISSING};
use crate::config::{Environment, ServerConfig, ServerFlags};

/// The configuration from YAML `text` in a file, `--auth-token-file`s and variables.
fn build(text: &str, token_files: &[&str], vars: &[(&str, &str)]) -> Result<ServerConfig, String> {
    let file = TempFile::new("wsp_server.cfg", text);
    let flags = ServerFlags {
        config: Some(file.path().to_string()),
        auth_token_file: token_files.iter().map(|p| p.to_string()).collect(),
        ..ServerFlags::default()
    };
    let env = Environment {
        vars: vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.into()))
            .collect(),
        ..Environment::default()
    };
    ServerConfig::from_flags_in(&flags, &env).map_err(|e| e.to_string())
}

fn error(text: &str) -> String {
    match build(text, &[], &[]) {
        Ok(_) => String::from("no error"),
        Err(e) => e,
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[test]
fn off_without_auth() {
    let config = build("port: 0\n", &[], &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.auth.is_enabled());
    assert_eq!(config.auth.check(None), Ok(()));
}

#[test]
fn secrets_come_from_the_file_a_secret_file_or_the_environment() {
    let token_file = TempFile::new("token", "from-file\n");
    let password_file = TempFile::new("password", "bob-pw\n");
    let flag_file = TempFile::new("flag-token", "from-flag");
    let text = format!(
        "auth:\n  tokens:\n   - token: inline\n   - tokenfile: {}\n   - tokenenv: CI_TOKEN\n  \
         users:\n   - user: alice\n     password: alice-pw\n   - user: bob\n     passwordfile: {}\n   \
         - user: carol\n     passwordenv: CAROL_PW\n",
        token_file.path(),
        password_file.path()
    );
    let vars = [("CI_TOKEN", "from-env"), ("CAROL_PW", "carol-pw")];
    let config = build(&text, &[flag_file.path()], &vars).unwrap_or_else(|e| panic!("{e}"));
    let auth = &config.auth;
    for token in ["inline", "from-file", "from-env", "from-flag"] {
        assert_eq!(
            auth.check(Some(&format!("Bearer {token}"))),
            Ok(()),
            "{token}"
        );
    }
    for (user, password) in [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("carol", "carol-pw"),
    ] {
        assert_eq!(auth.check(Some(&basic(user, password))), Ok(()), "{user}");
    }
    assert!(auth.check(Some(&basic("alice", "bob-pw"))).is_err());
    assert!(
        auth.check(Some("Bearer from-file\n")).is_ok(),
        "trailing newline trimmed"
    );
    let printed = format!("{config:?}");
    for secret in ["inline", "from-file", "from-env", "alice-pw", "carol-pw"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

#[test]
fn token_file_flag_alone_turns_auth_on() {
    let flag_file = TempFile::new("flag-token", "only\n");
    let config = build("", &[flag_file.path()], &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.auth.is_enabled());
    assert!(config.auth.check(None).is_err());
    assert_eq!(config.auth.check(Some("Bearer only")), Ok(()));
    let msg = build("", &[MISSING], &[]).err().unwrap_or_default();
    assert!(
        msg.starts_with("command line: --auth-token-file: cannot read /nonexistent"),
        "{msg}"
    );
}

#[test]
fn bad_entries_name_the_key() {
    let cases = [
        ("auth: {}\n", "wsp_server.cfg: auth: lists no tokens and no users"),
        ("auth:\n  tokens: []\n", "auth: lists no tokens and no users"),
        (
            "auth:\n  tokens:\n   - {}\n",
            "auth.tokens[0].token: give exactly one of auth.tokens[0].token, auth.tokens[0].tokenfile and auth.tokens[0].tokenenv",
        ),
        (
            "auth:\n  tokens:\n   - token: a\n     tokenenv: B\n",
            "auth.tokens[0].token: give exactly one of",
        ),
        ("auth:\n  tokens:\n   - token: ''\n", "auth.tokens[0].token: must not be empty"),
        (
            "auth:\n  tokens:\n   - token: ' padded'\n",
            "auth.tokens[0].token: must not start or end with a space",
        ),
        (
            "auth:\n  tokens:\n   - tokenenv: NOPE\n",
            "auth.tokens[0].tokenenv: environment variable NOPE is not set",
        ),
        (
            "auth:\n  users:\n   - user: alice\n",
            "auth.users[0].password: give exactly one of",
        ),
        (
            "auth:\n  users:\n   - user: 'a:b'\n     password: x\n",
            "auth.users[0].user: must not contain ':'",
        ),
        (
            "auth:\n  users:\n   - user: ''\n     password: x\n",
            "auth.users[0].user: must not be empty",
        ),
        (
            "auth:\n  users:\n   - {user: a, password: x}\n   - {user: a, password: y}\n",
            "auth.users[1].user: \"a\" is listed twice",
        ),
        (
            "auth:\n  users:\n   - {user: a, passwordfile: /nonexistent/wsp-unit/key}\n",
            "auth.users[0].passwordfile: cannot read /nonexistent/wsp-unit/key",
        ),
        ("auth:\n  token: x\n", "unknown field `token`"),
        ("auth:\n  users:\n   - {user: a, pasword: x}\n", "unknown field `pasword`"),
    ];
    for (text, expected) in cases {
        let msg = error(text);
        assert!(msg.contains(expected), "{text:?}: {msg}");
        assert!(msg.contains("wsp_server.cfg: "), "names the file: {msg}");
    }
}

#[test]
fn a_secret_never_appears_in_an_error() {
    let msg = error("auth:\n  tokens:\n   - token: 'hunter2 '\n");
    assert!(msg.contains("auth.tokens[0].token"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let empty = build("auth:\n  tokens:\n   - tokenenv: E\n", &[], &[("E", "")]);
    let msg = empty.err().unwrap_or_default();
    assert!(msg.contains("environment variable E is empty"), "{msg}");
}
