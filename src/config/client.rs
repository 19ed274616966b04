//! The client's configuration: `wsp_client.cfg` keys, `wsp_client` flags, and the
//! validated [`ClientConfig`] that the client is built from.

use std::time::Duration;

use url::Url;

use super::checks::{AtLeastOne, Ms, Plain};
use super::keys::config_keys;
use super::secret_key::{choose_key, Environment, KeyOverrides};
use super::{at_least, load_raw, parse_yaml, read_file, ConfigError, Sources};
use crate::protocol::limits::{MAX_ID_LEN, MAX_POOL_SIZE};
use crate::rules::{RawRule, RuleSet};
use crate::secret::Secret;

/// Most `targets` accepted: each one gets its own pool of connections.
pub const MAX_TARGETS: usize = 64;

config_keys! {
    /// `wsp_client.cfg` as written: keys exactly as wsp's, every one optional.
    raw RawClientConfig;
    /// wsp_client: private side of a reverse HTTP proxy over WebSocket
    flags ClientFlags;
    defaults ClientConfig {
        id: uuid::Uuid::new_v4().to_string(),
        targets: vec!["ws://127.0.0.1:8080/register".to_string()],
        secret_key: Secret::default(),
        rules: RuleSet::default(),
        ca_file: None,
        connect: Vec::new(),
    }
    rows rows;

    _ / config: String,
        help "YAML configuration file (wsp_client.cfg); flags override its values";
    targets / list target: String, default "`ws://127.0.0.1:8080/register`",
        help "server URL to register to, ws://host:port/register (repeatable; replaces the \
            file's targets; default ws://127.0.0.1:8080/register)",
        row "servers to register to";
    id / id: String, default "random UUID v4",
        help "name of this client on the servers (default a random UUID)",
        row "name of this client on the servers (≤ 256 bytes)";
    poolidlesize / pool_idle_size: usize = Plain(10),
        help "idle connections to keep per server: per target, per address of its host \
            (default 10)",
        row "idle connections kept per server (per target, per address of its host name): \
            when one turns busy, another is opened, so \
            one more may be idle after a request until the server's `idletimeout` closes it \
            (see [Observability](#observability))";
    poolmaxsize / pool_max_size: usize = Plain(100),
        help "most connections per server (default 100)",
        row "most connections per server (per target, per address of its host name)";
    secretkey / secret_key: Secret, default "empty", by hand,
        help "key sent to the servers in X-SECRET-KEY (default none; visible in ps: prefer \
            --secret-key-file or WSP_SECRET_KEY)",
        row "sent as `X-SECRET-KEY`";
    use secretkeyfile;
    use secretkeyenv;
    requesttimeout / request_timeout: u64 = Ms(50000),
        help "ms to wait for the internal API: its response head, and each read or write of \
            a body (default 50000)",
        row "ms to wait for the internal API: its response head, then each read or write of \
            a body (> 0)";
    reconnectdelay / reconnect_delay: u64 = Ms(100),
        help "ms before the first redial of a target after a failure (default 100)",
        row "ms before the first redial of a target after a failure (> 0)";
    reconnectmaxdelay / reconnect_max_delay: u64 = Ms(1000),
        help "ms that the doubling wait between redials is capped at; at least \
            --reconnect-delay (default 1000)",
        row "ms the redial wait, doubling after each failure, is capped at (at least \
            `reconnectdelay`)";
    pinginterval / ping_interval: u64 = Ms(30000),
        help "ms of silence after which an idle connection sends a ping (default 30000)",
        row "ms of silence after which an idle connection sends a ping (> 0)";
    pingtimeout / ping_timeout: u64 = Ms(60000),
        help "ms of silence after which an idle connection is dead; at least --ping-interval \
            (default 60000)",
        row "ms of silence after which an idle connection is dead (at least `pinginterval`)";
    use shutdowntimeout;
    cafile / ca_file: String, default "none",
        help "PEM file of the CA(s) to trust for wss:// targets and https:// internal APIs, \
            instead of the system's roots (default none)",
        row "PEM file of the CA certificate(s) to trust for `wss://` targets and `https://` \
            internal APIs, *instead of* the system's roots (a private CA); read at start (a \
            bad file stops the client) and at each reload (a bad file refuses it)";
    insecure / switch insecure = Plain(false),
        help "verify no TLS certificate at all, of servers or internal APIs: for tests only",
        row "verify no TLS certificate at all, of servers or internal APIs; warned about at \
            every start. For tests only";
    blacklist / _: Vec<RawRule>, default "none",
        row "a request matching **any** rule is refused (527)";
    whitelist / _: Vec<RawRule>, default "none",
        row "if set, a request must match **one** rule (527)";
    connect / list allow_connect: String, default "none: every `CONNECT` refused (403)",
        help "allow CONNECT to host:port matching this regex whole (repeatable; replaces the \
            file's connect list; default none: every CONNECT is refused)",
        row "regexes over `host:port`, each matched against the **whole** destination \
            (`db\\.internal:5432` does not allow `db.internal:54320`): a `CONNECT` must match \
            one (see [Streams](#streams-connect-and-websockets-through-the-tunnel))";
    maxstreams / max_streams: usize = AtLeastOne(100),
        help "most streams (CONNECT) open at once (default 100)",
        row "most `CONNECT` streams open at once in this client (≥ 1); more are answered 503";
    streamidletimeout / stream_idle_timeout: u64 = Ms(300000),
        help "ms of silence both ways after which a stream is cut (default 300000)",
        row "ms a stream may carry nothing either way before the client cuts it (> 0)";
    resolveinterval / resolve_interval: u64 = Ms(30000),
        help "ms between two resolutions of each target's host name: a name with several \
            addresses gets a pool per address (default 30000)",
        row "ms between two resolutions of each target's host name: every address the name \
            has gets a pool of its own, added and drained as addresses come and go (> 0; see \
            [Several servers behind one name](#several-servers-behind-one-name))";
    use loglevel;
}

