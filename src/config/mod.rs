//! Configuration in two layers: the raw YAML files and command-line flags of wsp, validated
//! once into the immutable [`ServerConfig`] and [`ClientConfig`].
//!
//! This module owns what both sides share: reading a file within [`MAX_FILE_BYTES`],
//! parsing YAML within a resource budget, naming the offending key in every error
//! ([`ConfigError`]), and turning Go-style flags (`-config x`) into the form argh accepts
//! ([`go_style_args`]). The keys, defaults and checks of each side live in [`server`] and
//! [`client`]. Rules are compiled by [`crate::rules`].
//!
//! Precedence: built-in defaults, then the file given with `--config`, then each flag set.

pub mod client;
pub mod server;

use std::fmt::{self, Write as _};
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

use crate::rules::RuleError;

pub use client::{ClientConfig, ClientFlags, RawClientConfig};
pub use server::{RawServerConfig, ServerConfig, ServerFlags};

/// Largest configuration file accepted, in bytes, checked before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Deepest YAML nesting accepted. wsp's files need 4 (file, rule list, rule, headers).
pub const MAX_YAML_DEPTH: usize = 16;

/// Most YAML nodes (scalars, sequences, mappings) accepted in one file.
pub const MAX_YAML_NODES: usize = 100_000;

/// Most parser events that aliases (`*anchor`) may replay in one file: stops alias bombs.
pub const MAX_YAML_ALIAS_REPLAY: usize = 10_000;

/// Longest `timeout` / `idletimeout` accepted, in ms (one week): keeps deadlines computed
/// from them far from overflowing.
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
            ConfigError::Rules { origin, source } => write!(f, "{origin}: {source}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
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
    flags: Vec<(&'static str, &'static str)>,
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
    /// `(yaml key, flag)` pair that names it in errors.
    pub(crate) fn apply<T: Clone>(
        &mut self,
        slot: &mut Option<T>,
        flag_value: Option<&T>,
        setting: (&'static str, &'static str),
    ) {
        if let Some(value) = flag_value {
            *slot = Some(value.clone());
            self.flags.push(setting);
        }
    }

    /// True when `key` was set by a flag.
    pub(crate) fn is_flag(&self, key: &str) -> bool {
        self.flags.iter().any(|(k, _)| *k == key)
    }

    /// The error for a bad value of `key`, naming the flag or the file that set it.
    pub(crate) fn invalid(&self, key: &'static str, reason: impl fmt::Display) -> ConfigError {
        let (origin, key) = match self.flags.iter().find(|(k, _)| *k == key) {
            Some((_, flag)) => (COMMAND_LINE, *flag),
            None => (self.file.as_str(), key),
        };
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

/// Parses one raw YAML layer; an empty document gives the defaults (all keys unset).
pub(crate) fn parse_yaml<T: DeserializeOwned + Default>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            file: origin.to_string(),
        });
    }
    match serde_saphyr::from_str_with_options::<Option<T>>(text, yaml_options()) {
        Ok(raw) => Ok(raw.unwrap_or_default()),
        Err(err) => {
            let path = err
                .location()
                .map(|at| key_path(text, (at.line(), at.column())))
                .unwrap_or_default();
            Err(ConfigError::Syntax {
                origin: origin.to_string(),
                path,
                message: err.to_string(),
            })
        }
    }
}

/// The parser options: the budget that bounds what a hostile file can cost, and one-line
/// messages (`... at line 2, column 1`) instead of multi-line snippets.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_YAML_DEPTH,
            max_nodes: MAX_YAML_NODES,
            max_total_scalar_bytes: MAX_FILE_BYTES,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_YAML_ALIAS_REPLAY,
        },
        with_snippet: false,
    }
}

/// The shape of a YAML document with the position of every key and value. Parsed only
/// after the typed parse failed, to name the key at the error's position.
enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

/// A scalar mapping key, as text.
struct Key(String);

/// `(line, column)` where a node starts.
fn position<T>(node: &Spanned<T>) -> (u64, u64) {
    (node.referenced.line(), node.referenced.column())
}

