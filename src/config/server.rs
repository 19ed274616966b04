//! The server's configuration: `wsp_server.cfg` keys, `wsp_server` flags, and the
//! validated [`ServerConfig`] that the server is built from.

use std::time::Duration;

use argh::FromArgs;
use serde::Deserialize;

use super::auth::RawAuth;
use super::secret_key::{choose_key, read_key_file, Environment, KeyOverrides};
use super::{
    at_least, load_raw, log_level, millis_or, parse_yaml, read_file, ConfigError, Sources,
};
use crate::auth::Auth;
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
    /// Ms of silence both ways after which a stream (CONNECT) is cut.
    pub streamidletimeout: Option<u64>,
    /// Ms to wait for a client's answer to a relayed request (head, and each body piece).
    pub requesttimeout: Option<u64>,
    /// Ms between pings on idle connections.
    pub pinginterval: Option<u64>,
    /// Ms of silence after which an idle connection is dead.
    pub pingtimeout: Option<u64>,
    /// Ms that in-flight requests may take to finish on SIGTERM.
    pub shutdowntimeout: Option<u64>,
    /// Status when no connection can be had: 526 (wsp's) or 503 (with `Retry-After`).
    pub busystatus: Option<u16>,
    /// Key the clients must present on `/register`.
    pub secretkey: Option<Secret>,
    /// File holding that key, so it is not written here.
    pub secretkeyfile: Option<String>,
    /// A request matching any of these is refused.
    pub blacklist: Option<Vec<RawRule>>,
    /// If not empty, a request must match one of these.
    pub whitelist: Option<Vec<RawRule>>,
    /// Bearer tokens and basic-auth users `/request` callers must present (not in wsp).
    pub auth: Option<RawAuth>,
    /// PEM certificate chain: with `keyfile`, the server speaks HTTPS (not in wsp).
    pub certfile: Option<String>,
    /// PEM private key of `certfile`.
    pub keyfile: Option<String>,
    /// Most connections open at once, callers and WebSockets alike (not in wsp).
    pub maxconnections: Option<usize>,
    /// Address of the admin listener (the console and its API); none: no console.
    pub admin: Option<String>,
    /// Bearer token the admin listener asks for.
    pub admintoken: Option<Secret>,
    /// File holding that token.
    pub admintokenfile: Option<String>,
    /// Exchanges the console remembers.
    pub capture: Option<usize>,
    /// Capture bodies too (up to `inspectbodylimit` bytes each).
    pub inspect: Option<bool>,
    /// Bytes of each body kept when inspecting.
    pub inspectbodylimit: Option<usize>,
    /// Requests per second a caller (address, and identity with `auth`) may make.
    pub callerrate: Option<f64>,
    /// Requests a caller may make at once before `callerrate` applies.
    pub callerburst: Option<u32>,
    /// Most requests in flight over one client id's connections.
    pub clientmaxinflight: Option<usize>,
    /// Log level: error, warn, info, debug, trace or off.
    pub loglevel: Option<String>,
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
    /// key that clients must send in X-SECRET-KEY (default none; visible in ps: prefer
    /// --secret-key-file or WSP_SECRET_KEY)
    #[argh(option)]
    pub secret_key: Option<Secret>,
    /// file holding the secret key (one trailing newline ignored); overrides
    /// WSP_SECRET_KEY and the configuration file's key
    #[argh(option)]
    pub secret_key_file: Option<String>,
    /// file holding a bearer token that /request callers may present (one trailing
    /// newline ignored); repeatable, added to the configuration file's auth tokens
    #[argh(option)]
    pub auth_token_file: Vec<String>,
    /// ms to wait for an idle connection for a request (default 1000)
    #[argh(option)]
    pub timeout: Option<u64>,
    /// ms before an idle connection above the pool size is closed (default 60000)
    #[argh(option)]
    pub idle_timeout: Option<u64>,
    /// ms of silence both ways after which a CONNECT stream is cut (default 300000)
    #[argh(option)]
    pub stream_idle_timeout: Option<u64>,
    /// ms to wait for a client's answer to a relayed request: its response head, and each
    /// piece of its body (default 60000)
    #[argh(option)]
    pub request_timeout: Option<u64>,
    /// ms between pings on idle connections (default 10000)
    #[argh(option)]
    pub ping_interval: Option<u64>,
    /// ms of silence after which an idle connection is dead; at least --ping-interval
    /// (default 20000)
    #[argh(option)]
    pub ping_timeout: Option<u64>,
    /// ms that in-flight requests may take to finish on SIGTERM; 0 stops at once
    /// (default 30000)
    #[argh(option)]
    pub shutdown_timeout: Option<u64>,
    /// status when no client or no idle connection can be had: 526 (wsp's) or 503, which
    /// comes with Retry-After (default 526)
    #[argh(option)]
    pub busy_status: Option<u16>,
    /// PEM file of the certificate chain (server certificate first): with --key-file,
    /// the server speaks HTTPS and clients dial wss:// (default none: plain HTTP)
    #[argh(option)]
    pub cert_file: Option<String>,
    /// PEM file of the --cert-file certificate's private key (PKCS #8, PKCS #1 or SEC1)
    #[argh(option)]
    pub key_file: Option<String>,
    /// most connections open at once, callers and clients' WebSockets alike; past it a
    /// caller gets 503 with Retry-After (default: the open file limit, raised to its hard
    /// value, less an eighth)
    #[argh(option)]
    pub max_connections: Option<usize>,
    /// address of the admin listener: the operator console and its JSON API, apart
    /// from the public port (default none: no console)
    #[argh(option)]
    pub admin: Option<String>,
    /// file holding the bearer token the admin listener asks for; overrides
    /// WSP_ADMIN_TOKEN and the configuration file's (default none: no token)
    #[argh(option)]
    pub admin_token_file: Option<String>,
    /// exchanges the console remembers (default 1000)
    #[argh(option)]
    pub capture: Option<usize>,
    /// capture request and response bodies too, up to --inspect-body-limit bytes each
    #[argh(switch)]
    pub inspect: bool,
    /// bytes of each body kept with --inspect (default 65536)
    #[argh(option)]
    pub inspect_body_limit: Option<usize>,
    /// requests per second each caller address (and each identity, with auth) may make;
    /// beyond, 429 with Retry-After (default 0: no limit)
    #[argh(option)]
    pub caller_rate: Option<f64>,
    /// requests a caller may make at once before --caller-rate applies (default: the
    /// rate, rounded up, at least 1)
    #[argh(option)]
    pub caller_burst: Option<u32>,
    /// most requests in flight over one client id's connections; more wait as for a busy
    /// pool (default 0: no limit)
    #[argh(option)]
    pub client_max_inflight: Option<usize>,
    /// log level: error, warn, info, debug, trace or off (default info)
    #[argh(option)]
    pub log_level: Option<String>,
}

