//! `blacklist` / `whitelist` rules read from configuration files: on the server (refused
//! with 526) and on the client (refused with 527, the connection staying usable).

use crate::config::ConfigFile;
use crate::support::*;

/// The start of the text of a refusal by blacklist rule `rule` of `side` (`server` or
/// `client`); the request (`GET http://...`) follows.
fn forbidden(side: &str, rule: usize) -> String {
    format!("Destination is forbidden: wsp {side} blacklist[{rule}] matches ")
}

/// The start of the text of a refusal by `side`'s whitelist.
fn not_allowed(side: &str) -> String {
    format!("Destination is not allowed: wsp {side} whitelist: no rule matches ")
}

/// One mebibyte: a request body far larger than any socket buffer.
const MIB: usize = 1 << 20;

/// A stack whose server reads `rules` from its configuration file; the file lives as long
/// as the stack.
fn server_with_rules(rules: &str) -> (Stack, ConfigFile) {
    let file = ConfigFile::server(rules);
    let upstream = upstream();
    let server = Server::start_raw(&["--config", file.path()]);
    let client = start_client(&server, &[]);
    wait_relay_ready(&server, &upstream);
    let stack = Stack {
        upstream,
        server,
        client,
    };
    (stack, file)
}

/// A stack whose client reads `rules` (and any other keys) from its configuration file.
fn client_with_rules(rules: &str) -> (Stack, ConfigFile) {
    let upstream = upstream();
    let server = Server::start(&[]);
    let file = ConfigFile::client(&server, rules);
    let client = start_client_raw(&["--config", file.path()]);
    wait_relay_ready(&server, &upstream);
    let stack = Stack {
        upstream,
        server,
        client,
    };
    (stack, file)
}

/// Asserts a refusal with `status` whose text starts with `why` (see [`forbidden`],
/// [`not_allowed`]) and ends with a newline.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, why: &str) {
    let text = reply.text();
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(
        text.starts_with(why),
        "{text:?} does not start with {why:?}"
    );
    assert!(text.ends_with('\n'), "{text:?}");
}

#[track_caller]
fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn server_blacklist_forbids_matching_urls_only() {
    let (stack, _file) =
        server_with_rules("blacklist :\n - url : \"/fail$\"\n - url : \"/status/4[0-9]{2}$\"\n");
    let fail = stack.relay("GET", "/fail", &[], None);
    let whole = format!("{}GET {}\n", forbidden("server", 0), stack.url("/fail"));
    assert_eq!((fail.status, fail.text()), (526, whole));
    let not_found = stack.relay("GET", "/status/404", &[], None);
    assert_refused(&not_found, 526, &forbidden("server", 1));
    assert_ok(&stack.relay("GET", "/status/200", &[], None));
    let hello = stack.relay("GET", "/hello", &[], None);
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello world"));

    // A refused request with a big body is still answered, and the next one relayed.
    let body = random_bytes(MIB, 1);
    let denied = stack.relay("POST", "/fail", &[], Some(&body));
    assert_refused(&denied, 526, &forbidden("server", 0));
    let echoed = stack.relay("POST", "/post", &[], Some(b"after"));
    assert_eq!(
        (echoed.status, echoed.body.as_slice()),
        (200, &b"after"[..])
    );
}

#[test]
fn server_whitelist_allows_only_matching_rules() {
    let (stack, _file) = server_with_rules(
        "whitelist :\n - url : \"/hello$\"\n - method : \"^POST$\"\n   url : \"/post$\"\n",
    );
    assert_ok(&stack.relay("GET", "/hello", &[], None));
    let echoed = stack.relay("POST", "/post", &[], Some(b"allowed"));
    assert_eq!(echoed.body, b"allowed");
    assert_refused(
        &stack.relay("GET", "/header", &[], None),
        526,
        &not_allowed("server"),
    );
    assert_refused(
        &stack.relay("GET", "/post", &[], None),
        526,
        &not_allowed("server"),
    );
    let unanchored = stack.relay("GET", "/hello/more", &[], None);
    assert_refused(&unanchored, 526, &not_allowed("server"));
}

