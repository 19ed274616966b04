//! HTTP header handling shared by both sides: the header map of the JSON heads, Go's
//! canonical header names, and the hop-by-hop headers that a proxy must not forward.
//!
//! The Go wsp serialises `http.Header`, a map from canonical name to the list of values.
//! Both our peers build and read that map here, so that names look the same on the wire
//! whichever side produced them.

use std::collections::BTreeMap;

/// Header names in Go's canonical form, each mapped to its values in arrival order.
pub type Headers = BTreeMap<String, Vec<String>>;

/// Headers meaningful only for one hop (RFC 9110 §7.6.1), dropped in both directions.
/// `Proxy-*` headers are matched by prefix in [`is_hop_by_hop`].
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Returns Go's canonical form of a header name (`x-proxy-destination` becomes
/// `X-Proxy-Destination`): the first letter and every letter after a `-` upper-cased, the
/// rest lower-cased. Like Go, a name with a space or a non-token byte is left as it is.
pub fn canonical_key(name: &str) -> String {
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_string();
    }
    // Valid names are ASCII: one allocation of the right size, byte by byte.
    let mut canonical = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        canonical.push(match upper {
            true => c.to_ascii_uppercase(),
            false => c.to_ascii_lowercase(),
        });
        upper = c == '-';
    }
    canonical
}

/// True for headers that describe the connection rather than the message: the fixed
/// RFC 9110 list, any `Proxy-*` header, and any name listed in the message's own
/// `Connection` header (`connection_tokens`, lower-cased).
pub fn is_hop_by_hop(name: &str, connection_tokens: &[String]) -> bool {
    // Compared without case and without a lower-cased copy: this runs for every header
    // of every request and response, on both sides.
    let proxy = name
        .as_bytes()
        .get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"proxy-"));
    proxy
        || HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
        || connection_tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
}

/// The lower-cased names listed in the `Connection` header of `headers`, which RFC
/// 9110 makes hop-by-hop too.
pub fn connection_tokens_of(headers: &Headers) -> Vec<String> {
    let values = headers.get("Connection").into_iter().flatten();
    connection_tokens(values.map(String::as_str))
}

/// The lower-cased names listed in the `Connection` header values, which RFC 9110 makes
/// hop-by-hop too.
pub fn connection_tokens<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The first value of a header, looked up by any spelling of its name.
pub fn first<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get(&canonical_key(name))
        .and_then(|values| values.first())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_follow_go() {
        assert_eq!(canonical_key("x-proxy-destination"), "X-Proxy-Destination");
        assert_eq!(canonical_key("CONTENT-TYPE"), "Content-Type");
        assert_eq!(canonical_key("www-authenticate"), "Www-Authenticate");
        assert_eq!(canonical_key("bad header"), "bad header");
    }

    #[test]
    fn hop_by_hop_includes_connection_listed_names() {
        let tokens = connection_tokens(["keep-alive, X-Foo"]);
        assert!(is_hop_by_hop("Transfer-Encoding", &tokens));
        assert!(is_hop_by_hop("Proxy-Authorization", &tokens));
        assert!(is_hop_by_hop("x-foo", &tokens));
        assert!(!is_hop_by_hop("Content-Type", &tokens));
    }

    #[test]
    fn first_value_by_any_spelling() {
        let mut h = Headers::new();
        h.insert("X-Custom".into(), vec!["a".into(), "b".into()]);
        assert_eq!(first(&h, "x-custom"), Some("a"));
        assert_eq!(first(&h, "missing"), None);
    }
}
