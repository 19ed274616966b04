//! The client's configuration: `wsp_client.cfg` keys, `wsp_client` flags, and the
//! validated [`ClientConfig`] that the client is built from.

use std::time::Duration;

use argh::FromArgs;
use serde::Deserialize;
use url::Url;

use super::{parse_yaml, read_file, ConfigError, Sources};
use crate::rules::{RawRule, RuleSet};
use crate::secret::Secret;

/// Longest client `id` accepted, in bytes (it travels in every greeting).
pub const MAX_ID_BYTES: usize = 256;

/// Largest `poolidlesize` accepted: idle connections kept open per target.
pub const MAX_POOL_IDLE_SIZE: usize = 10_000;

/// Most `targets` accepted: each one gets its own pool of connections.
pub const MAX_TARGETS: usize = 64;

/// `wsp_client.cfg` as written: keys exactly as wsp's, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientConfig {
    /// Name of this client on the servers.
    pub id: Option<String>,
    /// Servers' `/register` URLs (`ws://` or `wss://`).
    pub targets: Option<Vec<String>>,
    /// Idle connections to keep per target.
    pub poolidlesize: Option<usize>,
    /// Most connections per target.
    pub poolmaxsize: Option<usize>,
    /// Key sent in `X-SECRET-KEY`.
    pub secretkey: Option<Secret>,
    /// A request matching any of these is refused (527).
    pub blacklist: Option<Vec<RawRule>>,
    /// If not empty, a request must match one of these (else 527).
    pub whitelist: Option<Vec<RawRule>>,
}

/// wsp_client: private side of a reverse HTTP proxy over WebSocket
#[derive(Debug, FromArgs)]
#[argh(help_triggers("-h", "--help", "help"))]
pub struct ClientFlags {
    /// YAML configuration file (wsp_client.cfg); flags override its values
    #[argh(option)]
    pub config: Option<String>,
    /// server URL to register to, ws://host:port/register (repeatable; replaces the
    /// file's targets; default ws://127.0.0.1:8080/register)
    #[argh(option)]
    pub target: Vec<String>,
    /// name of this client on the servers (default a random UUID)
    #[argh(option)]
    pub id: Option<String>,
    /// idle connections to keep per target (default 10)
    #[argh(option)]
    pub pool_idle_size: Option<usize>,
    /// most connections per target (default 100)
    #[argh(option)]
    pub pool_max_size: Option<usize>,
    /// key sent to the servers in X-SECRET-KEY (default none)
    #[argh(option)]
    pub secret_key: Option<Secret>,
    /// log level: error, warn, info, debug or trace (default info)
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,
}

/// No flag set: the values argh gives for an empty command line.
impl Default for ClientFlags {
    fn default() -> Self {
        ClientFlags {
            config: None,
            target: Vec::new(),
            id: None,
            pool_idle_size: None,
            pool_max_size: None,
            secret_key: None,
            log_level: "info".to_string(),
        }
    }
}

/// The client's validated, immutable configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Name sent in the greeting. Default a random UUID v4; at most [`MAX_ID_BYTES`],
    /// never empty, no control characters.
    pub id: String,
    /// Servers to register to. Default `["ws://127.0.0.1:8080/register"]`; at least one,
    /// each a `ws://` or `wss://` URL.
    pub targets: Vec<String>,
    /// Idle connections kept per target. Default 10; at most `pool_max_size`.
    pub pool_idle_size: usize,
    /// Most connections per target. Default 100; at least 1.
    pub pool_max_size: usize,
    /// Key sent in `X-SECRET-KEY`. Default empty (the header is sent empty).
    pub secret_key: Secret,
    /// Compiled `blacklist` / `whitelist`. Default empty (everything allowed).
    pub rules: RuleSet,
    /// Longest wait for the internal API: for its response head, and between two reads
    /// or writes of a body. Default 50000 ms (under the server's 60000 ms, so the caller
    /// learns which side was slow).
    pub request_timeout: Duration,
    /// First wait before dialing a target again after a failure. Default 100 ms.
    pub reconnect_delay: Duration,
    /// Cap of the doubling wait between dials. Default 1000 ms; at least `reconnect_delay`.
    pub reconnect_max_delay: Duration,
    /// An idle connection that heard nothing for this long sends a ping. Default 30000 ms.
    pub ping_interval: Duration,
    /// An idle connection that heard nothing for this long is dead. Default 60000 ms;
    /// at least `ping_interval`.
    pub ping_timeout: Duration,
    /// On SIGTERM, how long in-flight requests may take to finish. Default 30000 ms.
    pub shutdown_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            id: uuid::Uuid::new_v4().to_string(),
            targets: vec!["ws://127.0.0.1:8080/register".to_string()],
            pool_idle_size: 10,
            pool_max_size: 100,
            secret_key: Secret::default(),
            rules: RuleSet::default(),
            request_timeout: Duration::from_millis(50_000),
            reconnect_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_millis(1000),
            ping_interval: Duration::from_millis(30_000),
            ping_timeout: Duration::from_millis(60_000),
            shutdown_timeout: Duration::from_millis(30_000),
        }
    }
}

