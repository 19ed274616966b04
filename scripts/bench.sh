#!/usr/bin/env bash
# `make bench`: makes sure wrk (the load generator of the small-request rows) is installed
# when those rows or the long row run,
# then runs the benchmark program built by `make build` (examples/bench/). It prints the
# report and writes it to target/bench-report.md; the logs go to target/bench-logs/.
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

# wrk drives the small-request rows and the long row, and only those.
needs_wrk() {
    [ "${BENCH_LONG:-0}" = 1 ] || [ -z "${BENCH_ONLY:-}" ] || [[ ",${BENCH_ONLY// /}," == *,small,* ]]
}

if needs_wrk && ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk" >&2
    # A fresh machine may have no package lists yet: update once and try again.
    as_root apt-get install -y wrk || { as_root apt-get update && as_root apt-get install -y wrk; }
fi

exec ./target/release/examples/bench
