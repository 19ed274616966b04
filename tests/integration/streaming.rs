//! Bodies stream through both processes: a 1 GiB download and a 1 GiB upload pass with
//! the server's and the client's peak resident memory (VmHWM) each under 64 MiB.

use crate::support::routes::PatternReader;
use crate::support::*;

const GIB: u64 = 1 << 30;
/// The ceiling on each process's peak RSS while relaying a 1 GiB body.
const MAX_PEAK_RSS_KIB: u64 = 64 * 1024;

fn assert_flat_memory(stack: &Stack, what: &str) {
    let server = stack.server.proc.peak_rss_kib();
    let client = stack.client.peak_rss_kib();
    eprintln!("{what}: peak RSS server {server} KiB, client {client} KiB");
    assert!(
        server < MAX_PEAK_RSS_KIB,
        "{what}: server peak RSS {server} KiB"
    );
    assert!(
        client < MAX_PEAK_RSS_KIB,
        "{what}: client peak RSS {client} KiB"
    );
}

#[test]
fn one_gib_download_streams_with_flat_memory() {
    let stack = Stack::start(&[], &[]);
    let response = caller()
        .get(stack.server.request_url())
        .header("X-PROXY-DESTINATION", stack.url(&format!("/bytes?n={GIB}")))
        .call()
        .expect("download through the proxy");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(read_pattern(response.into_body().into_reader()), GIB);
    assert_flat_memory(&stack, "1 GiB download");
}

#[test]
fn one_gib_upload_streams_with_flat_memory() {
    let stack = Stack::start(&[], &[]);
    let mut body = PatternReader::new(GIB);
    let response = caller()
        .post(stack.server.request_url())
        .header("X-PROXY-DESTINATION", stack.url("/upload-count"))
        .header("Content-Length", GIB.to_string())
        .send(ureq::SendBody::from_reader(&mut body))
        .expect("upload through the proxy");
    assert_eq!(response.status().as_u16(), 200);
    let hash = response
        .headers()
        .get("x-body-fnv")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let count = response.into_body().read_to_string().expect("count");
    assert_eq!(count.trim(), GIB.to_string());
    assert_eq!(hash, Some(pattern_fnv(GIB)));
    assert_flat_memory(&stack, "1 GiB upload");
}
