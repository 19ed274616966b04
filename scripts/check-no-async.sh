#!/bin/sh
# Fails when any async runtime or executor is among the dependencies of the binaries.
# wsp is synchronous by design (a thread per connection): one creeping in through a
# crate update should stop the build, not go unnoticed.
set -eu
CARGO=${CARGO:-cargo}
tree=$($CARGO tree --edges normal,build --prefix none)
found=$(printf '%s\n' "$tree" \
    | grep -E '^(tokio|async-std|async-executor|async-io|async-global-executor|smol|futures-executor|mio|glommio|monoio) ' \
    | sort -u || true)
if [ -n "$found" ]; then
    echo "check-no-async: async runtime crates in the dependency tree:" >&2
    printf '%s\n' "$found" >&2
    exit 1
fi
count=$(printf '%s\n' "$tree" | sort -u | wc -l)
echo "check-no-async: $count dependency entries, no async runtime"