/// No flag set: the values argh gives for an empty command line.
impl Default for ServerFlags {
    fn default() -> Self {
        ServerFlags {
            config: None,
            host: None,
            port: None,
            secret_key: None,
            secret_key_file: None,
            auth_token_file: Vec::new(),
            timeout: None,
            idle_timeout: None,
            stream_idle_timeout: None,
            request_timeout: None,
            ping_interval: None,
            ping_timeout: None,
            shutdown_timeout: None,
            busy_status: None,
            cert_file: None,
            key_file: None,
            max_connections: None,
            admin: None,
            admin_token_file: None,
            capture: None,
            inspect: false,
            inspect_body_limit: None,
            caller_rate: None,
            caller_burst: None,
            client_max_inflight: None,
            log_level: None,
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
    /// How long a stream (`CONNECT`) may carry nothing either way before it is cut.
    /// Default 300000 ms; never 0.
    pub stream_idle_timeout: Duration,
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
    /// The status of `No proxy available` and `Unable to get a proxy connection`: 526
    /// (wsp's, the default) or 503, which load balancers and clients retry on.
    pub busy_status: u16,
    /// Key the clients must present. Default empty (clients must send none).
    pub secret_key: Secret,
    /// Compiled `blacklist` / `whitelist`. Default empty (everything allowed).
    pub rules: RuleSet,
    /// Credentials `/request` callers must present. Default none (anyone may call, as
    /// in wsp).
    pub auth: Auth,
    /// The certificate and key to serve HTTPS with (`certfile` / `keyfile`). Default
    /// none: plain HTTP, as in wsp.
    pub tls: Option<TlsFiles>,
    /// Most connections open at once (`maxconnections`); `None`: drawn from the open
    /// file limit when the server starts ([`crate::sys::fd_limit`]).
    pub max_connections: Option<usize>,
    /// The operator console (`admin`): `None` by default, and then nothing of it runs.
    pub console: Option<Console>,
    /// Requests per second and burst per caller (`callerrate`, `callerburst`): `None`
    /// by default, no limit.
    pub caller_rate: Option<(f64, u32)>,
    /// Most requests in flight per client id (`clientmaxinflight`): `None` by default.
    pub client_max_inflight: Option<usize>,
    /// What the log says (`loglevel`). Default info.
    pub log_level: log::LevelFilter,
}

/// The admin listener's settings.
#[derive(Clone, Debug)]
pub struct Console {
    /// Where it listens: never the public address.
    pub addr: String,
    /// The bearer token it asks for, if any.
    pub token: Option<Secret>,
    /// Exchanges remembered. Default 1000; 1 to [`MAX_CAPTURE`].
    pub capture: usize,
    /// With `inspect`, bytes of each body kept. Default none (bodies not kept).
    pub body_limit: Option<usize>,
}

/// Most exchanges the console may remember.
pub const MAX_CAPTURE: usize = 100_000;
/// Largest `inspectbodylimit`.
pub const MAX_INSPECT_BODY: usize = 16 << 20;
/// The environment variable an admin token may come from.
pub const ADMIN_TOKEN_ENV: &str = "WSP_ADMIN_TOKEN";

/// The PEM files of the server's certificate chain and private key, both given. They are
/// read when the server starts (`server::tls::load`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then any intermediates.
    pub cert_file: String,
    /// Its private key: PKCS #8, PKCS #1 (RSA) or SEC1 (EC), not encrypted.
    pub key_file: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_string(),
            port: 8080,
            timeout: Duration::from_millis(1000),
            idle_timeout: Duration::from_millis(60_000),
            stream_idle_timeout: Duration::from_millis(300_000),
            request_timeout: Duration::from_millis(60_000),
            ping_interval: Duration::from_millis(10_000),
            ping_timeout: Duration::from_millis(20_000),
            shutdown_timeout: Duration::from_millis(30_000),
            busy_status: 526,
            secret_key: Secret::default(),
            rules: RuleSet::default(),
            auth: Auth::default(),
            tls: None,
            max_connections: None,
            console: None,
            caller_rate: None,
            client_max_inflight: None,
            log_level: log::LevelFilter::Info,
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
        let env = Environment::default();
        let overrides = Overrides {
            key: KeyOverrides::default(),
            token_files: &[],
            env: &env,
        };
        Self::from_raw(raw, &Sources::new(origin), overrides)
    }

