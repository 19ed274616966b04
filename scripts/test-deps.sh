#!/usr/bin/env bash
# The system tools the tests need, installed when missing: the one place that knows them,
# called by `make test` (before anything else) and by `.ci/run` (which needs `make` itself).
#
# - nginx: the deployment test (tests/integration/nginx/) runs the real nginx with
#   examples/nginx/wsp.conf, and the transparency tests use it as an internal API; they
#   fail without it.
# - curl: the proxy-mode and transparency tests check that curl, a real caller, gets
#   through.
# - make: `.ci/run` runs `make test`.
# - chromium: the console tests load the operator console in headless Chromium, driven
#   over its DevTools protocol.
#
# Nothing missing: silent, and done in a few milliseconds (no package manager is asked).
# Something missing: one line saying what is installed and why, then apt-get, quietly
# (its output is shown only if it fails), as root or through sudo. A package's daemon is
# not started by the installation (policy-rc.d): nginx must not come up on port 80. When
# nothing can be installed (no apt-get, neither root nor sudo, apt-get failing), it fails
# with a message saying what to install.
set -euo pipefail

readonly SELF="test-deps"
# Where nginx is looked for beside PATH, as tests/integration/nginx/run.rs does: Debian
# installs it in /usr/sbin, which a non-root user's PATH usually lacks.
readonly NGINX_DIRS=(/usr/sbin /usr/local/sbin /usr/local/nginx/sbin)

declare -A WHY=(
    [nginx]="the deployment and transparency tests run the real nginx"
    [curl]="the proxy-mode and transparency tests drive curl through the server"
    [make]=".ci/run runs make test"
    [chromium]="the console tests drive the console page in headless Chromium"
)

# True when an executable file named $1 is in one of the directories that follow.
# (`command -v` would also accept a file that cannot be run.)
executable_in() {
    local name=$1 dir
    shift
    for dir in "$@"; do
        [ -f "$dir/$name" ] && [ -x "$dir/$name" ] && return 0
    done
    return 1
}

# True when program $1 is in PATH.
have() {
    local dirs
    IFS=: read -r -a dirs <<<"$PATH"
    executable_in "$1" "${dirs[@]}"
}

# True when the tool is there; nginx is also looked for outside PATH.
present() {
    have "$1" || { [ "$1" = nginx ] && executable_in nginx "${NGINX_DIRS[@]}"; }
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Why nothing can be installed here, or nothing when apt-get can be run as root.
cannot_install() {
    if ! have apt-get; then
        echo "there is no apt-get on this machine"
    elif [ "$(id -u)" -ne 0 ] && ! have sudo; then
        echo "installing needs root, and there is no sudo"
    fi
}

# The Debian package of a tool: for nginx, nginx-light, the smallest build with the ssl and
# proxy modules the example uses (Debian 12), or nginx where there is no -light (Debian 13).
# Asked after `apt-get update`: a fresh machine's package lists are empty.
package_of() {
    if [ "$1" = nginx ] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        echo nginx
    elif [ "$1" = nginx ]; then
        echo nginx-light
    else
        echo "$1"
    fi
}

# Fails, saying what to install by hand and why.
give_up() {
    local tool
    echo "$SELF: cannot install ${missing[*]}: $1." >&2
    for tool in "${missing[@]}"; do
        echo "$SELF: $tool is needed: ${WHY[$tool]}." >&2
    done
    echo "$SELF: install it, then run make test again: as root," \
        "apt-get update && apt-get install $(hint)" >&2
    exit 1
}

# The packages to name in a hint, before apt-get could say which exist.
hint() {
    local tool out=()
    for tool in "${missing[@]}"; do
        if [ "$tool" = nginx ]; then out+=("nginx-light (or nginx)"); else out+=("$tool"); fi
    done
    echo "${out[*]}"
}

# apt-get, as root, quietly: its output goes to $log and is shown only if it fails.
apt() {
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        give_up "apt-get $1 failed (its output is above)"
    fi
}

# Debian starts a package's daemon as it is installed unless policy-rc.d forbids it: nginx
# must not come up listening on port 80 of the machine. A policy already in place is left
# as it is; ours is removed on exit.
forbid_daemon_starts() {
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
        trap 'as_root rm -f /usr/sbin/policy-rc.d; rm -f "$log"' EXIT
    fi
}

missing=()
for tool in nginx curl make chromium; do
    present "$tool" || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

reason=$(cannot_install)
[ -z "$reason" ] || give_up "$reason"
why=""
for tool in "${missing[@]}"; do
    why+="${why:+; }$tool: ${WHY[$tool]}"
done
echo "$SELF: installing ${missing[*]} ($why)" >&2

log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt update
packages=()
for tool in "${missing[@]}"; do
    packages+=("$(package_of "$tool")")
done
forbid_daemon_starts
apt install "${packages[@]}"

for tool in "${missing[@]}"; do
    present "$tool" || give_up "$tool is still not found after installing ${packages[*]}"
done