/// The path of the key whose value holds position `at`, like `blacklist[0].url`. An error
/// on a key itself (an unknown field) gives the path of the mapping that holds it.
fn key_path(text: &str, at: (u64, u64)) -> String {
    let root = serde_saphyr::from_str_with_options::<Option<Spanned<Node>>>(text, yaml_options());
    let mut path = String::new();
    if let Ok(Some(root)) = root {
        push_path(&root.value, at, &mut path);
    }
    path
}

/// Descends into the child of `node` that holds `at`, appending its name to `path`.
fn push_path(node: &Node, at: (u64, u64), path: &mut String) {
    match node {
        Node::Map(entries) => {
            let Some((key, value)) = entries.iter().rev().find(|(k, _)| position(k) <= at) else {
                return;
            };
            if at < position(value) {
                return;
            }
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key.value.0);
            push_path(&value.value, at, path);
        }
        Node::Seq(items) => {
            let mut found = items.iter().enumerate().rev();
            let Some((index, item)) = found.find(|(_, it)| position(it) <= at) else {
                return;
            };
            let _ = write!(path, "[{index}]");
            push_path(&item.value, at, path);
        }
        Node::Scalar => {}
    }
}

mod node_de {
    //! `Deserialize` for the position tree: any scalar is a leaf, keys become text.
    use super::{Key, Node};
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct KeyVisitor;
    struct NodeVisitor;

    /// `visit_*` methods that turn a scalar `$v` of each listed type into `$out`.
    macro_rules! scalars {
        ($v:ident => $out:expr; $($visit:ident: $ty:ty),*) => {$(
            fn $visit<E: Error>(self, $v: $ty) -> Result<Self::Value, E> {
                Ok($out)
            }
        )*};
    }

    impl Visitor<'_> for KeyVisitor {
        type Value = Key;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a scalar key")
        }
        scalars!(v => Key(v.to_string());
            visit_str: &str, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_bool: bool);
    }

    impl<'de> Visitor<'de> for NodeVisitor {
        type Value = Node;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any YAML node")
        }
        scalars!(_v => Node::Scalar;
            visit_str: &str, visit_bytes: &[u8], visit_bool: bool, visit_f64: f64,
            visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128);
        fn visit_unit<E: Error>(self) -> Result<Node, E> {
            Ok(Node::Scalar)
        }
        fn visit_none<E: Error>(self) -> Result<Node, E> {
            Ok(Node::Scalar)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
            Node::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(Node::Seq(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(Node::Map(entries))
        }
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KeyVisitor)
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(NodeVisitor)
        }
    }
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
/// argh's early exit: `--help` output (`status` is `Ok`) or a usage error.
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
    T::from_args(&[command], &rest)
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
    fn key_path_names_nested_keys() {
        let text = "host: a\nblacklist:\n - method: x\n   url: [1]\n";
        assert_eq!(key_path(text, (4, 9)), "blacklist[0].url");
        assert_eq!(key_path(text, (3, 4)), "blacklist[0]");
        assert_eq!(key_path(text, (1, 7)), "host");
        assert_eq!(key_path("{a: [", (1, 5)), "");
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let text = "#".repeat(MAX_FILE_BYTES + 1);
        let err = parse_yaml::<RawServerConfig>(&text, "big.cfg").err();
        assert!(matches!(err, Some(ConfigError::TooLarge { .. })));
    }

    /// Accepts any mapping, so that only the budget can refuse it.
    type AnyMap = std::collections::BTreeMap<String, serde::de::IgnoredAny>;

    fn budget_error(text: &str) -> String {
        match parse_yaml::<AnyMap>(text, "hostile.cfg") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let ok = format!(
            "a: {}{}",
            "[".repeat(MAX_YAML_DEPTH - 1),
            "]".repeat(MAX_YAML_DEPTH - 1)
        );
        assert_eq!(budget_error(&ok), "");
        let deep = format!(
            "a: {}{}",
            "[".repeat(MAX_YAML_DEPTH + 1),
            "]".repeat(MAX_YAML_DEPTH + 1)
        );
        assert!(budget_error(&deep).starts_with("hostile.cfg: "));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(budget_error(&text).starts_with("hostile.cfg: "));
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
