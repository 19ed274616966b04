//! Unit tests of the server configuration: keys, flags, precedence and messages.

use super::*;
use crate::config::testing::{uncomment_keys, TempFile, MISSING};
use crate::config::Environment;
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
    assert_eq!(
        rules.check("GET", google, &custom),
        Err(Denied::Forbidden(0))
    );
    assert_eq!(rules.check("GET", google, &Headers::new()), Ok(()));
    // The README's example against `make demo` (a JSON POST to the test API) passes.
    let mut json = Headers::new();
    json.insert("Content-Type".into(), vec!["application/json".into()]);
    let post = rules.check("POST", "http://127.0.0.1:8081/post", &json);
    assert_eq!(post, Ok(()));
    let put = rules.check("PUT", "http://api/", &Headers::new());
    assert_eq!(put, Err(Denied::NotAllowed));
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
    assert_eq!(flags.log_level, None);
    assert!(flags.secret_key.is_some_and(|k| k.matches("-k")));
    assert_eq!(format!("{:?}", flags.host), "None");
}

/// The configuration from `flags` and a `WSP_SECRET_KEY` of `env`, or the error message.
fn from_flags(flags: &ServerFlags, env: Option<&str>) -> Result<ServerConfig, String> {
    let env = Environment {
        secret_key: env.map(Into::into),
        ..Environment::default()
    };
    ServerConfig::from_flags_in(flags, &env).map_err(|e| e.to_string())
}

