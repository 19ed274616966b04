//! The README's configuration tables are the key tables rendered: a key added to a table
//! shows up in the README, or this test says what to write there.

use super::table;
use crate::config::{client, server};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const END: &str = "<!-- end -->";

/// The line that opens the generated table of the keys in `source`.
fn marker(source: &str) -> String {
    format!("<!-- generated from {source}: cargo test readme_tables; WSP_BLESS=1 rewrites -->\n")
}

/// `text` with the table after each marker replaced by the one rendered from the keys;
/// the names of the sources whose table differed.
fn regenerate(text: &str, tables: &[(&str, String)]) -> (String, Vec<String>) {
    let mut text = text.to_string();
    let mut stale = Vec::new();
    for (source, expected) in tables {
        let marker = marker(source);
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("README.md has no line {marker:?}"))
            + marker.len();
        let end = text[start..]
            .find(END)
            .unwrap_or_else(|| panic!("README.md: no {END:?} after {marker:?}"))
            + start;
        if text[start..end] != **expected {
            stale.push(format!("after {marker}{expected}"));
            text.replace_range(start..end, expected);
        }
    }
    (text, stale)
}

#[test]
fn readme_tables() {
    let tables = [
        ("src/config/server.rs", table(&server::rows())),
        ("src/config/client.rs", table(&client::rows())),
    ];
    let text = std::fs::read_to_string(README).unwrap_or_else(|e| panic!("{README}: {e}"));
    let (new, stale) = regenerate(&text, &tables);
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("WSP_BLESS").is_some() {
        std::fs::write(README, new).unwrap_or_else(|e| panic!("{README}: {e}"));
        return;
    }
    panic!(
        "README.md's configuration tables differ from the keys defined in src/config; \
         run `WSP_BLESS=1 cargo test readme_tables` to rewrite them, or write:\n\n{}",
        stale.join("\n")
    );
}

#[test]
fn regenerate_replaces_only_between_the_markers() {
    let text = format!("a\n{}| old |\n{END}\nb\n", marker("x.rs"));
    let (new, stale) = regenerate(&text, &[("x.rs", "| new |\n".to_string())]);
    assert_eq!(new, format!("a\n{}| new |\n{END}\nb\n", marker("x.rs")));
    assert_eq!(stale.len(), 1);
    let (same, stale) = regenerate(&new, &[("x.rs", "| new |\n".to_string())]);
    assert_eq!((same, stale.len()), (new, 0));
}

#[test]
fn flags_are_named_as_argh_names_them() {
    assert_eq!(super::flag_name("ping_interval"), "--ping-interval");
    assert_eq!(super::flag_name("port"), "--port");
}

#[test]
fn a_flag_counts_as_given_only_when_set() {
    use super::Given;
    assert_eq!(Some(5).given(), Some(&5));
    assert_eq!(None::<u64>.given(), None);
    assert_eq!(true.given(), Some(&true));
    assert_eq!(false.given(), None);
    assert_eq!(vec!["a"].given(), Some(&vec!["a"]));
    assert_eq!(Vec::<String>::new().given(), None);
}

/// Each flag's `--help` text, by flag, from argh's help output.
fn help_by_flag<T: argh::FromArgs>(command: &str) -> Vec<(String, String)> {
    let help = T::from_args(&[command], &["--help"]).err();
    let help = help.map(|early| early.output).unwrap_or_default();
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        // A flag starts a line after two spaces; its text goes on, indented further.
        match (line.strip_prefix("  --"), flags.last_mut()) {
            (Some(rest), _) => {
                let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                flags.push((format!("--{name}"), text.trim().to_string()));
            }
            (None, Some((_, text))) if !line.trim().is_empty() => {
                text.push(' ');
                text.push_str(line.trim());
            }
            _ => {}
        }
    }
    flags
}

/// `--help` says a flag's default in words, and the key table holds it as a value: for
/// the numeric defaults, both must agree.
#[test]
fn help_names_each_numeric_default() {
    let sides = [
        (
            server::rows(),
            help_by_flag::<server::ServerFlags>("wsp_server"),
        ),
        (
            client::rows(),
            help_by_flag::<client::ClientFlags>("wsp_client"),
        ),
    ];
    for (rows, help) in sides {
        for row in rows {
            let number = row.default.trim_matches('`');
            if row.key.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let flag = row.flag.trim_matches('`');
            let text = help
                .iter()
                .find(|(name, _)| name == flag)
                .map(|(_, text)| text);
            let text = text.unwrap_or_else(|| panic!("{flag} is not in --help"));
            assert!(
                text.contains(&format!("default {number})")),
                "{flag}: --help says {text:?}, the key's default is {number}"
            );
        }
    }
}
