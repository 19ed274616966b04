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