fn flags_error(flags: &ServerFlags) -> String {
    from_flags(flags, None).err().unwrap_or_default()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn time_keys_default_when_unset() {
    let config = load("");
    assert_eq!(config.request_timeout, ms(60_000));
    assert_eq!(config.ping_interval, ms(10_000));
    assert_eq!(config.ping_timeout, ms(20_000));
    assert_eq!(config.shutdown_timeout, ms(30_000));
    // The example file only shows them commented out, with their defaults.
    let example = load(EXAMPLE);
    assert_eq!(example.request_timeout, config.request_timeout);
    assert_eq!(example.ping_interval, config.ping_interval);
    assert_eq!(example.ping_timeout, config.ping_timeout);
    assert_eq!(example.shutdown_timeout, config.shutdown_timeout);
}

#[test]
fn time_keys_are_read_from_yaml() {
    let text = "requesttimeout: 1500\npinginterval: 200\npingtimeout: 200\nshutdowntimeout: 0\n";
    let config = load(text);
    assert_eq!(config.request_timeout, ms(1500));
    assert_eq!(config.ping_interval, ms(200));
    assert_eq!(config.ping_timeout, ms(200));
    assert_eq!(config.shutdown_timeout, ms(0));
    let max = crate::config::MAX_TIMEOUT_MS;
    let config = load(&format!("pingtimeout: {max}\nshutdowntimeout: {max}\n"));
    assert_eq!(config.ping_timeout, ms(max));
    assert_eq!(config.shutdown_timeout, ms(max));
}

#[test]
fn bad_time_keys_name_the_key() {
    let max = crate::config::MAX_TIMEOUT_MS;
    let over = max + 1;
    let cases = [
        (
            "requesttimeout: 0\n".to_string(),
            "wsp_server.cfg: requesttimeout: must be greater than 0".to_string(),
        ),
        (
            "pinginterval: 0\n".into(),
            "wsp_server.cfg: pinginterval: must be greater than 0".into(),
        ),
        (
            "pingtimeout: 0\n".into(),
            "wsp_server.cfg: pingtimeout: must be greater than 0".into(),
        ),
        (
            format!("requesttimeout: {over}\n"),
            format!("wsp_server.cfg: requesttimeout: must be at most {max} ms"),
        ),
        (
            format!("pinginterval: {over}\n"),
            format!("wsp_server.cfg: pinginterval: must be at most {max} ms"),
        ),
        (
            format!("shutdowntimeout: {over}\n"),
            format!("wsp_server.cfg: shutdowntimeout: must be at most {max} ms"),
        ),
        (
            "pingtimeout: 5000\n".into(),
            "wsp_server.cfg: pingtimeout: must be at least pinginterval (10000 ms)".into(),
        ),
        (
            "pinginterval: 30000\n".into(),
            "wsp_server.cfg: pingtimeout: must be at least pinginterval (30000 ms)".into(),
        ),
        (
            "pinginterval: 500\npingtimeout: 499\n".into(),
            "wsp_server.cfg: pingtimeout: must be at least pinginterval (500 ms)".into(),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(&text), want, "{text:?}");
    }
    let msg = error("requesttimeout: -1\n");
    assert!(msg.starts_with("wsp_server.cfg: requesttimeout: "), "{msg}");
    let msg = error("shutdowntimeout: soon\n");
    assert!(
        msg.starts_with("wsp_server.cfg: shutdowntimeout: "),
        "{msg}"
    );
}

#[test]
fn time_flags_override_the_file() {
    let file = TempFile::new(
        "wsp_server.cfg",
        "requesttimeout: 1000\npinginterval: 1000\npingtimeout: 2000\nshutdowntimeout: 5\n",
    );
    let from_file = ServerFlags {
        config: Some(file.path().to_string()),
        ..ServerFlags::default()
    };
    let config = from_flags(&from_file, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.request_timeout, ms(1000));
    assert_eq!(config.ping_interval, ms(1000));
    assert_eq!(config.ping_timeout, ms(2000));
    assert_eq!(config.shutdown_timeout, ms(5));
    let flags = ServerFlags {
        request_timeout: Some(7000),
        ping_interval: Some(1500),
        ping_timeout: Some(1500),
        shutdown_timeout: Some(0),
        ..from_file
    };
    let config = from_flags(&flags, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.request_timeout, ms(7000));
    assert_eq!(config.ping_interval, ms(1500));
    assert_eq!(config.ping_timeout, ms(1500));
    assert_eq!(config.shutdown_timeout, ms(0));
}

#[test]
fn bad_time_flags_name_the_flag() {
    let over = crate::config::MAX_TIMEOUT_MS + 1;
    let cases = [
        (
            ServerFlags {
                request_timeout: Some(0),
                ..ServerFlags::default()
            },
            "command line: --request-timeout: must be greater than 0".to_string(),
        ),
        (
            ServerFlags {
                ping_interval: Some(0),
                ..ServerFlags::default()
            },
            "command line: --ping-interval: must be greater than 0".into(),
        ),
        (
            ServerFlags {
                ping_timeout: Some(0),
                ..ServerFlags::default()
            },
            "command line: --ping-timeout: must be greater than 0".into(),
        ),
        (
            ServerFlags {
                shutdown_timeout: Some(over),
                ..ServerFlags::default()
            },
            "command line: --shutdown-timeout: must be at most 604800000 ms".into(),
        ),
        (
            ServerFlags {
                ping_timeout: Some(5000),
                ..ServerFlags::default()
            },
            "command line: --ping-timeout: must be at least pinginterval (10000 ms)".into(),
        ),
        (
            ServerFlags {
                ping_interval: Some(30_000),
                ..ServerFlags::default()
            },
            "command line: --ping-interval: must be at most pingtimeout (20000 ms)".into(),
        ),
        (
            ServerFlags {
                ping_interval: Some(300),
                ping_timeout: Some(200),
                ..ServerFlags::default()
            },
            "command line: --ping-timeout: must be at least --ping-interval (300 ms)".into(),
        ),
    ];
    for (flags, want) in cases {
        assert_eq!(flags_error(&flags), want, "{flags:?}");
    }
}

#[test]
fn new_flags_parse_kebab_and_go_style() {
    let args = [
        "wsp_server",
        "--request-timeout",
        "1",
        "-ping-interval=2",
        "-ping-timeout",
        "3",
        "--shutdown-timeout=0",
        "-secret-key-file",
        "/run/secrets/wsp",
    ];
    let flags = crate::config::parse_flags::<ServerFlags>(args.map(String::from));
    let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
    assert_eq!(flags.request_timeout, Some(1));
    assert_eq!(flags.ping_interval, Some(2));
    assert_eq!(flags.ping_timeout, Some(3));
    assert_eq!(flags.shutdown_timeout, Some(0));
    assert_eq!(flags.secret_key_file.as_deref(), Some("/run/secrets/wsp"));
    let bad = ["wsp_server", "--ping-timeout", "-1"].map(String::from);
    assert!(crate::config::parse_flags::<ServerFlags>(bad).is_err());
}

#[test]
fn secret_key_comes_from_file_env_or_flag_in_order() {
    let yaml_key = TempFile::new("yaml.key", "from-yaml-file\n");
    let flag_key = TempFile::new("flag.key", "from-flag-file\r\n");
    let with_file =
        |key_line: String| TempFile::new("wsp_server.cfg", format!("port: 0\n{key_line}\n"));
    let yaml = with_file("secretkey: from-yaml".into());
    let yaml_file = with_file(format!("secretkeyfile: {}", yaml_key.path()));
    let key = |flags: &ServerFlags, env: Option<&str>| {
        let config = from_flags(flags, env).unwrap_or_else(|e| panic!("{e}"));
        config.secret_key.expose().to_string()
    };
    let file_flags = |file: &TempFile| ServerFlags {
        config: Some(file.path().to_string()),
        ..ServerFlags::default()
    };
    assert_eq!(key(&file_flags(&yaml), None), "from-yaml");
    assert_eq!(key(&file_flags(&yaml_file), None), "from-yaml-file");
    assert_eq!(key(&file_flags(&yaml_file), Some("")), "from-yaml-file");
    assert_eq!(key(&file_flags(&yaml_file), Some("from-env")), "from-env");
    let flag_file = ServerFlags {
        secret_key_file: Some(flag_key.path().to_string()),
        ..file_flags(&yaml_file)
    };
    assert_eq!(key(&flag_file, Some("from-env")), "from-flag-file");
    let flag = ServerFlags {
        secret_key: Some(Secret::new("from-flag")),
        ..file_flags(&yaml)
    };
    assert_eq!(key(&flag, Some("from-env")), "from-flag");
    let from_yaml_text = load(&format!("secretkeyfile: {}\n", yaml_key.path()));
    assert!(from_yaml_text.secret_key.matches("from-yaml-file"));
}

#[test]
fn secret_key_conflicts_and_bad_files_are_refused() {
    let flags = ServerFlags {
        secret_key: Some(Secret::new("a")),
        secret_key_file: Some("/run/secrets/wsp".into()),
        ..ServerFlags::default()
    };
    let want = "command line: --secret-key-file: give either --secret-key or \
                --secret-key-file, not both";
    assert_eq!(flags_error(&flags), want);
    let msg = error("secretkey: a\nsecretkeyfile: /run/secrets/wsp\n");
    let want = "wsp_server.cfg: secretkeyfile: give either secretkey or secretkeyfile, not both";
    assert_eq!(msg, want);
    let missing = ServerFlags {
        secret_key_file: Some(MISSING.into()),
        ..ServerFlags::default()
    };
    let msg = flags_error(&missing);
    let want = format!("command line: --secret-key-file: cannot read {MISSING}: ");
    assert!(msg.starts_with(&want), "{msg}");
    let empty = TempFile::new("empty.key", "\n");
    let msg = error(&format!("secretkeyfile: {}\n", empty.path()));
    let want = format!("wsp_server.cfg: secretkeyfile: {}: empty", empty.path());
    assert!(msg.starts_with(&want), "{msg}");
}

#[test]
fn secret_key_never_printed() {
    let key = TempFile::new("wsp.key", "hunter2\n");
    let flags = ServerFlags {
        secret_key_file: Some(key.path().to_string()),
        ..ServerFlags::default()
    };
    let config = from_flags(&flags, Some("hunter3")).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.secret_key.matches("hunter2"));
    let printed = format!("{config:?} {flags:?}");
    assert!(!printed.contains("hunter"), "{printed}");
    let flags = ServerFlags {
        secret_key: Some(Secret::new("hunter2")),
        ..ServerFlags::default()
    };
    assert!(!format!("{flags:?}").contains("hunter"));
}