    /// Builds the configuration from the flags and this process's environment: see
    /// [`ServerConfig::from_flags_in`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags(flags: &ServerFlags) -> Result<Self, ConfigError> {
        Self::from_flags_in(flags, &Environment::from_process())
    }

    /// Builds the configuration from the flags: defaults, then the `--config` file if
    /// given, then each flag that is set. The secret key is chosen among its sources
    /// (`env` among them) as [`crate::config::secret_key`] describes.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the file and key, or the flag, with the bad value.
    pub fn from_flags_in(flags: &ServerFlags, env: &Environment) -> Result<Self, ConfigError> {
        let (mut raw, mut sources): (RawServerConfig, _) = load_raw(flags.config.as_deref())?;
        sources.apply(&mut raw.host, flags.host.as_ref(), ("host", "--host"));
        sources.apply(&mut raw.port, flags.port.as_ref(), ("port", "--port"));
        apply_time_flags(&mut raw, &mut sources, flags);
        let busy = flags.busy_status.as_ref();
        sources.apply(&mut raw.busystatus, busy, ("busystatus", "--busy-status"));
        let cert = flags.cert_file.as_ref();
        sources.apply(&mut raw.certfile, cert, ("certfile", "--cert-file"));
        let key = flags.key_file.as_ref();
        sources.apply(&mut raw.keyfile, key, ("keyfile", "--key-file"));
        let max = flags.max_connections.as_ref();
        let names = ("maxconnections", "--max-connections");
        sources.apply(&mut raw.maxconnections, max, names);
        apply_console_flags(&mut raw, &mut sources, flags, env)?;
        let rate = flags.caller_rate.as_ref();
        sources.apply(&mut raw.callerrate, rate, ("callerrate", "--caller-rate"));
        let burst = flags.caller_burst.as_ref();
        sources.apply(
            &mut raw.callerburst,
            burst,
            ("callerburst", "--caller-burst"),
        );
        let inflight = flags.client_max_inflight.as_ref();
        let names = ("clientmaxinflight", "--client-max-inflight");
        sources.apply(&mut raw.clientmaxinflight, inflight, names);
        let level = flags.log_level.as_ref();
        sources.apply(&mut raw.loglevel, level, ("loglevel", "--log-level"));
        let key = KeyOverrides {
            flag: flags.secret_key.as_ref(),
            flag_file: flags.secret_key_file.as_deref(),
            env: env.secret_key.as_deref(),
        };
        let overrides = Overrides {
            key,
            token_files: &flags.auth_token_file,
            env,
        };
        Self::from_raw(raw, &sources, overrides)
    }

    fn from_raw(
        mut raw: RawServerConfig,
        sources: &Sources,
        overrides: Overrides<'_>,
    ) -> Result<Self, ConfigError> {
        let mut config = ServerConfig::default();
        set_durations(&mut config, &raw, sources)?;
        config.console = console(&mut raw, sources)?;
        config.caller_rate = caller_rate(raw.callerrate, raw.callerburst, sources)?;
        config.client_max_inflight = raw.clientmaxinflight.filter(|&n| n > 0);
        config.log_level = log_level(raw.loglevel.as_deref(), sources)?;
        config.secret_key = choose_key(overrides.key, raw.secretkey, raw.secretkeyfile, sources)?;
        let (token_files, env) = (overrides.token_files, overrides.env);
        config.auth = super::auth::compile(raw.auth, token_files, sources, env)?;
        config.tls = tls_files(raw.certfile, raw.keyfile, sources)?;
        config.host = raw.host.unwrap_or(config.host);
        config.port = raw.port.unwrap_or(config.port);
        config.busy_status = match raw.busystatus {
            None => config.busy_status,
            Some(status @ (503 | 526)) => status,
            Some(other) => {
                return Err(sources.invalid("busystatus", format!("{other}: must be 503 or 526")))
            }
        };
        config.max_connections = match raw.maxconnections {
            Some(0) => return Err(sources.invalid("maxconnections", "0: must be at least 1")),
            max => max,
        };
        let blacklist = raw.blacklist.unwrap_or_default();
        let whitelist = raw.whitelist.unwrap_or_default();
        config.rules = RuleSet::compile(&blacklist, &whitelist).map_err(|e| sources.rules(e))?;
        Ok(config)
    }
}

