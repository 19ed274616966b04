//! Unit tests of the client configuration: keys, flags, precedence and messages.

use super::*;
use crate::headers::Headers;
use crate::rules::Denied;

const EXAMPLE: &str = include_str!("../../../examples/wsp_client.cfg");
const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wsp_client.cfg");

fn load(text: &str) -> ClientConfig {
    match ClientConfig::from_yaml(text, "wsp_client.cfg") {
        Ok(config) => config,
        Err(e) => panic!("config should load: {e}"),
    }
}

fn error(text: &str) -> String {
    match ClientConfig::from_yaml(text, "wsp_client.cfg") {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

fn flags_error(flags: &ClientFlags) -> String {
    match ClientConfig::from_flags(flags) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn example_file_loads() {
    let config = load(EXAMPLE);
    assert_eq!(config.id, "my-client");
    assert_eq!(config.targets, ["ws://127.0.0.1:8080/register"]);
    assert_eq!(config.pool_idle_size, 10);
    assert_eq!(config.pool_max_size, 100);
    assert!(config.secret_key.matches("ThisIsASecret"));
    let none = Headers::new();
    let rules = &config.rules;
    assert_eq!(
        rules.check("GET", "http://127.0.0.1:8081/get", &none),
        Ok(())
    );
    let admin = rules.check("GET", "http://127.0.0.1:8081/admin/users", &none);
    assert_eq!(admin, Err(Denied::Forbidden));
    let outside = rules.check("GET", "http://example.com/", &none);
    assert_eq!(outside, Err(Denied::NotAllowed));
}

#[test]
fn empty_file_gives_defaults() {
    let config = load("");
    assert_eq!(config.targets, ["ws://127.0.0.1:8080/register"]);
    assert_eq!((config.pool_idle_size, config.pool_max_size), (10, 100));
    assert!(uuid::Uuid::parse_str(&config.id).is_ok());
    assert_ne!(config.id, load("").id);
    assert!(config.secret_key.is_empty());
    assert!(config.rules.is_empty());
}

#[test]
fn unknown_key_names_file_and_key() {
    let msg = error("id: a\ntarget: ws://x/register\n");
    assert!(
        msg.starts_with("wsp_client.cfg: unknown field `target`"),
        "{msg}"
    );
}

#[test]
fn wrong_type_names_key() {
    let msg = error("poolmaxsize: many\n");
    assert!(msg.starts_with("wsp_client.cfg: poolmaxsize: "), "{msg}");
    let msg = error("targets: ws://127.0.0.1:8080/register\n");
    assert!(msg.starts_with("wsp_client.cfg: targets: "), "{msg}");
}

#[test]
fn bad_values_name_key() {
    let cases = [
        ("id: \"\"\n", "wsp_client.cfg: id: must not be empty"),
        (
            "id: \"a\\tb\"\n",
            "wsp_client.cfg: id: must not contain control",
        ),
        ("targets: []\n", "wsp_client.cfg: targets: at least one"),
        (
            "targets: [http://x/]\n",
            "wsp_client.cfg: targets: \"http://x/\": the scheme",
        ),
        (
            "targets: [nowhere]\n",
            "wsp_client.cfg: targets: \"nowhere\" is not a URL",
        ),
        (
            "poolmaxsize: 0\n",
            "wsp_client.cfg: poolmaxsize: must be at least 1",
        ),
        (
            "poolidlesize: 10001\npoolmaxsize: 20000\n",
            "wsp_client.cfg: poolidlesize: ",
        ),
        (
            "poolidlesize: 11\npoolmaxsize: 10\n",
            "wsp_client.cfg: poolidlesize: ",
        ),
    ];
    for (text, want) in cases {
        let msg = error(text);
        assert!(msg.starts_with(want), "{text:?} gave {msg:?}");
    }
    let long_id = format!("id: {}\n", "a".repeat(MAX_ID_BYTES + 1));
    assert!(error(&long_id).starts_with("wsp_client.cfg: id: must be at most"));
    let many: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("ws://h{i}/")).collect();
    let many = format!("targets: [{}]\n", many.join(", "));
    assert!(error(&many).starts_with("wsp_client.cfg: targets: at most"));
}

#[test]
fn bad_regex_names_file_and_rule() {
    let msg = error("whitelist:\n - headers:\n     X-Api: \"[\"\n");
    let want = "wsp_client.cfg: whitelist[0].headers.X-Api: invalid regex \"[\": ";
    assert!(msg.starts_with(want), "{msg}");
}

#[test]
fn flags_override_file() {
    let flags = ClientFlags {
        config: Some(EXAMPLE_PATH.to_string()),
        target: vec!["wss://a/register".into(), "ws://b:9/register".into()],
        pool_idle_size: Some(2),
        ..ClientFlags::default()
    };
    let config = ClientConfig::from_flags(&flags).map_err(|e| e.to_string());
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.id, "my-client");
    assert_eq!(config.targets, ["wss://a/register", "ws://b:9/register"]);
    assert_eq!((config.pool_idle_size, config.pool_max_size), (2, 100));
    assert!(config.secret_key.matches("ThisIsASecret"));
}

#[test]
fn bad_flags_name_flag() {
    let flags = ClientFlags {
        pool_max_size: Some(5),
        ..ClientFlags::default()
    };
    let msg = flags_error(&flags);
    assert!(msg.starts_with("command line: --pool-max-size: poolidlesize (10)"));
    let flags = ClientFlags {
        target: vec!["http://x/".into()],
        ..ClientFlags::default()
    };
    assert!(flags_error(&flags).starts_with("command line: --target: \"http://x/\""));
    let flags = ClientFlags {
        config: Some("/nonexistent/wsp_client.cfg".into()),
        ..ClientFlags::default()
    };
    let msg = flags_error(&flags);
    assert!(msg.starts_with("/nonexistent/wsp_client.cfg: cannot read"));
}

#[test]
fn repeated_target_flags_parse() {
    let args = [
        "wsp_client",
        "-target",
        "ws://a/",
        "--target=ws://b/",
        "-id",
        "x",
    ];
    let flags = crate::config::parse_flags::<ClientFlags>(args.map(String::from));
    let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
    assert_eq!(flags.target, ["ws://a/", "ws://b/"]);
    assert_eq!(flags.id.as_deref(), Some("x"));
    assert_eq!(flags.log_level, "info");
}
