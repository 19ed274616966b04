//! The server's configuration: `wsp_server.cfg` keys, `wsp_server` flags, and the
//! validated [`ServerConfig`] that the server is built from.

use std::time::Duration;

use super::auth::RawAuth;
use super::checks::{Ms, MsOrZero, OneOf, Plain, ZeroIsNoLimit};
use super::keys::config_keys;
use super::secret_key::{choose_key, read_key_file, Environment, KeyOverrides};
use super::{at_least, load_raw, parse_yaml, read_file, ConfigError, Sources};
use crate::auth::Auth;
use crate::rules::{RawRule, RuleSet};
use crate::secret::Secret;

config_keys! {
    /// `wsp_server.cfg` as written: keys exactly as wsp's, every one optional.
    raw RawServerConfig;
    /// wsp_server: public side of a reverse HTTP proxy over WebSocket
    flags ServerFlags;
    defaults ServerConfig {
        secret_key: Secret::default(),
        rules: RuleSet::default(),
        auth: Auth::default(),
        tls: None,
        max_connections: None,
        console: None,
        caller_rate: None,
    }
    rows rows;

    _ / config: String,
        help "YAML configuration file (wsp_server.cfg); flags override its values";
    host / host: String = Plain("127.0.0.1"),
        help "address to bind (default 127.0.0.1)",
        row "address to bind";
    port / port: u16 = Plain(8080),
        help "port to bind (default 8080)",
        row "port to bind (`0`: any free port, logged at start)";
    secretkey / secret_key: Secret, default "empty", by hand,
        help "key that clients must send in X-SECRET-KEY (default none; visible in ps: \
            prefer --secret-key-file or WSP_SECRET_KEY)",
        row "clients must send it in `X-SECRET-KEY` (compared in constant time)";
    use secretkeyfile;
    use secretkeyenv;
    blacklist / _: Vec<RawRule>, default "none",
        row "a request matching **any** rule is refused (526)";
    whitelist / _: Vec<RawRule>, default "none",
        row "if set, a request must match **one** rule (526)";
    auth / _: RawAuth, default "none (off)",
        row "bearer tokens and basic-auth users `/request` callers must present (401 \
            otherwise): see [Caller authentication](#caller-authentication)";
    _ / list auth_token_file: String, default "none",
        help "file holding a bearer token that /request callers may present (one trailing \
            newline ignored); repeatable, added to the configuration file's auth tokens",
        row "file holding one more accepted bearer token; turns `auth` on by itself";
    timeout / timeout: u64 = Ms(1000),
        help "ms to wait for an idle connection for a request (default 1000)",
        row "ms a request waits for an idle connection (> 0)";
    idletimeout / idle_timeout: u64 = MsOrZero(60000),
        help "ms before an idle connection above the pool size is closed (default 60000)",
        row "ms before an idle connection beyond the client's pool size is closed \
            (checked every 5 s)";
    streamidletimeout / stream_idle_timeout: u64 = Ms(300000),
        help "ms of silence both ways after which a CONNECT stream is cut (default 300000)",
        row "ms a `CONNECT` stream may carry nothing either way before the server cuts it \
            (> 0)";
    requesttimeout / request_timeout: u64 = Ms(60000),
        help "ms to wait for a client's answer to a relayed request: its response head, and \
            each piece of its body (default 60000)",
        row "ms to wait for the client's answer to a relayed request: its response head, then \
            each piece of its body (> 0)";
    pinginterval / ping_interval: u64 = Ms(10000),
        help "ms between pings on idle connections (default 10000)",
        row "ms between pings on idle connections (> 0)";
    pingtimeout / ping_timeout: u64 = Ms(20000),
        help "ms of silence after which an idle connection is dead; at least --ping-interval \
            (default 20000)",
        row "ms of silence (pongs included) after which an idle connection is dead (at least \
            `pinginterval`)";
    use shutdowntimeout;
    busystatus / busy_status: u16 = OneOf(526, &[503, 526]),
        help "status when no client or no idle connection can be had: 526 (wsp's) or 503, \
            which comes with Retry-After (default 526)",
        row "status of `No proxy available` / `Unable to get a proxy connection`: `526` \
            (wsp's) or `503`, sent with `Retry-After: 1`";
    certfile / cert_file: String, default "none (plain HTTP)",
        help "PEM file of the certificate chain (server certificate first): with --key-file, \
            the server speaks HTTPS and clients dial wss:// (default none: plain HTTP)",
        row "PEM certificate chain, the server's certificate first: with `keyfile`, every \
            endpoint is served over HTTPS (clients dial `wss://`); see [TLS on the \
            server](#tls-on-the-server-certfile-keyfile)";
    keyfile / key_file: String, default "none",
        help "PEM file of the --cert-file certificate's private key (PKCS #8, PKCS #1 or SEC1)",
        row "PEM private key of `certfile` (PKCS #8, PKCS #1 or SEC1, not encrypted); both \
            keys or neither";
    maxconnections / max_connections: usize,
        default "the open file limit less an eighth (at least 32 kept)",
        help "most connections open at once, callers and clients' WebSockets alike; past it a \
            caller gets 503 with Retry-After (default: the open file limit, raised to its hard \
            value, less an eighth)",
        row "most connections open at once, callers' and clients' WebSockets alike (≥ 1); past \
            it a new caller gets `503` with `Retry-After: 1` and its connection is closed. At \
            start the server raises its open file limit (`RLIMIT_NOFILE`) to the hard limit, \
            as Go programs do; each connection holds one descriptor";
    admin / admin: String, default "none (no console)",
        help "address of the admin listener: the operator console and its JSON API, apart \
            from the public port (default none: no console)",
        row "address of the admin listener: the [operator console](#operator-console) and its \
            JSON API, e.g. `127.0.0.1:8090`; never the public port";
    admintoken / _: Secret, default "none",
        row "bearer token the admin listener asks for (`Authorization: Bearer <token>`, or \
            `?token=` to open the page)";
    admintokenfile / admin_token_file: String, default "none", by hand,
        help "file holding the bearer token the admin listener asks for; overrides \
            WSP_ADMIN_TOKEN and the configuration file's (default none: no token)",
        row "file holding that token, instead of `admintoken`";
    env ADMIN_TOKEN_ENV, default "unset",
        row "the admin token, from the environment (the flag's file wins over it, it over the \
            file's keys)";
    capture / capture: usize, default "`1000`",
        help "exchanges the console remembers (default 1000)",
        row "exchanges the console remembers (1 to 100,000)";
    inspect / switch inspect, default "`false`",
        help "capture request and response bodies too, up to --inspect-body-limit bytes each",
        row "the console keeps request and response bodies too, up to `inspectbodylimit` bytes \
            each";
    inspectbodylimit / inspect_body_limit: usize, default "`65536`",
        help "bytes of each body kept with --inspect (default 65536)",
        row "bytes of each body kept with `inspect` (at most 16 MiB); the rest is counted, \
            never buffered";
    callerrate / caller_rate: f64, default "`0` (no limit)",
        help "requests per second each caller address (and each identity, with auth) may \
            make; beyond, 429 with Retry-After (default 0: no limit)",
        row "requests per second each caller address may make, and each identity \
            (credential) with `auth`; beyond, **429** with `Retry-After` (seconds) and `wsp \
            server: too many requests from <address>; retry in N s (callerrate, \
            callerburst)`. Fractions allowed (`0.5`: one every 2 s); counted in `/metrics` as \
            `wsp_rate_limited_total{by=\"address\"\\|\"identity\"}`";
    callerburst / caller_burst: u32, default "the rate, rounded up",
        help "requests a caller may make at once before --caller-rate applies (default: the \
            rate, rounded up, at least 1)",
        row "requests a caller may make at once before `callerrate` applies (≥ 1)";
    clientmaxinflight / client_max_inflight: usize = ZeroIsNoLimit,
        help "most requests in flight over one client id's connections; more wait as for a \
            busy pool (default 0: no limit)",
        row "most requests in flight over one client id's connections; a request finding \
            every client it may use at the cap waits as for a busy pool (`timeout`, then \
            `Unable to get a proxy connection`); counted as `wsp_client_inflight_capped_total`";
    use loglevel;
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
        raw.apply_flags(flags, &mut sources);
        apply_admin_token(&mut raw, flags, env)?;
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
        raw.check_into(&mut config, sources)?;
        let ping = ("pinginterval", config.ping_interval);
        at_least(sources, ping, ("pingtimeout", config.ping_timeout))?;
        config.console = console(&mut raw, sources)?;
        config.caller_rate = caller_rate(raw.callerrate, raw.callerburst, sources)?;
        config.secret_key = choose_key(overrides.key, raw.secretkey, raw.secretkeyfile, sources)?;
        let (token_files, env) = (overrides.token_files, overrides.env);
        config.auth = super::auth::compile(raw.auth, token_files, sources, env)?;
        config.tls = tls_files(raw.certfile, raw.keyfile, sources)?;
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

/// The admin token from `--admin-token-file`, else [`ADMIN_TOKEN_ENV`], in place of the
/// file's `admintokenfile` or `admintoken`.
fn apply_admin_token(
    raw: &mut RawServerConfig,
    flags: &ServerFlags,
    env: &Environment,
) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests;
