//! The server's configuration: `wsp_server.cfg` keys, `wsp_server` flags, and the
//! validated [`ServerConfig`] that the server is built from.

use std::time::Duration;

use argh::FromArgs;
use serde::Deserialize;

use super::{millis, parse_yaml, read_file, ConfigError, Sources};
use crate::rules::{RawRule, RuleSet};
use crate::secret::Secret;

/// `wsp_server.cfg` as written: keys exactly as wsp's, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerConfig {
    /// Address to bind.
    pub host: Option<String>,
    /// Port to bind.
    pub port: Option<u16>,
    /// Ms to wait for an idle connection for a request.
    pub timeout: Option<u64>,
    /// Ms before an idle connection above the pool size is closed.
    pub idletimeout: Option<u64>,
    /// Key the clients must present on `/register`.
    pub secretkey: Option<Secret>,
    /// A request matching any of these is refused.
    pub blacklist: Option<Vec<RawRule>>,
    /// If not empty, a request must match one of these.
    pub whitelist: Option<Vec<RawRule>>,
}

/// wsp_server: public side of a reverse HTTP proxy over WebSocket
#[derive(Debug, FromArgs)]
#[argh(help_triggers("-h", "--help", "help"))]
pub struct ServerFlags {
    /// YAML configuration file (wsp_server.cfg); flags override its values
    #[argh(option)]
    pub config: Option<String>,
    /// address to bind (default 127.0.0.1)
    #[argh(option)]
    pub host: Option<String>,
    /// port to bind (default 8080)
    #[argh(option)]
    pub port: Option<u16>,
    /// key that clients must send in X-SECRET-KEY (default none)
    #[argh(option)]
    pub secret_key: Option<Secret>,
    /// ms to wait for an idle connection for a request (default 1000)
    #[argh(option)]
    pub timeout: Option<u64>,
    /// ms before an idle connection above the pool size is closed (default 60000)
    #[argh(option)]
    pub idle_timeout: Option<u64>,
    /// log level: error, warn, info, debug or trace (default info)
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,
}

/// No flag set: the values argh gives for an empty command line.
impl Default for ServerFlags {
    fn default() -> Self {
        ServerFlags {
            config: None,
            host: None,
            port: None,
            secret_key: None,
            timeout: None,
            idle_timeout: None,
            log_level: "info".to_string(),
        }
    }
}

/// The server's validated, immutable configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind. Default `127.0.0.1`.
    pub host: String,
    /// Port to bind (0: any free port). Default `8080`.
    pub port: u16,
    /// How long a request waits for an idle connection. Default 1000 ms; never 0.
    pub timeout: Duration,
    /// How long a connection above the pool size may stay idle. Default 60000 ms.
    pub idle_timeout: Duration,
    /// Longest wait for a client's answer to a relayed request: for its response head
    /// once the request is sent, and between two pieces of a body. Default 60000 ms.
    pub request_timeout: Duration,
    /// How often idle connections are pinged. Default 10000 ms.
    pub ping_interval: Duration,
    /// An idle connection that sent nothing (pongs included) for this long is dead.
    /// Default 20000 ms; at least `ping_interval`.
    pub ping_timeout: Duration,
    /// On SIGTERM, how long in-flight requests may take to finish. Default 30000 ms.
    pub shutdown_timeout: Duration,
    /// Key the clients must present. Default empty (clients must send none).
    pub secret_key: Secret,
    /// Compiled `blacklist` / `whitelist`. Default empty (everything allowed).
    pub rules: RuleSet,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_string(),
            port: 8080,
            timeout: Duration::from_millis(1000),
            idle_timeout: Duration::from_millis(60_000),
            request_timeout: Duration::from_millis(60_000),
            ping_interval: Duration::from_millis(10_000),
            ping_timeout: Duration::from_millis(20_000),
            shutdown_timeout: Duration::from_millis(30_000),
            secret_key: Secret::default(),
            rules: RuleSet::default(),
        }
    }
}

impl RawServerConfig {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// An unreadable or oversized file, bad YAML, an unknown key or a wrong type.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        parse_yaml(&read_file(path)?, path)
    }
}

impl ServerConfig {
    /// Builds the configuration from YAML text; `origin` (the file name) starts messages.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `origin` and the offending key.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw = parse_yaml(text, origin)?;
        Self::from_raw(raw, &Sources::new(origin))
    }

    /// Builds the configuration from the flags: defaults, then the `--config` file if
    /// given, then each flag that is set.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags(flags: &ServerFlags) -> Result<Self, ConfigError> {
        let (mut raw, mut sources) = match &flags.config {
            Some(path) => (RawServerConfig::load(path)?, Sources::new(path)),
            None => (RawServerConfig::default(), Sources::new("defaults")),
        };
        sources.apply(&mut raw.host, flags.host.as_ref(), ("host", "--host"));
        sources.apply(&mut raw.port, flags.port.as_ref(), ("port", "--port"));
        let timeout = flags.timeout.as_ref();
        sources.apply(&mut raw.timeout, timeout, ("timeout", "--timeout"));
        let idle = flags.idle_timeout.as_ref();
        sources.apply(
            &mut raw.idletimeout,
            idle,
            ("idletimeout", "--idle-timeout"),
        );
        let secret = flags.secret_key.as_ref();
        sources.apply(&mut raw.secretkey, secret, ("secretkey", "--secret-key"));
        Self::from_raw(raw, &sources)
    }

    fn from_raw(raw: RawServerConfig, sources: &Sources) -> Result<Self, ConfigError> {
        let defaults = ServerConfig::default();
        let timeout = match raw.timeout {
            Some(ms) => millis(sources, "timeout", ms, false)?,
            None => defaults.timeout,
        };
        let idle_timeout = match raw.idletimeout {
            Some(ms) => millis(sources, "idletimeout", ms, true)?,
            None => defaults.idle_timeout,
        };
        let blacklist = raw.blacklist.unwrap_or_default();
        let whitelist = raw.whitelist.unwrap_or_default();
        let rules = RuleSet::compile(&blacklist, &whitelist).map_err(|e| sources.rules(e))?;
        Ok(ServerConfig {
            host: raw.host.unwrap_or(defaults.host),
            port: raw.port.unwrap_or(defaults.port),
            timeout,
            idle_timeout,
            secret_key: raw.secretkey.unwrap_or_default(),
            rules,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;
    use crate::rules::Denied;

    const EXAMPLE: &str = include_str!("../../examples/wsp_server.cfg");
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
            super::super::MAX_TIMEOUT_MS + 1
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
        let flags = super::super::parse_flags::<ServerFlags>(args.map(String::from));
        let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
        assert_eq!(flags.config.as_deref(), Some("x.cfg"));
        assert_eq!(flags.port, Some(9000));
        assert_eq!(flags.log_level, "info");
        assert!(flags.secret_key.is_some_and(|k| k.matches("-k")));
        assert_eq!(format!("{:?}", flags.host), "None");
    }
}
