//! The client's configuration: `wsp_client.cfg` keys, `wsp_client` flags, and the
//! validated [`ClientConfig`] that the client is built from.

use std::time::Duration;

use argh::FromArgs;
use serde::Deserialize;
use url::Url;

use super::secret_key::{choose_key, Environment, KeyOverrides};
use super::{
    at_least, load_raw, log_level, millis_or, parse_yaml, read_file, ConfigError, Sources,
};
use crate::protocol::limits::{MAX_ID_LEN, MAX_POOL_SIZE};
use crate::rules::{RawRule, RuleSet};
use crate::secret::Secret;

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
    /// File holding that key, so it is not written here.
    pub secretkeyfile: Option<String>,
    /// Ms to wait for the internal API (head, and each read or write of a body).
    pub requesttimeout: Option<u64>,
    /// Ms before the first redial of a target after a failure.
    pub reconnectdelay: Option<u64>,
    /// Ms that the doubling wait between redials is capped at.
    pub reconnectmaxdelay: Option<u64>,
    /// Ms of silence after which an idle connection sends a ping.
    pub pinginterval: Option<u64>,
    /// Ms of silence after which an idle connection is dead.
    pub pingtimeout: Option<u64>,
    /// Ms that in-flight requests may take to finish on SIGTERM.
    pub shutdowntimeout: Option<u64>,
    /// PEM file of the CA(s) to trust for `wss://` targets and `https://` internal APIs,
    /// instead of the system's roots.
    pub cafile: Option<String>,
    /// Verify no TLS certificate at all (tests only).
    pub insecure: Option<bool>,
    /// A request matching any of these is refused (527).
    pub blacklist: Option<Vec<RawRule>>,
    /// If not empty, a request must match one of these (else 527).
    pub whitelist: Option<Vec<RawRule>>,
    /// Regexes over `host:port`: a `CONNECT` must match one whole (else 403).
    pub connect: Option<Vec<String>>,
    /// Most streams (`CONNECT`) open at once.
    pub maxstreams: Option<usize>,
    /// Ms of silence both ways after which a stream is cut.
    pub streamidletimeout: Option<u64>,
    /// Ms between two resolutions of each target's host name.
    pub resolveinterval: Option<u64>,
    /// Log level: error, warn, info, debug, trace or off.
    pub loglevel: Option<String>,
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
    /// key sent to the servers in X-SECRET-KEY (default none; visible in ps: prefer
    /// --secret-key-file or WSP_SECRET_KEY)
    #[argh(option)]
    pub secret_key: Option<Secret>,
    /// file holding the secret key (one trailing newline ignored); overrides
    /// WSP_SECRET_KEY and the configuration file's key
    #[argh(option)]
    pub secret_key_file: Option<String>,
    /// ms to wait for the internal API: its response head, and each read or write of a
    /// body (default 50000)
    #[argh(option)]
    pub request_timeout: Option<u64>,
    /// ms before the first redial of a target after a failure (default 100)
    #[argh(option)]
    pub reconnect_delay: Option<u64>,
    /// ms that the doubling wait between redials is capped at; at least
    /// --reconnect-delay (default 1000)
    #[argh(option)]
    pub reconnect_max_delay: Option<u64>,
    /// ms of silence after which an idle connection sends a ping (default 30000)
    #[argh(option)]
    pub ping_interval: Option<u64>,
    /// ms of silence after which an idle connection is dead; at least --ping-interval
    /// (default 60000)
    #[argh(option)]
    pub ping_timeout: Option<u64>,
    /// ms that in-flight requests may take to finish on SIGTERM; 0 stops at once
    /// (default 30000)
    #[argh(option)]
    pub shutdown_timeout: Option<u64>,
    /// PEM file of the CA(s) to trust for wss:// targets and https:// internal APIs,
    /// instead of the system's roots (default none)
    #[argh(option)]
    pub ca_file: Option<String>,
    /// verify no TLS certificate at all, of servers or internal APIs: for tests only
    #[argh(switch)]
    pub insecure: bool,
    /// allow CONNECT to host:port matching this regex whole (repeatable; replaces the
    /// file's connect list; default none: every CONNECT is refused)
    #[argh(option)]
    pub allow_connect: Vec<String>,
    /// most streams (CONNECT) open at once (default 100)
    #[argh(option)]
    pub max_streams: Option<usize>,
    /// ms of silence both ways after which a stream is cut (default 300000)
    #[argh(option)]
    pub stream_idle_timeout: Option<u64>,
    /// ms between two resolutions of each target's host name: a name with several
    /// addresses gets a pool per address (default 30000)
    #[argh(option)]
    pub resolve_interval: Option<u64>,
    /// log level: error, warn, info, debug, trace or off (default info)
    #[argh(option)]
    pub log_level: Option<String>,
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
            secret_key_file: None,
            request_timeout: None,
            reconnect_delay: None,
            reconnect_max_delay: None,
            ping_interval: None,
            ping_timeout: None,
            shutdown_timeout: None,
            ca_file: None,
            insecure: false,
            allow_connect: Vec::new(),
            max_streams: None,
            stream_idle_timeout: None,
            resolve_interval: None,
            log_level: None,
        }
    }
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
    /// Idle connections kept per target. Default 10; at most `pool_max_size` and
    /// [`MAX_POOL_SIZE`].
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
            ca_file: None,
            insecure: false,
            connect: Vec::new(),
            max_streams: 100,
            stream_idle_timeout: Duration::from_millis(300_000),
            resolve_interval: Duration::from_millis(30_000),
            log_level: log::LevelFilter::Info,
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
        apply_time_flags(&mut raw, &mut sources, flags);
        let ca_file = flags.ca_file.as_ref();
        sources.apply(&mut raw.cafile, ca_file, ("cafile", "--ca-file"));
        let insecure = flags.insecure.then_some(&true);
        sources.apply(&mut raw.insecure, insecure, ("insecure", "--insecure"));
        let connect = (!flags.allow_connect.is_empty()).then_some(&flags.allow_connect);
        sources.apply(&mut raw.connect, connect, ("connect", "--allow-connect"));
        let streams = flags.max_streams.as_ref();
        sources.apply(
            &mut raw.maxstreams,
            streams,
            ("maxstreams", "--max-streams"),
        );
        let level = flags.log_level.as_ref();
        sources.apply(&mut raw.loglevel, level, ("loglevel", "--log-level"));
        let overrides = KeyOverrides {
            flag: flags.secret_key.as_ref(),
            flag_file: flags.secret_key_file.as_deref(),
            env: env.secret_key.as_deref(),
        };
        Self::from_raw(raw, &sources, overrides)
    }

    fn from_raw(
        raw: RawClientConfig,
        sources: &Sources,
        overrides: KeyOverrides<'_>,
    ) -> Result<Self, ConfigError> {
        let mut config = ClientConfig::default();
        set_durations(&mut config, &raw, sources)?;
        config.secret_key = choose_key(overrides, raw.secretkey, raw.secretkeyfile, sources)?;
        config.id = raw.id.unwrap_or(config.id);
        check_id(&config.id).map_err(|reason| sources.invalid("id", reason))?;
        config.targets = raw.targets.unwrap_or(config.targets);
        check_targets(&config.targets).map_err(|reason| sources.invalid("targets", reason))?;
        config.pool_idle_size = raw.poolidlesize.unwrap_or(config.pool_idle_size);
        config.pool_max_size = raw.poolmaxsize.unwrap_or(config.pool_max_size);
        check_pool_sizes(config.pool_idle_size, config.pool_max_size, sources)?;
        let blacklist = raw.blacklist.unwrap_or_default();
        let whitelist = raw.whitelist.unwrap_or_default();
        config.rules = RuleSet::compile(&blacklist, &whitelist).map_err(|e| sources.rules(e))?;
        config.ca_file = raw.cafile;
        config.insecure = raw.insecure.unwrap_or(false);
        config.connect = compile_connect(raw.connect.as_deref().unwrap_or_default())
            .map_err(|reason| sources.invalid("connect", reason))?;
        config.max_streams = raw.maxstreams.unwrap_or(config.max_streams);
        if config.max_streams == 0 {
            return Err(sources.invalid("maxstreams", "must be at least 1"));
        }
        config.log_level = log_level(raw.loglevel.as_deref(), sources)?;
        Ok(config)
    }
}

