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
