//! Bodies stream through both processes: a 1 GiB download and a 1 GiB upload pass with
//! the server's and the client's peak resident memory (VmHWM) each under 64 MiB.

use std::io::Read;

use crate::support::routes::{Fnv1a, PatternReader, PATTERN_PERIOD};
use crate::support::*;

const GIB: u64 = 1 << 30;
/// The ceiling on each process's peak RSS while relaying a 1 GiB body.
const MAX_PEAK_RSS_KIB: u64 = 64 * 1024;

fn assert_flat_memory(stack: &Stack, what: &str) {
    let server = stack.server.proc.peak_rss_kib();
    let client = stack.client.peak_rss_kib();
    eprintln!("{what}: peak RSS server {server} KiB, client {client} KiB");
    assert!(server < MAX_PEAK_RSS_KIB, "{what}: server peak RSS {server} KiB");
    assert!(client < MAX_PEAK_RSS_KIB, "{what}: client peak RSS {client} KiB");
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
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut position = 0u64;
    loop {
        let n = reader.read(&mut buf).expect("read download");
        if n == 0 {
            break;
        }
        let first = buf[0];
        assert_eq!(u64::from(first), position % PATTERN_PERIOD, "byte {position}");
        assert_eq!(buf[n - 1] as u64, (position + n as u64 - 1) % PATTERN_PERIOD);
        position += n as u64;
    }
    assert_eq!(position, GIB);
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
    let mut expected = Fnv1a::default();
    let mut reader = PatternReader::new(GIB);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).expect("pattern");
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    assert_eq!(hash, Some(format!("{:016x}", expected.finish())));
    assert_flat_memory(&stack, "1 GiB upload");
}
