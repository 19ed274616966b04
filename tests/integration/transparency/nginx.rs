//! The same cases with a real server as the internal API: nginx, relaying to the scripted
//! upstream (so its answers are nginx's framing of the scripted ones: its chunking, its
//! keep-alive, its own `Server` and `Date`), plus locations nginx answers itself (static
//! files with `sendfile`, ranges, conditional requests, gzip, `return`). Direct and
//! through wsp, every caller reaches the same nginx.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::cases::{self, Case};
use super::upstream::Upstream;
use super::{Harness, QUICK_WAIT, SLOW_WAIT};
use crate::nginx::run::{write, Nginx};

/// nginx in front of `upstream`, with the static files and `return`s of [`native`].
fn site(listen: SocketAddr, dir: &Path, upstream: SocketAddr) -> String {
    let text: String = (0..400)
        .map(|i| format!("line {i} of a text file nginx serves\n"))
        .collect();
    write(&dir.join("page.txt"), &text);
    let dir = dir.display();
    format!(
        "server {{\n\
         \x20   listen {listen};\n\
         \x20   location / {{\n\
         \x20       proxy_pass http://{upstream};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20       proxy_buffering off;\n\
         \x20       proxy_request_buffering off;\n\
         \x20   }}\n\
         \x20   location /native/ {{ alias {dir}/; if_modified_since before; }}\n\
         \x20   location /gzip/ {{ alias {dir}/; gzip on; gzip_types text/plain; gzip_min_length 1; }}\n\
         \x20   location = /return-204 {{ return 204; }}\n\
         \x20   location = /return-201 {{ add_header Location /things/1 always; return 201 \"\"; }}\n\
         \x20   location = /return-302 {{ return 302 /elsewhere; }}\n\
         }}\n"
    )
}

/// Requests nginx answers by itself.
fn native() -> Vec<Case> {
    let native = |name, method, target| Case::new(name, method, Vec::new()).target(target);
    let get = |name, target| native(name, "GET", target);
    vec![
        get("nginx-static", "/native/page.txt"),
        native("nginx-static-head", "HEAD", "/native/page.txt"),
        get("nginx-static-range", "/native/page.txt").header("Range", "bytes=10-99"),
        get("nginx-static-304", "/native/page.txt")
            .header("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        get("nginx-404", "/native/missing.txt"),
        get("nginx-gzip-chunked", "/gzip/page.txt").header("Accept-Encoding", "gzip"),
        get("nginx-return-204", "/return-204"),
        native("nginx-return-201", "POST", "/return-201").body(b"{}"),
        get("nginx-return-302", "/return-302"),
    ]
}

/// Every quick and slow case with nginx as the internal API, and nginx's own answers.
#[test]
fn nginx_as_the_internal_api() {
    let mut scripted = cases::quick();
    scripted.extend(cases::slow());
    let upstream = Upstream::start(super::scripts(&scripted));
    let at = upstream.addr;
    let nginx = Nginx::start_site(|listen, dir| site(listen, dir, at));
    let harness = Arc::new(Harness::around(upstream, nginx.addr));
    harness.check_all(native(), QUICK_WAIT);
    harness.check_all(scripted, SLOW_WAIT);
}
