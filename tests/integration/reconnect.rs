//! The client keeps its pool up: when the server goes away and comes back on the same
//! address, the client registers again by itself, and its log says so once per event (not
//! once per WebSocket).

use crate::support::*;

#[test]
fn client_reconnects_after_the_server_restarts() {
    let upstream = upstream();
    let port = restartable_port().to_string();
    let first = Server::start(&["--port", &port]);
    let client = start_client(&first, &["--pool-idle-size", "2"]);
    wait_relay_ready(&first, &upstream);
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

#[test]
fn the_client_logs_when_its_pool_is_up_lost_and_back() {
    let port = restartable_port().to_string();
    let first = Server::start(&["--port", &port]);
    let target = first.register_url();
    let client = start_client(&first, &["--pool-idle-size", "3"]);
    client.wait_log(&format!("connected to {target}: 3 connections"));
    let info_lines = |needle: &str| {
        let log = client.log.lock();
        let lines = log.lines().filter(|l| l.contains(needle));
        lines.map(str::to_string).collect::<Vec<_>>()
    };
    // One line for the pool, none per WebSocket.
    assert_eq!(info_lines("connected to").len(), 1, "{}", client.log.lock());

    drop(first);
    let lost = client.wait_log("lost every connection to");
    assert!(lost.contains("[WARN]") && lost.contains(&target), "{lost}");

    let _second = Server::start(&["--port", &port]);
    let back = client.wait_log(&format!("connected to {target} again after "));
    assert!(
        back.contains("[INFO]") && back.ends_with(": 3 connections"),
        "{back}"
    );
    assert_eq!(info_lines("connected to").len(), 2, "{}", client.log.lock());
    assert_eq!(info_lines("lost every").len(), 1, "{}", client.log.lock());
}