#[test]
fn commented_keys_in_the_example_are_the_defaults() {
    let (text, keys) = uncomment_keys(EXAMPLE, "secretkeyfile");
    assert_eq!(
        keys,
        [
            "requesttimeout",
            "pinginterval",
            "pingtimeout",
            "shutdowntimeout",
            "streamidletimeout",
            "busystatus",
            "loglevel"
        ]
    );
    let live = load(&text);
    let defaults = ServerConfig::default();
    assert_eq!(live.busy_status, defaults.busy_status);
    assert_eq!(live.request_timeout, defaults.request_timeout);
    assert_eq!(live.ping_interval, defaults.ping_interval);
    assert_eq!(live.ping_timeout, defaults.ping_timeout);
    assert_eq!(live.shutdown_timeout, defaults.shutdown_timeout);
    assert_eq!(live.stream_idle_timeout, defaults.stream_idle_timeout);
    assert_eq!(live.log_level, defaults.log_level);
}

#[test]
fn log_level_comes_from_the_file_or_the_flag() {
    assert_eq!(load("").log_level, log::LevelFilter::Info);
    assert_eq!(
        load("loglevel : debug\n").log_level,
        log::LevelFilter::Debug
    );
    assert_eq!(
        error("loglevel : loud\n"),
        "wsp_server.cfg: loglevel: \"loud\": use error, warn, info, debug, trace or off"
    );
    let file = TempFile::new("wsp_server.cfg", "loglevel : debug\n");
    let flags = ServerFlags {
        config: Some(file.path().to_string()),
        log_level: Some("warn".into()),
        ..ServerFlags::default()
    };
    let config = ServerConfig::from_flags_in(&flags, &Environment::default());
    assert_eq!(
        config.map(|c| c.log_level).ok(),
        Some(log::LevelFilter::Warn)
    );
}

