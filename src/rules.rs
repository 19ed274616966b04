//! Allow/deny rules (`blacklist` / `whitelist`): the raw YAML form and the compiled
//! [`RuleSet`] that both sides consult before relaying a request.
//!
//! A rule matches a request when every regular expression it sets matches: `method`
//! against the method, `url` against the destination URL, and each `headers` entry against
//! the first value of that header (a header that is absent does not match). Regexes are
//! unanchored, like Go's `regexp.MatchString`: write `^...$` to match the whole value.
//! [`RuleSet::check`] applies the blacklist first, then the whitelist. What a denial turns
//! into on the wire (526 on the server, 527 on the client) is the caller's business.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::headers::{canonical_key, first, Headers};

/// Upper bound on the compiled size of one rule regex, in bytes
/// ([`RegexBuilder::size_limit`]), so that a pattern like `(a{1000}){1000}` is refused at
/// start-up instead of taking memory. Real rules compile to a few KiB.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Upper bound on the number of rules in one list (`blacklist` or `whitelist`).
pub const MAX_RULES_PER_LIST: usize = 1024;

/// A rule as written in the YAML configuration file (keys exactly as wsp's).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Regex matched against the request method.
    pub method: Option<String>,
    /// Regex matched against the destination URL.
    pub url: Option<String>,
    /// Header name (any case) to a regex matched against that header's first value.
    pub headers: Option<BTreeMap<String, String>>,
}

/// A compiled rule: each regex it sets must match.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<Regex>,
    url: Option<Regex>,
    /// Canonical header name and the regex its first value must match.
    headers: Vec<(String, Regex)>,
}

/// The compiled `blacklist` and `whitelist`. The default (both empty) allows everything.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    blacklist: Vec<Rule>,
    whitelist: Vec<Rule>,
}

/// Why [`RuleSet::check`] refused a request. The `Display` text is wsp's error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// A blacklist rule matched.
    Forbidden,
    /// The whitelist is not empty and no rule of it matched.
    NotAllowed,
}

/// A rule list that could not be compiled.
#[derive(Debug)]
pub enum RuleError {
    /// A regex did not compile (bad syntax, or over [`REGEX_SIZE_LIMIT`]).
    InvalidRegex {
        /// Where the regex is, e.g. `blacklist[1].url` or `whitelist[0].headers.X-Foo`.
        field: String,
        /// The pattern as written.
        pattern: String,
        /// What the regex crate said.
        source: regex::Error,
    },
    /// A list has more than [`MAX_RULES_PER_LIST`] rules.
    TooManyRules {
        /// `blacklist` or `whitelist`.
        list: &'static str,
        /// How many rules it has.
        count: usize,
    },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Forbidden => f.write_str("Destination is forbidden"),
            Denied::NotAllowed => f.write_str("Destination is not allowed"),
        }
    }
}

impl std::error::Error for Denied {}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::InvalidRegex {
                field,
                pattern,
                source,
            } => write!(f, "{field}: invalid regex {pattern:?}: {source}"),
            RuleError::TooManyRules { list, count } => write!(
                f,
                "{list}: {count} rules, at most {MAX_RULES_PER_LIST} are allowed"
            ),
        }
    }
}

impl std::error::Error for RuleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuleError::InvalidRegex { source, .. } => Some(source),
            RuleError::TooManyRules { .. } => None,
        }
    }
}

impl RuleSet {
    /// Compiles both lists, each regex once.
    ///
    /// # Errors
    ///
    /// [`RuleError::InvalidRegex`] naming the first rule field whose regex does not compile,
    /// or [`RuleError::TooManyRules`].
    pub fn compile(blacklist: &[RawRule], whitelist: &[RawRule]) -> Result<RuleSet, RuleError> {
        Ok(RuleSet {
            blacklist: compile_list("blacklist", blacklist)?,
            whitelist: compile_list("whitelist", whitelist)?,
        })
    }

    /// True when there is no rule at all (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.blacklist.is_empty() && self.whitelist.is_empty()
    }

    /// Decides whether a request may go to `url`.
    ///
    /// # Errors
    ///
    /// [`Denied::Forbidden`] when any blacklist rule matches (checked first), else
    /// [`Denied::NotAllowed`] when the whitelist is not empty and none of its rules matches.
    pub fn check(&self, method: &str, url: &str, headers: &Headers) -> Result<(), Denied> {
        if self
            .blacklist
            .iter()
            .any(|rule| rule.matches(method, url, headers))
        {
            return Err(Denied::Forbidden);
        }
        if !self.whitelist.is_empty()
            && !self
                .whitelist
                .iter()
                .any(|rule| rule.matches(method, url, headers))
        {
            return Err(Denied::NotAllowed);
        }
        Ok(())
    }
}

impl Rule {
    /// Compiles one raw rule; `name` (`blacklist[1]`) prefixes the field in errors.
    fn compile(name: &str, raw: &RawRule) -> Result<Rule, RuleError> {
        let regex = |field: &str, pattern: &Option<String>| {
            pattern
                .as_deref()
                .map(|p| compile_regex(&format!("{name}.{field}"), p))
                .transpose()
        };
        let mut headers = Vec::new();
        for (header, pattern) in raw.headers.iter().flatten() {
            let regex = compile_regex(&format!("{name}.headers.{header}"), pattern)?;
            headers.push((canonical_key(header), regex));
        }
        Ok(Rule {
            method: regex("method", &raw.method)?,
            url: regex("url", &raw.url)?,
            headers,
        })
    }

    /// True when every regex this rule sets matches.
    pub fn matches(&self, method: &str, url: &str, headers: &Headers) -> bool {
        self.method.as_ref().is_none_or(|re| re.is_match(method))
            && self.url.as_ref().is_none_or(|re| re.is_match(url))
            && self
                .headers
                .iter()
                .all(|(name, re)| first(headers, name).is_some_and(|value| re.is_match(value)))
    }
}

