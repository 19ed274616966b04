//! The client keeps its pool up: when the server goes away and comes back on the same
//! address, the client registers again by itself.

use crate::support::*;

#[test]
fn client_reconnects_after_the_server_restarts() {
    let upstream = upstream();
    let first = Server::start(&[]);
    let client = start_client(&first, &["--pool-idle-size", "2"]);
    wait_relay_ready(&first, &upstream);
    let port = first.addr.port().to_string();
    drop(first);

    let second = Server::start(&["--port", &port]);
    assert_eq!(second.addr.port().to_string(), port);
    // No request can succeed unless the client registered again with the new process.
    wait_relay_ready(&second, &upstream);
    let destination = format!("http://{}/hello", upstream.addr());
    let reply = relay(&second, "GET", &destination, &[], None);
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello world"));
    drop(client);
}