/// Puts the console's flags over the file's values; the token from `--admin-token-file`,
/// else [`ADMIN_TOKEN_ENV`], else the file's `admintokenfile` or `admintoken`.
fn apply_console_flags(
    raw: &mut RawServerConfig,
    sources: &mut Sources,
    flags: &ServerFlags,
    env: &Environment,
) -> Result<(), ConfigError> {
    sources.apply(&mut raw.admin, flags.admin.as_ref(), ("admin", "--admin"));
    sources.apply(
        &mut raw.capture,
        flags.capture.as_ref(),
        ("capture", "--capture"),
    );
    let inspect = flags.inspect.then_some(&true);
    sources.apply(&mut raw.inspect, inspect, ("inspect", "--inspect"));
    let limit = flags.inspect_body_limit.as_ref();
    let names = ("inspectbodylimit", "--inspect-body-limit");
    sources.apply(&mut raw.inspectbodylimit, limit, names);
    let from_env = env
        .vars
        .get(ADMIN_TOKEN_ENV)
        .and_then(|v| v.to_str())
        .filter(|v| !v.is_empty());
    if let Some(path) = &flags.admin_token_file {
        let token =
            read_key_file(path).map_err(|e| e.at("command line", "--admin-token-file", path))?;
        raw.admintoken = Some(token);
        raw.admintokenfile = None;
    } else if let Some(token) = from_env {
        raw.admintoken = Some(Secret::new(token));
        raw.admintokenfile = None;
    }
    Ok(())
}

/// The caller rate limit, checked; `None` when off (no rate, or 0).
fn caller_rate(
    rate: Option<f64>,
    burst: Option<u32>,
    sources: &Sources,
) -> Result<Option<(f64, u32)>, ConfigError> {
    let rate = rate.unwrap_or(0.0);
    if !rate.is_finite() || rate < 0.0 {
        return Err(sources.invalid("callerrate", format!("{rate}: must be 0 or more")));
    }
    if rate == 0.0 {
        return Ok(None);
    }
    let burst = burst.unwrap_or_else(|| rate.ceil().min(f64::from(u32::MAX)) as u32);
    if burst == 0 {
        return Err(sources.invalid("callerburst", "0: must be at least 1"));
    }
    Ok(Some((rate, burst)))
}