#[test]
fn server_method_and_header_rules_allow_and_deny() {
    let (stack, _file) = server_with_rules(concat!(
        "whitelist :\n",
        " - method : \"^(GET|PUT)$\"\n",
        "   url : \"/hello$\"\n",
        " - headers :\n",
        "     X-Custom : \"^yes$\"\n",
        "blacklist :\n",
        " - method : \"^DELETE$\"\n",
        " - headers :\n",
        "     X-Block : \"^1$\"\n",
    ));
    let yes = [("X-Custom", "yes")];
    // The method rule.
    assert_ok(&stack.relay("PUT", "/hello", &[], None));
    assert_refused(
        &stack.relay("POST", "/hello", &[], None),
        526,
        &not_allowed("server"),
    );
    // The header rule, whatever the method and URL; the value must match whole.
    assert_ok(&stack.relay("POST", "/hello", &yes, None));
    assert_ok(&stack.relay("GET", "/header", &yes, None));
    assert_refused(
        &stack.relay("GET", "/header", &[], None),
        526,
        &not_allowed("server"),
    );
    let almost = [("X-Custom", "yes!")];
    assert_refused(
        &stack.relay("GET", "/header", &almost, None),
        526,
        &not_allowed("server"),
    );
    // Blacklisted method and header, though a whitelist rule matches.
    let delete = stack.relay("DELETE", "/hello", &yes, None);
    assert_refused(&delete, 526, &forbidden("server", 0));
    let blocked = stack.relay("GET", "/hello", &[("x-block", "1")], None);
    assert_refused(&blocked, 526, &forbidden("server", 1));
    assert_ok(&stack.relay("GET", "/hello", &[("x-block", "10")], None));
}

#[test]
fn server_blacklist_wins_over_whitelist() {
    let (stack, _file) =
        server_with_rules("blacklist :\n - url : \"deny=1\"\nwhitelist :\n - url : \"/hello\"\n");
    assert_ok(&stack.relay("GET", "/hello?deny=0", &[], None));
    let both = stack.relay("GET", "/hello?deny=1", &[], None);
    assert_refused(&both, 526, &forbidden("server", 0));
    assert_refused(
        &stack.relay("GET", "/header", &[], None),
        526,
        &not_allowed("server"),
    );
}

#[test]
fn client_rules_refuse_with_527() {
    let (stack, _file) = client_with_rules(concat!(
        "blacklist :\n",
        " - url : \"/fail$\"\n",
        " - method : \"^DELETE$\"\n",
        " - headers :\n",
        "     X-Custom : \"^yes$\"\n",
        "whitelist :\n",
        " - url : \"/(hello|fail)$\"\n",
        " - method : \"^POST$\"\n",
        "   url : \"/post$\"\n",
    ));
    assert_ok(&stack.relay("GET", "/hello", &[], None));
    // Blacklisted, though whitelisted too.
    assert_refused(
        &stack.relay("GET", "/fail", &[], None),
        527,
        &forbidden("client", 0),
    );
    assert_refused(
        &stack.relay("DELETE", "/hello", &[], None),
        527,
        &forbidden("client", 1),
    );
    let yes = stack.relay("GET", "/hello", &[("X-Custom", "yes")], None);
    assert_refused(&yes, 527, &forbidden("client", 2));
    assert_ok(&stack.relay("GET", "/hello", &[("X-Custom", "no")], None));
    // Not whitelisted: another URL, or the right URL with another method.
    let header = stack.relay("GET", "/header", &[], None);
    let whole = format!("{}GET {}\n", not_allowed("client"), stack.url("/header"));
    assert_eq!((header.status, header.text()), (527, whole));
    assert_refused(
        &stack.relay("GET", "/post", &[], None),
        527,
        &not_allowed("client"),
    );
    let echoed = stack.relay("POST", "/post", &[], Some(b"posted"));
    assert_eq!(
        (echoed.status, echoed.body.as_slice()),
        (200, &b"posted"[..])
    );
}

#[test]
fn client_refusal_with_a_body_keeps_the_connection() {
    // One connection in all, so every request below goes over the same WebSocket.
    let (stack, _file) = client_with_rules(concat!(
        "poolidlesize : 1\n",
        "poolmaxsize : 1\n",
        "blacklist :\n",
        " - url : \"/upload-count$\"\n",
    ));
    for round in 0..3u64 {
        let body = random_bytes(MIB, round + 1);
        let denied = stack.relay("POST", "/upload-count", &[], Some(&body));
        assert_refused(&denied, 527, &forbidden("client", 0));
        let next = stack.relay("POST", "/post", &[], Some(&body[..1000]));
        assert_eq!(next.status, 200, "round {round}: {}", next.text());
        assert_eq!(next.body, &body[..1000], "round {round}");
    }
    let log = stack.client.log.lock().clone();
    assert!(!log.contains("connection closed"), "{log}");
}