/// Puts the time-out, back-off and liveness flags over the file's values.
fn apply_time_flags(raw: &mut RawClientConfig, sources: &mut Sources, flags: &ClientFlags) {
    let settings = [
        (
            &mut raw.requesttimeout,
            flags.request_timeout,
            "requesttimeout",
            "--request-timeout",
        ),
        (
            &mut raw.reconnectdelay,
            flags.reconnect_delay,
            "reconnectdelay",
            "--reconnect-delay",
        ),
        (
            &mut raw.reconnectmaxdelay,
            flags.reconnect_max_delay,
            "reconnectmaxdelay",
            "--reconnect-max-delay",
        ),
        (
            &mut raw.pinginterval,
            flags.ping_interval,
            "pinginterval",
            "--ping-interval",
        ),
        (
            &mut raw.pingtimeout,
            flags.ping_timeout,
            "pingtimeout",
            "--ping-timeout",
        ),
        (
            &mut raw.shutdowntimeout,
            flags.shutdown_timeout,
            "shutdowntimeout",
            "--shutdown-timeout",
        ),
        (
            &mut raw.streamidletimeout,
            flags.stream_idle_timeout,
            "streamidletimeout",
            "--stream-idle-timeout",
        ),
        (
            &mut raw.resolveinterval,
            flags.resolve_interval,
            "resolveinterval",
            "--resolve-interval",
        ),
    ];
    for (slot, value, key, flag) in settings {
        sources.apply(slot, value.as_ref(), (key, flag));
    }
}

