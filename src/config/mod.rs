//! Configuration in two layers: the raw YAML files and command-line flags of wsp, validated
//! once into the immutable [`ServerConfig`] and [`ClientConfig`].
//!
//! This module owns what both sides share: reading a file within [`MAX_FILE_BYTES`],
//! naming the offending key or flag in every error ([`ConfigError`]), durations in ms
//! (at most [`MAX_TIMEOUT_MS`]), and turning Go-style flags (`-config x`) into the form
//! argh accepts ([`go_style_args`]). YAML parsing within a resource budget is in [`yaml`],
//! the secret key's sources (flag, file, environment) in [`secret_key`], the server's caller
//! credentials (`auth`) in [`auth`]. The keys of each side are defined once, in a table
//! in [`server`] and in [`client`], from which `keys` writes the structs, the defaults,
//! the simple checks and the README's tables. Rules are compiled by [`crate::rules`].
//!
//! Precedence: built-in defaults, then the file given with `--config`, then each flag set
//! (the secret key has more sources: see [`secret_key`]).

pub mod auth;
mod checks;
pub mod client;
mod keys;
pub mod secret_key;
pub mod server;
#[cfg(test)]
pub(crate) mod testing;
pub mod yaml;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use crate::rules::RuleError;

pub use client::{ClientConfig, ClientFlags, RawClientConfig};
pub use secret_key::{Environment, MAX_KEY_FILE_BYTES, SECRET_KEY_ENV};
pub use server::{RawServerConfig, ServerConfig, ServerFlags, TlsFiles};
pub use yaml::{MAX_YAML_ALIAS_REPLAY, MAX_YAML_DEPTH, MAX_YAML_NODES};

pub(crate) use yaml::parse_yaml;

/// Largest configuration file accepted, in bytes, checked before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Longest duration accepted for any time-out, interval or delay key, in ms (one week):
/// keeps deadlines computed from them far from overflowing.
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The origin named in errors about values given as flags.
pub const COMMAND_LINE: &str = "command line";

/// Flags that take no value: what follows them is not read as their value.
const SWITCHES: [&str; 2] = ["help", "h"];