/// The client's validated, immutable configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Name sent in the greeting. Default a random UUID v4; at most [`MAX_ID_LEN`],
    /// never empty, no control characters.
    pub id: String,
    /// Servers to register to. Default `["ws://127.0.0.1:8080/register"]`; at least one,
    /// each a `ws://` or `wss://` URL.
    pub targets: Vec<String>,
    /// Idle connections kept per server (a target's address). Default 10; at most `pool_max_size` and
    /// [`MAX_POOL_SIZE`].
    pub pool_idle_size: usize,
    /// Most connections per server (a target's address). Default 100; at least 1.
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
    /// PEM file whose certificates are the only roots TLS trusts (`wss://` targets,
    /// `https://` internal APIs). Default none: the system's roots. Read when the
    /// client starts.
    pub ca_file: Option<String>,
    /// Verify no certificate. Default false; for tests, warned about at every start.
    pub insecure: bool,
    /// Destinations a `CONNECT` may open (`host:port` matched whole). Default none.
    pub connect: Vec<regex::Regex>,
    /// Most streams open at once; more are answered 503. Default 100.
    pub max_streams: usize,
    /// How long a stream may carry nothing either way before it is cut. Default
    /// 300000 ms; never 0.
    pub stream_idle_timeout: Duration,
    /// How often each target's host name is resolved again, to follow servers coming
    /// and going behind it. Default 30000 ms; never 0.
    pub resolve_interval: Duration,
    /// What the log says. Default info.
    pub log_level: log::LevelFilter,
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
        Self::from_raw(raw, &Sources::new(origin), KeyOverrides::default())
    }

    /// Builds the configuration from the flags and this process's environment: see
    /// [`ClientConfig::from_flags_in`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags(flags: &ClientFlags) -> Result<Self, ConfigError> {
        Self::from_flags_in(flags, &Environment::from_process())
    }

    /// Builds the configuration from the flags: defaults, then the `--config` file if
    /// given, then each flag that is set (any `--target` replaces all the file's targets).
    /// The secret key is chosen among its sources (`env` among them) as
    /// [`crate::config::secret_key`] describes.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags_in(flags: &ClientFlags, env: &Environment) -> Result<Self, ConfigError> {
        let (mut raw, mut sources): (RawClientConfig, _) = load_raw(flags.config.as_deref())?;
        raw.apply_flags(flags, &mut sources);
        let overrides = KeyOverrides {
            flag: flags.secret_key.as_ref(),
            flag_file: flags.secret_key_file.as_deref(),
            env: env.secret_key.as_deref(),
        };
        Self::from_raw(raw, &sources, overrides)
    }

    fn from_raw(
        mut raw: RawClientConfig,
        sources: &Sources,
        overrides: KeyOverrides<'_>,
    ) -> Result<Self, ConfigError> {
        let mut config = ClientConfig::default();
        raw.check_into(&mut config, sources)?;
        let delays = ("reconnectdelay", config.reconnect_delay);
        at_least(
            sources,
            delays,
            ("reconnectmaxdelay", config.reconnect_max_delay),
        )?;
        let ping = ("pinginterval", config.ping_interval);
        at_least(sources, ping, ("pingtimeout", config.ping_timeout))?;
        config.secret_key = choose_key(overrides, raw.secretkey, raw.secretkeyfile, sources)?;
        config.id = raw.id.unwrap_or(config.id);
        check_id(&config.id).map_err(|reason| sources.invalid("id", reason))?;
        config.targets = raw.targets.unwrap_or(config.targets);
        check_targets(&config.targets).map_err(|reason| sources.invalid("targets", reason))?;
        check_pool_sizes(config.pool_idle_size, config.pool_max_size, sources)?;
        let blacklist = raw.blacklist.unwrap_or_default();
        let whitelist = raw.whitelist.unwrap_or_default();
        config.rules = RuleSet::compile(&blacklist, &whitelist).map_err(|e| sources.rules(e))?;
        config.ca_file = raw.cafile;
        config.connect = compile_connect(raw.connect.as_deref().unwrap_or_default())
            .map_err(|reason| sources.invalid("connect", reason))?;
        Ok(config)
    }
}

/// Most `connect` regexes, and the longest one.
const MAX_CONNECT_RULES: usize = 256;
const MAX_CONNECT_RULE_LEN: usize = 1024;

/// Compiles the `connect` regexes, each anchored to match a whole `host:port`: a rule
/// `db\.internal:5432` must not also allow `db.internal:54320` or `xdb.internal:5432`.
fn compile_connect(rules: &[String]) -> Result<Vec<regex::Regex>, String> {
    if rules.len() > MAX_CONNECT_RULES {
        return Err(format!("at most {MAX_CONNECT_RULES} rules are allowed"));
    }
    rules
        .iter()
        .map(|rule| {
            if rule.len() > MAX_CONNECT_RULE_LEN {
                return Err(format!(
                    "a rule is longer than {MAX_CONNECT_RULE_LEN} bytes"
                ));
            }
            regex::RegexBuilder::new(&format!("^(?:{rule})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("{rule:?} is not a regex: {e}"))
        })
        .collect()
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_string());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("must be at most {MAX_ID_LEN} bytes"));
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
    if idle > MAX_POOL_SIZE {
        let reason = format!("must be at most {MAX_POOL_SIZE}");
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
mod tests;
