//! YAML parsing for both configuration files: one raw layer parsed within a resource
//! budget ([`MAX_YAML_DEPTH`], [`MAX_YAML_NODES`], [`MAX_YAML_ALIAS_REPLAY`], and the file
//! size cap [`MAX_FILE_BYTES`]), and, when parsing fails, the path of the offending key
//! (`blacklist[0].url`) so the error can name it.
//!
//! What the keys mean and how they are checked is left to [`super::server`] and
//! [`super::client`]; reading the file is the parent module's job.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

use super::{ConfigError, MAX_FILE_BYTES};

/// Deepest YAML nesting accepted. wsp's files need 4 (file, rule list, rule, headers).
pub const MAX_YAML_DEPTH: usize = 16;

/// Most YAML nodes (scalars, sequences, mappings) accepted in one file.
pub const MAX_YAML_NODES: usize = 100_000;

/// Most parser events that aliases (`*anchor`) may replay in one file: stops alias bombs.
pub const MAX_YAML_ALIAS_REPLAY: usize = 10_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawServerConfig;

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
}