/// Why a configuration could not be built. Every message starts with where the bad value
/// came from: the file name, or `command line`.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be opened or read.
    Read {
        /// The file as given.
        file: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge {
        /// The file as given.
        file: String,
    },
    /// The file is not UTF-8 text.
    NotUtf8 {
        /// The file as given.
        file: String,
    },
    /// Not valid YAML, an unknown key, a value of the wrong type, or over the parse budget.
    Syntax {
        /// The file as given.
        origin: String,
        /// The key at the error's position (`blacklist[0].url`), empty at the top level.
        path: String,
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// A value of the right type that is out of range.
    Invalid {
        /// The file as given, or [`COMMAND_LINE`].
        origin: String,
        /// The YAML key (`timeout`) or the flag (`--timeout`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The secret key file (`secretkeyfile`, `--secret-key-file`) could not be read.
    KeyFile {
        /// The configuration file that named it, or [`COMMAND_LINE`].
        origin: String,
        /// `secretkeyfile` or `--secret-key-file`.
        key: String,
        /// The key file as given.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A `blacklist` / `whitelist` rule did not compile.
    Rules {
        /// The file as given.
        origin: String,
        /// Which rule and field, and why.
        source: RuleError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { file, source } => write!(f, "{file}: cannot read: {source}"),
            ConfigError::TooLarge { file } => {
                write!(f, "{file}: larger than {MAX_FILE_BYTES} bytes")
            }
            ConfigError::NotUtf8 { file } => write!(f, "{file}: not UTF-8 text"),
            ConfigError::Syntax {
                origin,
                path,
                message,
            } if path.is_empty() => write!(f, "{origin}: {message}"),
            ConfigError::Syntax {
                origin,
                path,
                message,
            } => write!(f, "{origin}: {path}: {message}"),
            ConfigError::Invalid {
                origin,
                key,
                reason,
            } => write!(f, "{origin}: {key}: {reason}"),
            ConfigError::KeyFile {
                origin,
                key,
                path,
                source,
            } => write!(f, "{origin}: {key}: cannot read {path}: {source}"),
            ConfigError::Rules { origin, source } => write!(f, "{origin}: {source}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::KeyFile { source, .. } => Some(source),
            ConfigError::Rules { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where each setting came from, so that a validation error names the file and key, or
/// the flag, that set the bad value.
pub(crate) struct Sources {
    file: String,
    /// `(yaml key, flag)` for each setting given on the command line.
    flags: Vec<(&'static str, String)>,
}

impl Sources {
    /// Settings read from `file` (or defaults when no flag set them).
    pub(crate) fn new(file: &str) -> Self {
        Sources {
            file: file.to_string(),
            flags: Vec::new(),
        }
    }

    /// Puts the flag's value, when given, in place of the file's; `setting` is the
    /// `(yaml key, flag field)` pair that names it in errors (the flag as argh spells
    /// the field: [`keys::flag_name`]).
    pub(crate) fn apply<T: Clone>(
        &mut self,
        slot: &mut Option<T>,
        flag_value: Option<&T>,
        setting: (&'static str, &'static str),
    ) {
        if let Some(value) = flag_value {
            *slot = Some(value.clone());
            self.flags.push((setting.0, keys::flag_name(setting.1)));
        }
    }

    /// True when `key` was set by a flag.
    pub(crate) fn is_flag(&self, key: &str) -> bool {
        self.flags.iter().any(|(k, _)| *k == key)
    }

    /// The file the settings not given by flags came from (`defaults` when none).
    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    /// How `key` is named in errors: its flag when a flag set it, else the YAML key.
    pub(crate) fn name<'a>(&'a self, key: &'static str) -> &'a str {
        match self.flags.iter().find(|(k, _)| *k == key) {
            Some((_, flag)) => flag,
            None => key,
        }
    }

    /// The error for a bad value of `key`, naming the flag or the file that set it.
    pub(crate) fn invalid(&self, key: &'static str, reason: impl fmt::Display) -> ConfigError {
        let origin = if self.is_flag(key) {
            COMMAND_LINE
        } else {
            self.file.as_str()
        };
        let key = self.name(key);
        ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The error for rules that did not compile (rules only come from the file).
    pub(crate) fn rules(&self, source: RuleError) -> ConfigError {
        ConfigError::Rules {
            origin: self.file.clone(),
            source,
        }
    }
}

/// A duration in ms, refused above [`MAX_TIMEOUT_MS`], or at 0 unless `zero_ok`.
pub(crate) fn millis(
    sources: &Sources,
    key: &'static str,
    ms: u64,
    zero_ok: bool,
) -> Result<Duration, ConfigError> {
    if ms == 0 && !zero_ok {
        return Err(sources.invalid(key, "must be greater than 0"));
    }
    if ms > MAX_TIMEOUT_MS {
        return Err(sources.invalid(key, format!("must be at most {MAX_TIMEOUT_MS} ms")));
    }
    Ok(Duration::from_millis(ms))
}

/// [`millis`] of `ms` when the key is set, else `default`.
pub(crate) fn millis_or(
    sources: &Sources,
    key: &'static str,
    ms: Option<u64>,
    zero_ok: bool,
    default: Duration,
) -> Result<Duration, ConfigError> {
    ms.map_or(Ok(default), |ms| millis(sources, key, ms, zero_ok))
}

/// Refuses `high` below `low` (a time-out shorter than its interval, a cap below its
/// start), each given as `(yaml key, value)`. Blames `low` when only it was set by a flag,
/// as that is the value the user just chose; else `high`. The other one is named as its
/// flag when a flag set it.
pub(crate) fn at_least(
    sources: &Sources,
    low: (&'static str, Duration),
    high: (&'static str, Duration),
) -> Result<(), ConfigError> {
    if high.1 >= low.1 {
        return Ok(());
    }
    if sources.is_flag(low.0) && !sources.is_flag(high.0) {
        let ms = high.1.as_millis();
        let reason = format!("must be at most {} ({ms} ms)", sources.name(high.0));
        return Err(sources.invalid(low.0, reason));
    }
    let ms = low.1.as_millis();
    let reason = format!("must be at least {} ({ms} ms)", sources.name(low.0));
    Err(sources.invalid(high.0, reason))
}

/// The raw configuration in the `--config` file, or an empty one without it, and the
/// sources that name it in errors.
pub(crate) fn load_raw<T: serde::de::DeserializeOwned + Default>(
    path: Option<&str>,
) -> Result<(T, Sources), ConfigError> {
    match path {
        Some(path) => Ok((parse_yaml(&read_file(path)?, path)?, Sources::new(path))),
        None => Ok((T::default(), Sources::new("defaults"))),
    }
}

/// Reads a configuration file, refusing more than [`MAX_FILE_BYTES`] without reading them.
pub(crate) fn read_file(path: &str) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read {
        file: path.to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            file: path.to_string(),
        });
    }
    String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8 {
        file: path.to_string(),
    })
}

/// Turns Go-style flags into argh's: `-config x` and `-config=x` (and `--config=x`, which
/// argh refuses) become `--config x`. Leaves alone the program name (first element), `-h`,
/// `--x`, negative numbers, everything after `--`, and the value that follows a flag (every
/// flag of ours takes a value except `help`).
pub fn go_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = args.into_iter();
    let mut out: Vec<String> = args.next().into_iter().collect();
    let mut value_next = false;
    let mut only_positional = false;
    for arg in args {
        if value_next || only_positional {
            value_next = false;
            out.push(arg);
            continue;
        }
        only_positional = arg == "--";
        let name = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(name) if is_flag_name(name) && arg.len() > 2 => name,
            _ => {
                out.push(arg);
                continue;
            }
        };
        match name.split_once('=') {
            Some((name, value)) if is_flag_name(name) => {
                out.push(format!("--{name}"));
                out.push(value.to_string());
            }
            Some(_) => out.push(arg),
            None => {
                value_next = !SWITCHES.contains(&name);
                out.push(format!("--{name}"));
            }
        }
    }
    out
}

/// A flag name starts with a letter (so `-5` and `---x` are not flags).
fn is_flag_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Parses flags the way both binaries do: [`go_style_args`], then argh, with the program's
/// file name as the command name in help and errors.
///
/// # Errors
///
/// argh's early exit: `--help` output (`status` is `Ok`) or a usage error, which then
/// ends with a line pointing to `--help` (argh only says what it did not understand, and
/// a typo like `--prot` deserves a way to the right name).
pub fn parse_flags<T: argh::FromArgs>(
    args: impl IntoIterator<Item = String>,
) -> Result<T, argh::EarlyExit> {
    let args = go_style_args(args);
    let (program, rest) = match args.split_first() {
        Some((program, rest)) => (program.as_str(), rest),
        None => ("wsp", &[][..]),
    };
    let command = Path::new(program)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(program);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    T::from_args(&[command], &rest).map_err(|mut early| {
        if early.status.is_err() {
            early.output = usage_error(&early.output, command);
        }
        early
    })
}

/// argh's usage error with the way to the list of flags added.
fn usage_error(output: &str, command: &str) -> String {
    format!(
        "{}\nRun '{command} --help' for the list of flags.",
        output.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(args: &[&str]) -> Vec<String> {
        go_style_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn go_flags_become_double_dash() {
        assert_eq!(
            go(&["wsp", "-config", "x.cfg"]),
            ["wsp", "--config", "x.cfg"]
        );
        assert_eq!(go(&["wsp", "-config=x.cfg"]), ["wsp", "--config", "x.cfg"]);
        assert_eq!(go(&["wsp", "--config=a=b"]), ["wsp", "--config", "a=b"]);
        assert_eq!(go(&["wsp", "-port", "-5"]), ["wsp", "--port", "-5"]);
        assert_eq!(
            go(&["wsp", "-secret-key", "-s"]),
            ["wsp", "--secret-key", "-s"]
        );
        assert_eq!(go(&["wsp", "-help"]), ["wsp", "--help"]);
    }

    #[test]
    fn go_style_leaves_the_rest_alone() {
        assert_eq!(go(&["-config", "-h"]), ["-config", "-h"]);
        assert_eq!(go(&["wsp", "--x", "v"]), ["wsp", "--x", "v"]);
        assert_eq!(go(&["wsp", "-5", "-", "---x"]), ["wsp", "-5", "-", "---x"]);
        assert_eq!(go(&["wsp", "--", "-config"]), ["wsp", "--", "-config"]);
        assert_eq!(go(&["wsp", "--=x", "-=y"]), ["wsp", "--=x", "-=y"]);
        assert!(go(&[]).is_empty());
    }

    #[test]
    fn usage_errors_point_to_help() {
        /// test flags
        #[derive(argh::FromArgs)]
        #[allow(dead_code)]
        struct Flags {
            /// a port
            #[argh(option)]
            port: Option<u16>,
        }
        let args = ["/usr/bin/wsp_server", "--prot", "1"].map(String::from);
        let early = parse_flags::<Flags>(args).err();
        let early = early.unwrap_or_else(|| panic!("--prot must be refused"));
        assert!(early.status.is_err());
        assert_eq!(
            early.output,
            "Unrecognized argument: --prot\nRun 'wsp_server --help' for the list of flags."
        );
        let help = parse_flags::<Flags>(["wsp", "--help"].map(String::from)).err();
        let help = help.map(|e| e.output).unwrap_or_default();
        assert!(!help.contains("Run '"), "{help}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = read_file("/nonexistent/wsp_server.cfg").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with("/nonexistent/wsp_server.cfg: cannot read"),
            "{msg}"
        );
    }
}