/// The console's settings, checked; `None` without `admin`.
fn console(raw: &mut RawServerConfig, sources: &Sources) -> Result<Option<Console>, ConfigError> {
    let token = match (raw.admintoken.take(), raw.admintokenfile.take()) {
        (Some(_), Some(_)) => {
            let why = "admintoken and admintokenfile: give one or the other";
            return Err(sources.invalid("admintokenfile", why));
        }
        (None, Some(path)) => {
            Some(read_key_file(&path).map_err(|e| e.at(sources.file(), "admintokenfile", &path))?)
        }
        (token, None) => token,
    };
    let Some(addr) = raw.admin.take() else {
        return Ok(None);
    };
    if addr.trim().is_empty() {
        return Err(sources.invalid("admin", "an address is needed, e.g. 127.0.0.1:8090"));
    }
    let capture = raw.capture.unwrap_or(1000);
    if !(1..=MAX_CAPTURE).contains(&capture) {
        let why = format!("{capture}: must be from 1 to {MAX_CAPTURE}");
        return Err(sources.invalid("capture", why));
    }
    let limit = raw.inspectbodylimit.unwrap_or(64 * 1024);
    if limit > MAX_INSPECT_BODY {
        let why = format!("{limit}: must be at most {MAX_INSPECT_BODY}");
        return Err(sources.invalid("inspectbodylimit", why));
    }
    Ok(Some(Console {
        addr,
        token,
        capture,
        body_limit: raw.inspect.unwrap_or(false).then_some(limit),
    }))
}

/// `certfile` and `keyfile`: both or neither.
fn tls_files(
    cert: Option<String>,
    key: Option<String>,
    sources: &Sources,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert_file), Some(key_file)) => Ok(Some(TlsFiles {
            cert_file,
            key_file,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(sources.invalid(
            "certfile",
            "keyfile (--key-file) is missing: give both or neither",
        )),
        (None, Some(_)) => Err(sources.invalid(
            "keyfile",
            "certfile (--cert-file) is missing: give both or neither",
        )),
    }
}

/// What the flags and the environment add to the file's secrets.
struct Overrides<'a> {
    key: KeyOverrides<'a>,
    /// `--auth-token-file`, each adding a bearer token.
    token_files: &'a [String],
    /// For `auth`'s `tokenenv` / `passwordenv`.
    env: &'a Environment,
}

/// Puts the time-out and liveness flags over the file's values.
fn apply_time_flags(raw: &mut RawServerConfig, sources: &mut Sources, flags: &ServerFlags) {
    let settings = [
        (&mut raw.timeout, flags.timeout, "timeout", "--timeout"),
        (
            &mut raw.idletimeout,
            flags.idle_timeout,
            "idletimeout",
            "--idle-timeout",
        ),
        (
            &mut raw.requesttimeout,
            flags.request_timeout,
            "requesttimeout",
            "--request-timeout",
        ),
        (
            &mut raw.streamidletimeout,
            flags.stream_idle_timeout,
            "streamidletimeout",
            "--stream-idle-timeout",
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
    ];
    for (slot, value, key, flag) in settings {
        sources.apply(slot, value.as_ref(), (key, flag));
    }
}

/// Validates the time-out and liveness keys into `config`, which holds the defaults for
/// the keys that are not set.
fn set_durations(
    config: &mut ServerConfig,
    raw: &RawServerConfig,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let ms = |key, value, zero_ok, default| millis_or(sources, key, value, zero_ok, default);
    let c = config;
    c.timeout = ms("timeout", raw.timeout, false, c.timeout)?;
    c.idle_timeout = ms("idletimeout", raw.idletimeout, true, c.idle_timeout)?;
    let stream_idle = raw.streamidletimeout;
    c.stream_idle_timeout = ms(
        "streamidletimeout",
        stream_idle,
        false,
        c.stream_idle_timeout,
    )?;
    c.request_timeout = ms(
        "requesttimeout",
        raw.requesttimeout,
        false,
        c.request_timeout,
    )?;
    c.ping_interval = ms("pinginterval", raw.pinginterval, false, c.ping_interval)?;
    c.ping_timeout = ms("pingtimeout", raw.pingtimeout, false, c.ping_timeout)?;
    c.shutdown_timeout = ms(
        "shutdowntimeout",
        raw.shutdowntimeout,
        true,
        c.shutdown_timeout,
    )?;
    let ping = ("pinginterval", c.ping_interval);
    at_least(sources, ping, ("pingtimeout", c.ping_timeout))
}

#[cfg(test)]
mod tests;
