//! Allow/deny rules (`blacklist` / `whitelist`): the raw YAML form and the compiled
//! [`RuleSet`] that both sides consult before relaying a request.
//!
//! A rule matches a request when every regular expression it sets matches: `method`
//! against the method, `url` against the destination URL, and each `headers` entry against
//! the first value of that header (a header that is absent does not match). Regexes are
//! unanchored, like Go's `regexp.MatchString`: write `^...$` to match the whole value.
//! [`RuleSet::check`] applies the blacklist first, then the whitelist. What a denial turns
//! into on the wire (526 on the server, 527 on the client) is the caller's business; its
//! text, [`Refusal`], is made here: wsp's words first (`Destination is forbidden`, what Go's
//! wsp answers and scripts may match), then which side, which list and which rule refused
//! which request, so that a user who sees it knows which file to edit.

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

/// Why [`RuleSet::check`] refused a request. The `Display` text is wsp's error message
/// alone; [`Refusal`] is the whole text a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The blacklist rule of this index matched (from 0: `blacklist[0]` is the first, as in
    /// configuration errors).
    Forbidden(usize),
    /// The whitelist is not empty and no rule of it matched.
    NotAllowed,
}

/// Whose rules refused a request: named in the refusal, as both sides have rules and a
/// caller cannot tell a server's 526 from a file it never saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server's `blacklist` / `whitelist` (answered 526).
    Server,
    /// The client's (answered 527).
    Client,
}

/// The text of a refusal: `Destination is forbidden: wsp server blacklist[1] matches GET
/// http://...`, or `Destination is not allowed: wsp client whitelist: no rule matches POST
/// http://...`.
#[derive(Clone, Copy, Debug)]
pub struct Refusal<'a> {
    pub side: Side,
    pub denied: Denied,
    pub method: &'a str,
    pub url: &'a str,
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
            Denied::Forbidden(_) => f.write_str("Destination is forbidden"),
            Denied::NotAllowed => f.write_str("Destination is not allowed"),
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Server => f.write_str("wsp server"),
            Side::Client => f.write_str("wsp client"),
        }
    }
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Refusal {
            side,
            denied,
            method,
            url,
        } = self;
        match denied {
            Denied::Forbidden(rule) => {
                write!(
                    f,
                    "{denied}: {side} blacklist[{rule}] matches {method} {url}"
                )
            }
            Denied::NotAllowed => {
                write!(
                    f,
                    "{denied}: {side} whitelist: no rule matches {method} {url}"
                )
            }
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

    /// [`RuleSet::check`] for `side`, a refusal carrying the whole text a caller gets.
    ///
    /// # Errors
    ///
    /// As [`RuleSet::check`], with the side and the request for the text.
    pub fn refusal<'a>(
        &self,
        side: Side,
        method: &'a str,
        url: &'a str,
        headers: &Headers,
    ) -> Result<(), Refusal<'a>> {
        self.check(method, url, headers).map_err(|denied| Refusal {
            side,
            denied,
            method,
            url,
        })
    }

    /// Decides whether a request may go to `url`.
    ///
    /// # Errors
    ///
    /// [`Denied::Forbidden`] with the first blacklist rule that matches (checked first),
    /// else [`Denied::NotAllowed`] when the whitelist is not empty and none of its rules
    /// matches.
    pub fn check(&self, method: &str, url: &str, headers: &Headers) -> Result<(), Denied> {
        if let Some(rule) = self
            .blacklist
            .iter()
            .position(|rule| rule.matches(method, url, headers))
        {
            return Err(Denied::Forbidden(rule));
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
mod tests;