fn compile_list(list: &'static str, raws: &[RawRule]) -> Result<Vec<Rule>, RuleError> {
    if raws.len() > MAX_RULES_PER_LIST {
        return Err(RuleError::TooManyRules {
            list,
            count: raws.len(),
        });
    }
    raws.iter()
        .enumerate()
        .map(|(index, raw)| Rule::compile(&format!("{list}[{index}]"), raw))
        .collect()
}

fn compile_regex(field: &str, pattern: &str) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|source| RuleError::InvalidRegex {
            field: field.to_string(),
            pattern: pattern.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Option<&str>, url: Option<&str>, headers: &[(&str, &str)]) -> RawRule {
        RawRule {
            method: method.map(String::from),
            url: url.map(String::from),
            headers: (!headers.is_empty()).then(|| {
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (canonical_key(k), vec![v.to_string()]))
            .collect()
    }

    fn compile(black: &[RawRule], white: &[RawRule]) -> RuleSet {
        match RuleSet::compile(black, white) {
            Ok(rules) => rules,
            Err(e) => panic!("rules should compile: {e}"),
        }
    }

    #[test]
    fn empty_set_allows_everything() {
        let rules = RuleSet::default();
        assert!(rules.is_empty());
        assert_eq!(rules.check("GET", "http://x/", &Headers::new()), Ok(()));
    }

    #[test]
    fn blacklist_denies_matching_url() {
        let rules = compile(&[rule(None, Some("^http(s)?://google.*"), &[])], &[]);
        assert!(!rules.is_empty());
        let none = Headers::new();
        assert_eq!(
            rules.check("GET", "https://google.com/", &none),
            Err(Denied::Forbidden)
        );
        assert_eq!(rules.check("GET", "http://example.com/", &none), Ok(()));
    }

    #[test]
    fn whitelist_allows_only_matching_requests() {
        let rules = compile(&[], &[rule(Some("^GET$"), Some("^http(s)?://.*$"), &[])]);
        let none = Headers::new();
        assert_eq!(rules.check("GET", "http://api/x", &none), Ok(()));
        assert_eq!(
            rules.check("POST", "http://api/x", &none),
            Err(Denied::NotAllowed)
        );
        assert_eq!(
            rules.check("GET", "ftp://api/x", &none),
            Err(Denied::NotAllowed)
        );
    }

    #[test]
    fn regexes_are_unanchored() {
        let rules = compile(&[rule(Some("GE"), Some("internal"), &[])], &[]);
        assert_eq!(
            rules.check("GET", "http://internal.lan/", &Headers::new()),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn header_rules_use_first_value_and_any_name_case() {
        let rules = compile(
            &[rule(Some(".*"), None, &[("X-CUSTOM-HEADER", "^value$")])],
            &[],
        );
        let url = "http://x/";
        let matching = headers(&[("x-custom-header", "value")]);
        assert_eq!(rules.check("GET", url, &matching), Err(Denied::Forbidden));
        let other = headers(&[("X-Custom-Header", "other")]);
        assert_eq!(rules.check("GET", url, &other), Ok(()));
        let mut second = Headers::new();
        second.insert(
            "X-Custom-Header".into(),
            vec!["other".into(), "value".into()],
        );
        assert_eq!(rules.check("GET", url, &second), Ok(()));
    }

    #[test]
    fn absent_header_does_not_match() {
        let rules = compile(&[rule(None, None, &[("X-Token", ".*")])], &[]);
        assert_eq!(rules.check("GET", "http://x/", &Headers::new()), Ok(()));
        let present = headers(&[("X-Token", "")]);
        assert_eq!(
            rules.check("GET", "http://x/", &present),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn method_rules() {
        let rules = compile(&[rule(Some("^(DELETE|PUT)$"), None, &[])], &[]);
        let none = Headers::new();
        assert_eq!(
            rules.check("DELETE", "http://x/", &none),
            Err(Denied::Forbidden)
        );
        assert_eq!(rules.check("GET", "http://x/", &none), Ok(()));
    }

    #[test]
    fn blacklist_is_checked_before_whitelist() {
        let rules = compile(
            &[rule(None, Some("secret"), &[])],
            &[rule(None, Some("^http://"), &[])],
        );
        let none = Headers::new();
        assert_eq!(
            rules.check("GET", "http://api/secret", &none),
            Err(Denied::Forbidden)
        );
        assert_eq!(rules.check("GET", "http://api/public", &none), Ok(()));
        assert_eq!(
            rules.check("GET", "https://api/public", &none),
            Err(Denied::NotAllowed)
        );
    }

    #[test]
    fn bad_regex_names_rule_and_field() {
        let black = [rule(None, Some("^ok$"), &[]), rule(None, Some("("), &[])];
        let err = RuleSet::compile(&black, &[]).err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.starts_with("blacklist[1].url: invalid regex \"(\": "),
            "{msg}"
        );

        let white = [rule(None, None, &[("X-A", "[")])];
        let err = RuleSet::compile(&[], &white).err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.starts_with("whitelist[0].headers.X-A: invalid regex"),
            "{msg}"
        );
    }

    #[test]
    fn oversized_regex_is_refused() {
        let huge = rule(None, Some("(a{1000}){1000}"), &[]);
        let err = RuleSet::compile(&[huge], &[]).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().starts_with("blacklist[0].url"));
    }

    #[test]
    fn too_many_rules_are_refused() {
        let many = vec![RawRule::default(); MAX_RULES_PER_LIST + 1];
        let err = RuleSet::compile(&[], &many).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().starts_with("whitelist: 1025 rules"));
    }
}
