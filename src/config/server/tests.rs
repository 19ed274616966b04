//! Unit tests of the server configuration: keys, flags, precedence and messages.

use super::*;
use crate::headers::Headers;
use crate::rules::Denied;

const EXAMPLE: &str = include_str!("../../../examples/wsp_server.cfg");
const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wsp_server.cfg");

fn load(text: &str) -> ServerConfig {
    match ServerConfig::from_yaml(text, "wsp_server.cfg") {
        Ok(config) => config,
        Err(e) => panic!("config should load: {e}"),
    }
}

fn error(text: &str) -> String {
    match ServerConfig::from_yaml(text, "wsp_server.cfg") {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn example_file_loads() {
    let config = load(EXAMPLE);
    assert_eq!(config.host, "127.0.0.1");
    assert_eq!(config.port, 8080);
    assert_eq!(config.timeout, Duration::from_millis(1000));
    assert_eq!(config.idle_timeout, Duration::from_millis(60_000));
    assert!(config.secret_key.matches("ThisIsASecret"));
    let mut custom = Headers::new();
    custom.insert("X-Custom-Header".into(), vec!["value".into()]);
    let rules = &config.rules;
    let google = "https://google.com/";
    assert_eq!(rules.check("GET", google, &custom), Err(Denied::Forbidden));
    assert_eq!(rules.check("GET", google, &Headers::new()), Ok(()));
    let post = rules.check("POST", "http://api/", &Headers::new());
    assert_eq!(post, Err(Denied::NotAllowed));
}

#[test]
fn empty_file_gives_defaults() {
    for text in ["", "# nothing\n", "---\n"] {
        let config = load(text);
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(config.port, 8080);
        assert_eq!(config.timeout, Duration::from_millis(1000));
        assert!(config.secret_key.is_empty());
        assert!(config.rules.is_empty());
    }
}

#[test]
fn unknown_key_names_file_and_key() {
    let msg = error("host: 127.0.0.1\nprot: 8080\n");
    assert!(
        msg.starts_with("wsp_server.cfg: unknown field `prot`"),
        "{msg}"
    );
    assert!(msg.contains("line 2"), "{msg}");
    let msg = error("blacklist:\n - url: x\n   uri: y\n");
    assert!(msg.starts_with("wsp_server.cfg: blacklist[0]: unknown field `uri`"));
}

#[test]
fn wrong_type_names_key() {
    let msg = error("port: eighty\n");
    assert!(msg.starts_with("wsp_server.cfg: port: "), "{msg}");
    let msg = error("port: 70000\n");
    assert!(msg.starts_with("wsp_server.cfg: port: "), "{msg}");
    let msg = error("whitelist:\n - method: GET\n - url: [a, b]\n");
    assert!(
        msg.starts_with("wsp_server.cfg: whitelist[1].url: "),
        "{msg}"
    );
}

#[test]
fn out_of_range_values_name_key() {
    let msg = error("timeout: 0\n");
    assert_eq!(msg, "wsp_server.cfg: timeout: must be greater than 0");
    let msg = error(&format!(
        "idletimeout: {}\n",
        crate::config::MAX_TIMEOUT_MS + 1
    ));
    assert!(msg.starts_with("wsp_server.cfg: idletimeout: must be at most"));
}

#[test]
fn bad_regex_names_file_and_rule() {
    let msg = error("blacklist:\n - url: ok\n - url: \"(\"\n");
    let want = "wsp_server.cfg: blacklist[1].url: invalid regex \"(\": ";
    assert!(msg.starts_with(want), "{msg}");
}

#[test]
fn flags_override_file() {
    let flags = ServerFlags {
        config: Some(EXAMPLE_PATH.to_string()),
        port: Some(9000),
        timeout: Some(250),
        secret_key: Some(Secret::new("other")),
        ..ServerFlags::default()
    };
    let config = ServerConfig::from_flags(&flags).map_err(|e| e.to_string());
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.host, "127.0.0.1");
    assert_eq!(config.port, 9000);
    assert_eq!(config.timeout, Duration::from_millis(250));
    assert_eq!(config.idle_timeout, Duration::from_millis(60_000));
    assert!(config.secret_key.matches("other"));
    assert!(!config.rules.is_empty());
}

#[test]
fn bad_flag_value_names_flag() {
    let flags = ServerFlags {
        timeout: Some(0),
        ..ServerFlags::default()
    };
    let msg = ServerConfig::from_flags(&flags)
        .err()
        .map(|e| e.to_string());
    let msg = msg.unwrap_or_default();
    assert_eq!(msg, "command line: --timeout: must be greater than 0");
}

#[test]
fn flags_parse_go_style() {
    let args = [
        "wsp_server",
        "-config=x.cfg",
        "-port",
        "9000",
        "-secret-key",
        "-k",
    ];
    let flags = crate::config::parse_flags::<ServerFlags>(args.map(String::from));
    let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
    assert_eq!(flags.config.as_deref(), Some("x.cfg"));
    assert_eq!(flags.port, Some(9000));
    assert_eq!(flags.log_level, "info");
    assert!(flags.secret_key.is_some_and(|k| k.matches("-k")));
    assert_eq!(format!("{:?}", flags.host), "None");
}
