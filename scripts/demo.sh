#!/usr/bin/env bash
# `make demo`: the whole chain on loopback, from the release builds. It starts the test API
# (127.0.0.1:8081), wsp_server (127.0.0.1:8080, examples/wsp_server.cfg) and wsp_client
# (examples/wsp_client.cfg, which dials the server), waits until a request relayed through
# them comes back, shows it, and keeps everything running until Ctrl-C. Each program logs to
# target/demo/<name>.log. Readiness is the relayed answer itself, polled up to a deadline:
# there is no sleep that stands for "probably started".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly API_PORT=8081
readonly SERVER_PORT=8080
readonly DEADLINE_SECONDS=30
readonly LOG_DIR=target/demo
readonly TEST_API=target/release/examples/test_api
readonly SERVER=target/release/wsp_server
readonly CLIENT=target/release/wsp_client
readonly SERVER_CONFIG=examples/wsp_server.cfg
readonly CLIENT_CONFIG=examples/wsp_client.cfg
readonly DESTINATION="http://127.0.0.1:$API_PORT/hello"
readonly PROXY_URL="http://127.0.0.1:$SERVER_PORT/request"

names=()
pids=()

die() {
    echo "demo: $*" >&2
    exit 1
}

# Kills the programs this script started (by pid) and waits for them; runs on every exit.
cleanup() {
    trap - EXIT INT TERM
    if [ "${#pids[@]}" -gt 0 ]; then
        echo "demo: stopping ${names[*]}" >&2
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True when something accepts connections on 127.0.0.1:$1.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts "$@" in the background, logging to $LOG_DIR/$name.log.
start() {
    local name=$1
    shift
    "$@" >"$LOG_DIR/$name.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
    echo "demo: started $name (pid $!): $*" >&2
}

# Fails, with the end of its log, when one of the started programs has exited.
check_running() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "demo: ${names[$i]} has exited; end of $LOG_DIR/${names[$i]}.log:" >&2
            tail -n 20 "$LOG_DIR/${names[$i]}.log" >&2 || true
            exit 1
        fi
    done
}

relay_hello() {
    curl -s --max-time 5 -H "X-PROXY-DESTINATION: $DESTINATION" "$PROXY_URL"
}

for file in "$TEST_API" "$SERVER" "$CLIENT"; do
    [ -x "$file" ] || die "$file is missing: run 'make demo' (or 'make build') first"
done
for file in "$SERVER_CONFIG" "$CLIENT_CONFIG"; do
    [ -f "$file" ] || die "$file is missing"
done
command -v curl >/dev/null 2>&1 || die "curl is needed"
for port in "$API_PORT" "$SERVER_PORT"; do
    if port_busy "$port"; then
        die "127.0.0.1:$port is already in use: stop whatever listens there first"
    fi
done
mkdir -p "$LOG_DIR"

start test_api "$TEST_API" --host 127.0.0.1 --port "$API_PORT"
start wsp_server "$SERVER" -config "$SERVER_CONFIG"
start wsp_client "$CLIENT" -config "$CLIENT_CONFIG"

deadline=$((SECONDS + DEADLINE_SECONDS))
until [ "$(relay_hello 2>/dev/null || true)" = "hello world" ]; do
    check_running
    if [ "$SECONDS" -ge "$deadline" ]; then
        die "no 'hello world' through the proxy after ${DEADLINE_SECONDS}s; logs in $LOG_DIR/"
    fi
    sleep 0.2
done

echo
echo "\$ curl -s -H 'X-PROXY-DESTINATION: $DESTINATION' $PROXY_URL"
relay_hello
echo
echo
echo "test_api, wsp_server and wsp_client keep running until Ctrl-C (logs in $LOG_DIR/)."

# Returns when a program exits (then says which) or when Ctrl-C runs the INT trap.
wait -n "${pids[@]}" || true
check_running
die "a program exited"