#[test]
fn max_connections_is_at_least_one_and_the_flag_wins() {
    assert_eq!(
        load("").max_connections,
        None,
        "drawn from the fd limit at start"
    );
    assert_eq!(load("maxconnections: 500\n").max_connections, Some(500));
    assert_eq!(
        error("maxconnections: 0\n"),
        "wsp_server.cfg: maxconnections: 0: must be at least 1"
    );
    let flags = ServerFlags {
        max_connections: Some(7),
        ..ServerFlags::default()
    };
    let config = ServerConfig::from_flags_in(&flags, &Environment::default()).unwrap();
    assert_eq!(config.max_connections, Some(7));
}

#[test]
fn busy_status_is_526_or_503() {
    assert_eq!(load("").busy_status, 526);
    assert_eq!(load("busystatus: 503\n").busy_status, 503);
    assert_eq!(
        error("busystatus: 500\n"),
        "wsp_server.cfg: busystatus: 500: must be 503 or 526"
    );
    let flags = ServerFlags {
        busy_status: Some(503),
        ..ServerFlags::default()
    };
    let config = ServerConfig::from_flags_in(&flags, &Environment::default());
    assert_eq!(config.map(|c| c.busy_status).ok(), Some(503));
}

#[test]
fn tls_files_load_from_keys_and_flags() {
    assert_eq!(load("").tls, None);
    let config = load("certfile : /etc/wsp/cert.pem\nkeyfile : /etc/wsp/key.pem\n");
    let expected = TlsFiles {
        cert_file: "/etc/wsp/cert.pem".into(),
        key_file: "/etc/wsp/key.pem".into(),
    };
    assert_eq!(config.tls, Some(expected));
    let flags = ServerFlags {
        cert_file: Some("cert.pem".into()),
        key_file: Some("key.pem".into()),
        ..ServerFlags::default()
    };
    let config = ServerConfig::from_flags_in(&flags, &Environment::default()).expect("flags");
    let files = config.tls.expect("TLS files");
    assert_eq!(
        (files.cert_file.as_str(), files.key_file.as_str()),
        ("cert.pem", "key.pem")
    );
}

