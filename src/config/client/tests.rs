//! Unit tests of the client configuration: keys, flags, precedence and messages.

use super::*;
use crate::config::testing::{uncomment_keys, TempFile, MISSING};
use crate::config::Environment;
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

/// The error from `flags` with no `WSP_SECRET_KEY`, or an empty string.
fn flags_error(flags: &ClientFlags) -> String {
    from_flags(flags, None).err().unwrap_or_default()
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
    assert_eq!(admin, Err(Denied::Forbidden(0)));
    let outside = rules.check("GET", "http://example.com/", &none);
    assert_eq!(outside, Err(Denied::NotAllowed));
    // The README's example against `make demo`: a JSON POST to the test API passes, the
    // same POST with another body type does not.
    let post = "http://127.0.0.1:8081/post";
    let typed = |value: &str| Headers::from([("Content-Type".into(), vec![value.into()])]);
    let json = rules.check("POST", post, &typed("application/json"));
    assert_eq!(json, Ok(()));
    let text = rules.check("POST", post, &typed("text/plain"));
    assert_eq!(text, Err(Denied::NotAllowed));
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
    let long_id = format!("id: {}\n", "a".repeat(MAX_ID_LEN + 1));
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
    assert_eq!(flags.log_level, None);
}

/// The configuration from `flags` and a `WSP_SECRET_KEY` of `env`, or the error message.
fn from_flags(flags: &ClientFlags, env: Option<&str>) -> Result<ClientConfig, String> {
    let env = Environment {
        secret_key: env.map(Into::into),
        ..Environment::default()
    };
    ClientConfig::from_flags_in(flags, &env).map_err(|e| e.to_string())
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn time_keys_default_when_unset() {
    let config = load("");
    assert_eq!(config.request_timeout, ms(50_000));
    assert_eq!(config.reconnect_delay, ms(100));
    assert_eq!(config.reconnect_max_delay, ms(1000));
    assert_eq!(config.ping_interval, ms(30_000));
    assert_eq!(config.ping_timeout, ms(60_000));
    assert_eq!(config.shutdown_timeout, ms(30_000));
    // The example file only shows them commented out, with their defaults.
    let example = load(EXAMPLE);
    assert_eq!(example.request_timeout, config.request_timeout);
    assert_eq!(example.reconnect_delay, config.reconnect_delay);
    assert_eq!(example.reconnect_max_delay, config.reconnect_max_delay);
    assert_eq!(example.ping_interval, config.ping_interval);
    assert_eq!(example.ping_timeout, config.ping_timeout);
    assert_eq!(example.shutdown_timeout, config.shutdown_timeout);
}

#[test]
fn time_keys_are_read_from_yaml() {
    let text = "requesttimeout: 1500\nreconnectdelay: 20\nreconnectmaxdelay: 20\n\
                pinginterval: 300\npingtimeout: 900\nshutdowntimeout: 0\n";
    let config = load(text);
    assert_eq!(config.request_timeout, ms(1500));
    assert_eq!(config.reconnect_delay, ms(20));
    assert_eq!(config.reconnect_max_delay, ms(20));
    assert_eq!(config.ping_interval, ms(300));
    assert_eq!(config.ping_timeout, ms(900));
    assert_eq!(config.shutdown_timeout, ms(0));
}

#[test]
fn bad_time_keys_name_the_key() {
    let max = crate::config::MAX_TIMEOUT_MS;
    let over = max + 1;
    let cases = [
        (
            "requesttimeout: 0\n".to_string(),
            "requesttimeout: must be greater than 0".to_string(),
        ),
        (
            "reconnectdelay: 0\n".into(),
            "reconnectdelay: must be greater than 0".into(),
        ),
        (
            "reconnectmaxdelay: 0\n".into(),
            "reconnectmaxdelay: must be greater than 0".into(),
        ),
        (
            "pinginterval: 0\n".into(),
            "pinginterval: must be greater than 0".into(),
        ),
        (
            "pingtimeout: 0\n".into(),
            "pingtimeout: must be greater than 0".into(),
        ),
        (
            format!("requesttimeout: {over}\n"),
            format!("requesttimeout: must be at most {max} ms"),
        ),
        (
            format!("reconnectmaxdelay: {over}\n"),
            format!("reconnectmaxdelay: must be at most {max} ms"),
        ),
        (
            format!("shutdowntimeout: {over}\n"),
            format!("shutdowntimeout: must be at most {max} ms"),
        ),
        (
            "reconnectmaxdelay: 50\n".into(),
            "reconnectmaxdelay: must be at least reconnectdelay (100 ms)".into(),
        ),
        (
            "reconnectdelay: 5000\n".into(),
            "reconnectmaxdelay: must be at least reconnectdelay (5000 ms)".into(),
        ),
        (
            "pingtimeout: 1000\n".into(),
            "pingtimeout: must be at least pinginterval (30000 ms)".into(),
        ),
        (
            "pinginterval: 90000\n".into(),
            "pingtimeout: must be at least pinginterval (90000 ms)".into(),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(&text), format!("wsp_client.cfg: {want}"), "{text:?}");
    }
    let msg = error("reconnectdelay: fast\n");
    assert!(msg.starts_with("wsp_client.cfg: reconnectdelay: "), "{msg}");
}

#[test]
fn time_flags_override_the_file() {
    let file = TempFile::new(
        "wsp_client.cfg",
        "requesttimeout: 1\nreconnectdelay: 2\nreconnectmaxdelay: 3\n\
         pinginterval: 4\npingtimeout: 5\nshutdowntimeout: 6\n",
    );
    let from_file = ClientFlags {
        config: Some(file.path().to_string()),
        ..ClientFlags::default()
    };
    let config = from_flags(&from_file, None).unwrap_or_else(|e| panic!("{e}"));
    let durations = |c: &ClientConfig| {
        [
            c.request_timeout,
            c.reconnect_delay,
            c.reconnect_max_delay,
            c.ping_interval,
            c.ping_timeout,
            c.shutdown_timeout,
        ]
    };
    assert_eq!(durations(&config), [1, 2, 3, 4, 5, 6].map(ms));
    let flags = ClientFlags {
        request_timeout: Some(10),
        reconnect_delay: Some(20),
        reconnect_max_delay: Some(30),
        ping_interval: Some(40),
        ping_timeout: Some(50),
        shutdown_timeout: Some(0),
        ..from_file
    };
    let config = from_flags(&flags, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(durations(&config), [10, 20, 30, 40, 50, 0].map(ms));
}

#[test]
fn bad_time_flags_name_the_flag() {
    let none = ClientFlags::default;
    let cases = [
        (
            ClientFlags {
                request_timeout: Some(0),
                ..none()
            },
            "--request-timeout: must be greater than 0",
        ),
        (
            ClientFlags {
                reconnect_delay: Some(0),
                ..none()
            },
            "--reconnect-delay: must be greater than 0",
        ),
        (
            ClientFlags {
                ping_interval: Some(0),
                ..none()
            },
            "--ping-interval: must be greater than 0",
        ),
        (
            ClientFlags {
                shutdown_timeout: Some(crate::config::MAX_TIMEOUT_MS + 1),
                ..none()
            },
            "--shutdown-timeout: must be at most 604800000 ms",
        ),
        (
            ClientFlags {
                reconnect_max_delay: Some(99),
                ..none()
            },
            "--reconnect-max-delay: must be at least reconnectdelay (100 ms)",
        ),
        (
            ClientFlags {
                reconnect_delay: Some(2000),
                ..none()
            },
            "--reconnect-delay: must be at most reconnectmaxdelay (1000 ms)",
        ),
        (
            ClientFlags {
                reconnect_delay: Some(2000),
                reconnect_max_delay: Some(1500),
                ..none()
            },
            "--reconnect-max-delay: must be at least --reconnect-delay (2000 ms)",
        ),
        (
            ClientFlags {
                ping_timeout: Some(1000),
                ..none()
            },
            "--ping-timeout: must be at least pinginterval (30000 ms)",
        ),
        (
            ClientFlags {
                ping_interval: Some(61_000),
                ..none()
            },
            "--ping-interval: must be at most pingtimeout (60000 ms)",
        ),
    ];
    for (flags, want) in cases {
        assert_eq!(
            flags_error(&flags),
            format!("command line: {want}"),
            "{flags:?}"
        );
    }
}

#[test]
fn new_flags_parse_kebab_and_go_style() {
    let args = [
        "wsp_client",
        "--request-timeout",
        "1",
        "-reconnect-delay=2",
        "-reconnect-max-delay",
        "3",
        "--ping-interval=4",
        "--ping-timeout",
        "5",
        "-shutdown-timeout",
        "0",
        "--secret-key-file",
        "/run/secrets/wsp",
    ];
    let flags = crate::config::parse_flags::<ClientFlags>(args.map(String::from));
    let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
    assert_eq!(flags.request_timeout, Some(1));
    assert_eq!(flags.reconnect_delay, Some(2));
    assert_eq!(flags.reconnect_max_delay, Some(3));
    assert_eq!(flags.ping_interval, Some(4));
    assert_eq!(flags.ping_timeout, Some(5));
    assert_eq!(flags.shutdown_timeout, Some(0));
    assert_eq!(flags.secret_key_file.as_deref(), Some("/run/secrets/wsp"));
}

#[test]
fn secret_key_comes_from_file_env_or_flag_in_order() {
    let yaml_key = TempFile::new("yaml.key", "from-yaml-file\r\n");
    let flag_key = TempFile::new("flag.key", "from-flag-file\n");
    let yaml = TempFile::new("wsp_client.cfg", "secretkey: from-yaml\n");
    let yaml_file = format!("secretkeyfile: {}\n", yaml_key.path());
    let yaml_file = TempFile::new("wsp_client.cfg", yaml_file);
    let key = |flags: &ClientFlags, env: Option<&str>| {
        let config = from_flags(flags, env).unwrap_or_else(|e| panic!("{e}"));
        config.secret_key.expose().to_string()
    };
    let file_flags = |file: &TempFile| ClientFlags {
        config: Some(file.path().to_string()),
        ..ClientFlags::default()
    };
    assert_eq!(key(&file_flags(&yaml), None), "from-yaml");
    assert_eq!(key(&file_flags(&yaml), Some("")), "from-yaml");
    assert_eq!(key(&file_flags(&yaml_file), None), "from-yaml-file");
    assert_eq!(key(&file_flags(&yaml_file), Some("from-env")), "from-env");
    assert_eq!(key(&ClientFlags::default(), Some("from-env")), "from-env");
    let flag_file = ClientFlags {
        secret_key_file: Some(flag_key.path().to_string()),
        ..file_flags(&yaml)
    };
    assert_eq!(key(&flag_file, Some("from-env")), "from-flag-file");
    let flag = ClientFlags {
        secret_key: Some(Secret::new("from-flag")),
        ..file_flags(&yaml_file)
    };
    assert_eq!(key(&flag, Some("from-env")), "from-flag");
}

#[test]
fn secret_key_conflicts_and_bad_files_are_refused() {
    let flags = ClientFlags {
        secret_key: Some(Secret::new("a")),
        secret_key_file: Some(MISSING.into()),
        ..ClientFlags::default()
    };
    let want = "command line: --secret-key-file: give either --secret-key or \
                --secret-key-file, not both";
    assert_eq!(flags_error(&flags), want);
    let msg = error("secretkeyfile: /run/secrets/wsp\nsecretkey: a\n");
    let want = "wsp_client.cfg: secretkeyfile: give either secretkey or secretkeyfile, not both";
    assert_eq!(msg, want);
    let msg = error(&format!("secretkeyfile: {MISSING}\n"));
    let want = format!("wsp_client.cfg: secretkeyfile: cannot read {MISSING}: ");
    assert!(msg.starts_with(&want), "{msg}");
    let empty = TempFile::new("empty.key", "\r\n");
    let flags = ClientFlags {
        secret_key_file: Some(empty.path().to_string()),
        ..ClientFlags::default()
    };
    let msg = flags_error(&flags);
    let want = format!("command line: --secret-key-file: {}: empty", empty.path());
    assert!(msg.starts_with(&want), "{msg}");
}

#[test]
fn secret_key_never_printed() {
    let key = TempFile::new("wsp.key", "hunter2\n");
    let flags = ClientFlags {
        secret_key_file: Some(key.path().to_string()),
        ..ClientFlags::default()
    };
    let config = from_flags(&flags, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.secret_key.expose(), "hunter2");
    let config = from_flags(&ClientFlags::default(), Some("hunter3"));
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.secret_key.expose(), "hunter3");
    let printed = format!("{config:?} {flags:?}");
    assert!(!printed.contains("hunter"), "{printed}");
}

#[test]
fn commented_keys_in_the_example_are_the_defaults() {
    let (text, keys) = uncomment_keys(EXAMPLE, "secretkeyfile");
    assert_eq!(
        keys,
        [
            "requesttimeout",
            "reconnectdelay",
            "reconnectmaxdelay",
            "pinginterval",
            "pingtimeout",
            "shutdowntimeout",
            "resolveinterval",
            "loglevel",
            "maxstreams",
            "streamidletimeout"
        ]
    );
    let live = load(&text);
    let defaults = ClientConfig::default();
    assert_eq!(live.max_streams, defaults.max_streams);
    assert_eq!(live.stream_idle_timeout, defaults.stream_idle_timeout);
    assert_eq!(live.request_timeout, defaults.request_timeout);
    assert_eq!(live.reconnect_delay, defaults.reconnect_delay);
    assert_eq!(live.reconnect_max_delay, defaults.reconnect_max_delay);
    assert_eq!(live.ping_interval, defaults.ping_interval);
    assert_eq!(live.ping_timeout, defaults.ping_timeout);
    assert_eq!(live.shutdown_timeout, defaults.shutdown_timeout);
    assert_eq!(live.resolve_interval, defaults.resolve_interval);
    assert_eq!(live.log_level, defaults.log_level);
}

#[test]
fn resolve_interval_and_log_level_load_and_are_checked() {
    let config = load("resolveinterval : 500\nloglevel : trace\n");
    assert_eq!(config.resolve_interval, ms(500));
    assert_eq!(config.log_level, log::LevelFilter::Trace);
    assert_eq!(
        error("resolveinterval : 0\n"),
        "wsp_client.cfg: resolveinterval: must be greater than 0"
    );
    assert_eq!(
        error("loglevel : 3\n"),
        "wsp_client.cfg: loglevel: \"3\": use error, warn, info, debug, trace or off"
    );
    let flags = ClientFlags {
        resolve_interval: Some(0),
        ..ClientFlags::default()
    };
    assert_eq!(
        flags_error(&flags),
        "command line: --resolve-interval: must be greater than 0"
    );
}

#[test]
fn tls_keys_load_and_flags_set_them() {
    let config = load("cafile : /etc/wsp/ca.pem\ninsecure : true\n");
    assert_eq!(config.ca_file.as_deref(), Some("/etc/wsp/ca.pem"));
    assert!(config.insecure);
    let defaults = load("");
    assert_eq!((defaults.ca_file, defaults.insecure), (None, false));
    let flags = ClientFlags {
        ca_file: Some("ca.pem".to_string()),
        insecure: true,
        ..ClientFlags::default()
    };
    let config = from_flags(&flags, None).expect("flags");
    assert_eq!(
        (config.ca_file.as_deref(), config.insecure),
        (Some("ca.pem"), true)
    );
}

#[test]
fn connect_rules_match_the_whole_destination() {
    let config =
        load("connect:\n - \"db\\\\.internal:5432\"\n - \"10\\\\.0\\\\.0\\\\.5:(443|9000)\"\n");
    let allowed = |target: &str| config.connect.iter().any(|r| r.is_match(target));
    for ok in ["db.internal:5432", "10.0.0.5:443", "10.0.0.5:9000"] {
        assert!(allowed(ok), "{ok}");
    }
    for refused in [
        "db.internal:54320",
        "xdb.internal:5432",
        "db.internal:5432.evil.com:1",
        "10.0.0.5:4430",
        "110.0.0.5:443",
    ] {
        assert!(!allowed(refused), "{refused}");
    }
    assert!(load("").connect.is_empty(), "nothing is allowed by default");
    let msg = error("connect:\n - \"(\"\n");
    assert!(
        msg.starts_with("wsp_client.cfg: connect: \"(\" is not a regex"),
        "{msg}"
    );
    let msg = error("maxstreams: 0\n");
    assert!(
        msg.contains("maxstreams") && msg.contains("at least 1"),
        "{msg}"
    );
}

#[test]
fn allow_connect_flags_replace_the_file_list() {
    let flags = ClientFlags {
        allow_connect: vec![r"a:1".into(), r"b:\d+".into()],
        max_streams: Some(3),
        stream_idle_timeout: Some(250),
        ..ClientFlags::default()
    };
    let config = ClientConfig::from_flags(&flags).map_err(|e| e.to_string());
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.connect.len(), 2);
    assert!(config.connect[1].is_match("b:22"));
    assert_eq!(config.max_streams, 3);
    assert_eq!(config.stream_idle_timeout, Duration::from_millis(250));
}
