//! Requests relayed end to end: statuses, headers and bodies pass through unchanged.

use crate::support::*;

#[test]
fn get_hello_is_relayed() {
    let stack = Stack::start(&[], &[]);
    let reply = stack.relay("GET", "/hello", &[], None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello world");
    assert_eq!(reply.header("content-length"), Some("11"));
}

#[test]
fn statuses_and_headers_pass_through() {
    let stack = Stack::start(&[], &[]);
    let reply = stack.relay("GET", "/header", &[], None);
    assert_eq!(reply.header("hello"), Some("world"));
    assert_eq!(stack.relay("GET", "/status/404", &[], None).status, 404);
    let fail = stack.relay("GET", "/fail", &[], None);
    assert_eq!((fail.status, fail.text().as_str()), (500, "fail"));
    let redirect = stack.relay("GET", "/redirect", &[], None);
    assert_eq!(redirect.status, 302, "a redirect must not be followed");
    assert_eq!(redirect.header("location"), Some("/hello"));
    assert_eq!(redirect.text(), "redirect");
}

/// An internal API named by host name (`localhost`, from `/etc/hosts`: no DNS) is reached,
/// and stays reachable over the client's pooled connection: the host is resolved when a
/// connection is opened, not for every request.
#[test]
fn a_destination_named_by_host_name_is_relayed_again_and_again() {
    let stack = Stack::start(&[], &[]);
    let port = stack.upstream.addr().port();
    let destination = format!("http://localhost:{port}/hello");
    for _ in 0..5 {
        let reply = relay(&stack.server, "GET", &destination, &[], None);
        assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    }
}