#[test]
fn tls_files_come_both_or_neither() {
    assert_eq!(
        error("certfile : cert.pem\n"),
        "wsp_server.cfg: certfile: keyfile (--key-file) is missing: give both or neither"
    );
    assert_eq!(
        error("keyfile : key.pem\n"),
        "wsp_server.cfg: keyfile: certfile (--cert-file) is missing: give both or neither"
    );
    let flags = ServerFlags {
        key_file: Some("key.pem".into()),
        ..ServerFlags::default()
    };
    let msg = ServerConfig::from_flags_in(&flags, &Environment::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "command line: --key-file: certfile (--cert-file) is missing: give both or neither"
    );
}

#[test]
fn the_console_is_off_by_default_and_its_keys_are_checked() {
    assert!(load("").console.is_none(), "no console without admin");
    let console = load("admin: 127.0.0.1:8090\n").console.expect("console");
    assert_eq!(console.addr, "127.0.0.1:8090");
    assert_eq!((console.capture, console.body_limit), (1000, None));
    assert!(console.token.is_none());
    let text =
        "admin: 127.0.0.1:0\ncapture: 5\ninspect: true\ninspectbodylimit: 10\nadmintoken: t\n";
    let console = load(text).console.expect("console");
    assert_eq!((console.capture, console.body_limit), (5, Some(10)));
    assert!(console.token.is_some_and(|t| t.matches("t")));
    for (bad, names) in [
        ("admin: 127.0.0.1:0\ncapture: 0\n", "capture"),
        ("admin: 127.0.0.1:0\ncapture: 100001\n", "capture"),
        (
            "admin: 127.0.0.1:0\ninspectbodylimit: 16777217\n",
            "inspectbodylimit",
        ),
        ("admin: \"\"\n", "admin"),
        ("admintoken: a\nadmintokenfile: /x\n", "admintokenfile"),
    ] {
        let msg = error(bad);
        assert!(msg.contains(names), "{bad:?}: {msg}");
    }
}

#[test]
fn the_admin_token_comes_from_the_flag_file_then_the_environment() {
    let file = TempFile::new("admin.token", "from-file\n");
    let flags = ServerFlags {
        admin: Some("127.0.0.1:0".into()),
        admin_token_file: Some(file.path().to_string()),
        inspect: true,
        ..ServerFlags::default()
    };
    let mut vars = std::collections::BTreeMap::new();
    vars.insert(ADMIN_TOKEN_ENV.to_string(), "from-env".into());
    let env = Environment {
        vars,
        ..Environment::default()
    };
    let config = ServerConfig::from_flags_in(&flags, &env).unwrap_or_else(|e| panic!("{e}"));
    let console = config.console.expect("console");
    assert!(console
        .token
        .as_ref()
        .is_some_and(|t| t.matches("from-file")));
    assert_eq!(console.body_limit, Some(64 * 1024));
    let flags = ServerFlags {
        admin_token_file: None,
        ..flags
    };
    let config = ServerConfig::from_flags_in(&flags, &env).unwrap_or_else(|e| panic!("{e}"));
    let token = config.console.and_then(|c| c.token);
    assert!(token.is_some_and(|t| t.matches("from-env")));
}

#[test]
fn caller_rates_and_the_inflight_cap_are_off_by_default_and_checked() {
    let config = load("");
    assert_eq!(
        (config.caller_rate, config.client_max_inflight),
        (None, None)
    );
    let config = load("callerrate: 2.5\nclientmaxinflight: 4\n");
    assert_eq!(
        config.caller_rate,
        Some((2.5, 3)),
        "burst: the rate rounded up"
    );
    assert_eq!(config.client_max_inflight, Some(4));
    assert_eq!(
        load("callerrate: 10\ncallerburst: 50\n").caller_rate,
        Some((10.0, 50))
    );
    assert_eq!(
        load("callerrate: 0\nclientmaxinflight: 0\n").caller_rate,
        None
    );
    assert!(error("callerrate: -1\n").contains("callerrate"));
    assert!(error("callerrate: 1\ncallerburst: 0\n").contains("callerburst"));
}