/// Validates the time-out, back-off and liveness keys into `config`, which holds the
/// defaults for the keys that are not set.
fn set_durations(
    config: &mut ClientConfig,
    raw: &RawClientConfig,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let ms = |key, value, zero_ok, default| millis_or(sources, key, value, zero_ok, default);
    let c = config;
    c.request_timeout = ms(
        "requesttimeout",
        raw.requesttimeout,
        false,
        c.request_timeout,
    )?;
    c.reconnect_delay = ms(
        "reconnectdelay",
        raw.reconnectdelay,
        false,
        c.reconnect_delay,
    )?;
    let max = raw.reconnectmaxdelay;
    c.reconnect_max_delay = ms("reconnectmaxdelay", max, false, c.reconnect_max_delay)?;
    c.ping_interval = ms("pinginterval", raw.pinginterval, false, c.ping_interval)?;
    c.ping_timeout = ms("pingtimeout", raw.pingtimeout, false, c.ping_timeout)?;
    c.shutdown_timeout = ms(
        "shutdowntimeout",
        raw.shutdowntimeout,
        true,
        c.shutdown_timeout,
    )?;
    let stream_idle = raw.streamidletimeout;
    c.stream_idle_timeout = ms(
        "streamidletimeout",
        stream_idle,
        false,
        c.stream_idle_timeout,
    )?;
    let resolve = raw.resolveinterval;
    c.resolve_interval = ms("resolveinterval", resolve, false, c.resolve_interval)?;
    let delays = ("reconnectdelay", c.reconnect_delay);
    at_least(
        sources,
        delays,
        ("reconnectmaxdelay", c.reconnect_max_delay),
    )?;
    let ping = ("pinginterval", c.ping_interval);
    at_least(sources, ping, ("pingtimeout", c.ping_timeout))
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
