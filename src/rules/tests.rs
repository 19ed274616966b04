//! Unit tests of the rules: matching, the order of the lists, refusal texts, limits.

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
        Err(Denied::Forbidden(0))
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
        Err(Denied::Forbidden(0))
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
    assert_eq!(
        rules.check("GET", url, &matching),
        Err(Denied::Forbidden(0))
    );
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
        Err(Denied::Forbidden(0))
    );
}

#[test]
fn method_rules() {
    let rules = compile(&[rule(Some("^(DELETE|PUT)$"), None, &[])], &[]);
    let none = Headers::new();
    assert_eq!(
        rules.check("DELETE", "http://x/", &none),
        Err(Denied::Forbidden(0))
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
        Err(Denied::Forbidden(0))
    );
    assert_eq!(rules.check("GET", "http://api/public", &none), Ok(()));
    assert_eq!(
        rules.check("GET", "https://api/public", &none),
        Err(Denied::NotAllowed)
    );
}

#[test]
fn the_first_matching_blacklist_rule_is_named() {
    let rules = compile(
        &[
            rule(None, Some("never"), &[]),
            rule(Some("^GET$"), None, &[]),
        ],
        &[],
    );
    let none = Headers::new();
    assert_eq!(
        rules.check("GET", "http://x/", &none),
        Err(Denied::Forbidden(1))
    );
}

#[test]
fn refusals_name_side_list_rule_and_request() {
    let refusal = |side, denied| {
        let (method, url) = ("POST", "http://127.0.0.1:8081/post");
        Refusal {
            side,
            denied,
            method,
            url,
        }
        .to_string()
    };
    assert_eq!(
        refusal(Side::Server, Denied::NotAllowed),
        "Destination is not allowed: wsp server whitelist: no rule matches \
         POST http://127.0.0.1:8081/post"
    );
    assert_eq!(
        refusal(Side::Client, Denied::Forbidden(2)),
        "Destination is forbidden: wsp client blacklist[2] matches \
         POST http://127.0.0.1:8081/post"
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
