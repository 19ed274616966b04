#!/usr/bin/env bash
# `make demo`: the whole chain on loopback, from the release builds. It starts the test API
# (127.0.0.1:8081), wsp_server (127.0.0.1:8080, examples/wsp_server.cfg) and wsp_client
# (examples/wsp_client.cfg, which dials the server), waits until a request relayed through
# them comes back, shows it, and keeps everything running until Ctrl-C. Each program logs to
# target/demo/<name>.log. Readiness is the relayed answer itself, polled up to a deadline:
# there is no sleep that stands for "probably started".
#
# Exit status: 0 for a stop asked for (Ctrl-C, SIGTERM), 1 for a failure (a program exited
# by itself, no answer in time). Ctrl-C reaches every process of the group at once, so a
# stop shows in two ways: this script's INT trap, or, when the script was started with
# SIGINT ignored (a background job of a non-interactive shell: the trap cannot be set
# then), a program ending the way a stop ends it: wsp_server and wsp_client exit 0 after
# their graceful shutdown (they exit 0 on nothing else), and a program killed by SIGINT or
# SIGTERM exits 130 or 143. Anything else is a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly API_PORT=8081
readonly SERVER_PORT=8080
readonly DEADLINE_SECONDS=30
# How long wsp_server and wsp_client may take over their graceful shutdown after Ctrl-C
# before they are sent SIGTERM (a second signal: they exit at once).
readonly STOP_SECONDS=10
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
# Set once a stop was asked for: the wsp programs are then shutting down by themselves.
stopping=

die() {
    echo "demo: $*" >&2
    exit 1
}

# A stop asked for (Ctrl-C or SIGTERM): not a failure.
stop() {
    stopping=1
    echo "demo: $1: stopping" >&2
    exit 0
}

# True while the program of pid $1 runs.
alive() {
    kill -0 "$1" 2>/dev/null
}

# Stops the programs this script started (by pid) and waits for them; runs on every exit.
# After Ctrl-C the wsp programs finish their graceful shutdown (up to STOP_SECONDS); the
# others, and the wsp programs when the script stops them itself, get SIGTERM.
cleanup() {
    trap - EXIT INT TERM
    local i deadline=$((SECONDS + STOP_SECONDS))
    for i in "${!pids[@]}"; do
        if [ -n "$stopping" ] && [[ ${names[$i]} == wsp_* ]]; then
            while alive "${pids[$i]}" && [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.1
            done
        fi
        kill "${pids[$i]}" 2>/dev/null || true
    done
    if [ "${#pids[@]}" -gt 0 ]; then
        wait "${pids[@]}" 2>/dev/null || true
        echo "demo: stopped ${names[*]}" >&2
    fi
}
trap cleanup EXIT
trap 'stop SIGINT' INT
trap 'stop SIGTERM' TERM

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

# Ends the script for program $1 (an index) having exited with status $2: a stop when
# the status is one a stop gives (see the top of this file), else a failure with the end
# of its log.
exited() {
    local name=${names[$1]}
    case $2 in
        0 | 130 | 143) stop "$name stopped (status $2)" ;;
    esac
    echo "demo: $name exited by itself (status $2); end of $LOG_DIR/$name.log:" >&2
    tail -n 20 "$LOG_DIR/$name.log" >&2 || true
    exit 1
}

# Ends the script (see `exited`) when one of the started programs has exited.
check_running() {
    local i status
    for i in "${!pids[@]}"; do
        if ! alive "${pids[$i]}"; then
            status=0
            wait "${pids[$i]}" || status=$?
            exited "$i" "$status"
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

# Returns when a program exits (then says which and how) or when Ctrl-C runs the INT trap.
status=0
wait -n -p done_pid "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
    if [ "${pids[$i]}" = "${done_pid:-}" ]; then
        exited "$i" "$status"
    fi
done
check_running
die "a program exited"
