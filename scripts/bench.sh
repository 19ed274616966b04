#!/usr/bin/env bash
# `make bench`: makes sure the tools of the rows that run are installed, then runs the
# benchmark program built by `make build` (examples/bench/). It prints the report and
# writes it to target/bench-report.md; the logs go to target/bench-logs/.
# - wrk, the load generator of the small-request rows, the peer rows and the long row;
# - for the peer rows: nginx (their internal API; scripts/test-deps.sh, which the tests use
#   for the same nginx), and rathole, the tunnel wsp is compared with. rathole is a
#   benchmark peer, never a dependency of wsp: it is built from the crate registry into
#   target/bench-peers/ once (cargo install, a few minutes), and only run from there.
# BENCH_SECS (seconds per wrk run, default 10), BENCH_LONG=1 (the 1,000,000-request
# memory row), BENCH_ONLY (groups of rows, e.g. `register`) and BENCH_REGISTER_MAX (the
# registration row's WebSockets) pass through the environment.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# The version of rathole measured (examples/bench/rathole.rs says the same) and where it goes.
readonly RATHOLE_VERSION=0.5.0
readonly RATHOLE_ROOT=target/bench-peers

# True when BENCH_ONLY is empty (every group runs) or names group $1.
runs() {
    [ -z "${BENCH_ONLY:-}" ] || [[ ",${BENCH_ONLY// /}," == *,$1,* ]]
}

# wrk drives the small-request rows, the peer rows and the long row, and only those.
needs_wrk() {
    [ "${BENCH_LONG:-0}" = 1 ] || runs small || runs peers || runs console
}

if needs_wrk && ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk" >&2
    # A fresh machine may have no package lists yet: update once and try again.
    as_root apt-get install -y wrk || { as_root apt-get update && as_root apt-get install -y wrk; }
fi

if runs peers; then
    ./scripts/test-deps.sh
    if [ ! -x "$RATHOLE_ROOT/bin/rathole" ]; then
        # Its WebSocket transport needs TLS (native-tls: OpenSSL's headers, pkg-config).
        if ! pkg-config --exists openssl 2>/dev/null; then
            echo "bench: installing libssl-dev and pkg-config (to build rathole)" >&2
            as_root apt-get install -y libssl-dev pkg-config ||
                { as_root apt-get update && as_root apt-get install -y libssl-dev pkg-config; }
        fi
        echo "bench: building rathole $RATHOLE_VERSION into $RATHOLE_ROOT/ (a benchmark" \
            "peer, never a dependency of wsp; once, a few minutes)" >&2
        # Not --locked: its lock file pins time 0.3.29, which today's compiler rejects.
        # Only the features the rows use: the server, the client, the WebSocket transport.
        "${CARGO:-cargo}" install rathole --version "$RATHOLE_VERSION" --root "$RATHOLE_ROOT" \
            --no-default-features --features server,client,websocket
    fi
fi

exec ./target/release/examples/bench