impl RawClientConfig {
    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// An unreadable or oversized file, bad YAML, an unknown key or a wrong type.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        parse_yaml(&read_file(path)?, path)
    }
}

impl ClientConfig {
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
    /// given, then each flag that is set (any `--target` replaces all the file's targets).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags(flags: &ClientFlags) -> Result<Self, ConfigError> {
        let (mut raw, mut sources) = match &flags.config {
            Some(path) => (RawClientConfig::load(path)?, Sources::new(path)),
            None => (RawClientConfig::default(), Sources::new("defaults")),
        };
        let targets = (!flags.target.is_empty()).then_some(&flags.target);
        sources.apply(&mut raw.targets, targets, ("targets", "--target"));
        sources.apply(&mut raw.id, flags.id.as_ref(), ("id", "--id"));
        let idle = flags.pool_idle_size.as_ref();
        sources.apply(
            &mut raw.poolidlesize,
            idle,
            ("poolidlesize", "--pool-idle-size"),
        );
        let max = flags.pool_max_size.as_ref();
        sources.apply(
            &mut raw.poolmaxsize,
            max,
            ("poolmaxsize", "--pool-max-size"),
        );
        let secret = flags.secret_key.as_ref();
        sources.apply(&mut raw.secretkey, secret, ("secretkey", "--secret-key"));
        Self::from_raw(raw, &sources)
    }

    fn from_raw(raw: RawClientConfig, sources: &Sources) -> Result<Self, ConfigError> {
        let defaults = ClientConfig::default();
        let id = raw.id.unwrap_or(defaults.id);
        check_id(&id).map_err(|reason| sources.invalid("id", reason))?;
        let targets = raw.targets.unwrap_or(defaults.targets);
        check_targets(&targets).map_err(|reason| sources.invalid("targets", reason))?;
        let pool_idle_size = raw.poolidlesize.unwrap_or(defaults.pool_idle_size);
        let pool_max_size = raw.poolmaxsize.unwrap_or(defaults.pool_max_size);
        check_pool_sizes(pool_idle_size, pool_max_size, sources)?;
        let blacklist = raw.blacklist.unwrap_or_default();
        let whitelist = raw.whitelist.unwrap_or_default();
        let rules = RuleSet::compile(&blacklist, &whitelist).map_err(|e| sources.rules(e))?;
        Ok(ClientConfig {
            id,
            targets,
            pool_idle_size,
            pool_max_size,
            secret_key: raw.secretkey.unwrap_or_default(),
            rules,
            ..ClientConfig::default()
        })
    }
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_string());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("must be at most {MAX_ID_BYTES} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    Ok(())
}

fn check_targets(targets: &[String]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("at least one target is needed".to_string());
    }
    if targets.len() > MAX_TARGETS {
        return Err(format!("at most {MAX_TARGETS} targets are allowed"));
    }
    for target in targets {
        let url = Url::parse(target).map_err(|e| format!("{target:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(format!("{target:?}: the scheme must be ws or wss"));
        }
        if url.host().is_none() {
            return Err(format!("{target:?}: a host is needed"));
        }
    }
    Ok(())
}

fn check_pool_sizes(idle: usize, max: usize, sources: &Sources) -> Result<(), ConfigError> {
    if max == 0 {
        return Err(sources.invalid("poolmaxsize", "must be at least 1"));
    }
    if idle > MAX_POOL_IDLE_SIZE {
        let reason = format!("must be at most {MAX_POOL_IDLE_SIZE}");
        return Err(sources.invalid("poolidlesize", reason));
    }
    if idle > max {
        // Blame the one a flag set, if any: that is the value the user just chose.
        let key = if sources.is_flag("poolmaxsize") {
            "poolmaxsize"
        } else {
            "poolidlesize"
        };
        let reason = format!("poolidlesize ({idle}) must not exceed poolmaxsize ({max})");
        return Err(sources.invalid(key, reason));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;
    use crate::rules::Denied;

    const EXAMPLE: &str = include_str!("../../examples/wsp_client.cfg");
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
        let flags = super::super::parse_flags::<ClientFlags>(args.map(String::from));
        let flags = flags.unwrap_or_else(|e| panic!("{}", e.output));
        assert_eq!(flags.target, ["ws://a/", "ws://b/"]);
        assert_eq!(flags.id.as_deref(), Some("x"));
        assert_eq!(flags.log_level, "info");
    }
}
