#!/usr/bin/env bash
# Runs every fuzz target (or those named in FUZZ_TARGETS) for FUZZ_SECS seconds (default
# 60), one after the other, from the seeds in seeds/<target>/ and the corpus grown so far
# in corpus/<target>/ (ignored by git). Reproducers in regressions/<target>/ run first.
# Stops at the first crash, hang or memory blow-up with a non-zero exit; the failing
# input is then in artifacts/<target>/. Needs the nightly toolchain; installs cargo-fuzz
# when it is missing. Prints one line per target. `make fuzz` runs this.
set -euo pipefail

cd "$(dirname "$0")"
secs="${FUZZ_SECS:-60}"
# target:max_len — inputs a little past what each parser accepts, so limits are hit.
all_targets=(greeting:512 heads:4096 frames:8192 frames_structured:4096 config:4096)
# FUZZ_TARGETS="heads config" runs only those.
targets=()
for entry in "${all_targets[@]}"; do
    if [ -z "${FUZZ_TARGETS:-}" ] || [[ " $FUZZ_TARGETS " == *" ${entry%%:*} "* ]]; then
        targets+=("$entry")
    fi
done
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no target in FUZZ_TARGETS=\"$FUZZ_TARGETS\"; there are: ${all_targets[*]%%:*}" >&2
    exit 1
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build
mkdir -p logs
for entry in "${targets[@]}"; do
    target="${entry%%:*}"
    max_len="${entry#*:}"
    log="logs/$target.log"
    mkdir -p "corpus/$target" "artifacts/$target"
    # Reproducers of bugs found earlier run first: a bug that is back fails at once.
    regressions=()
    if [ -d "regressions/$target" ]; then
        mapfile -t regressions < <(find "regressions/$target" -type f | sort)
    fi
    if [ "${#regressions[@]}" -gt 0 ] &&
        ! cargo +nightly fuzz run "$target" "${regressions[@]}" -- -rss_limit_mb=512 \
            -timeout=10 >"$log" 2>&1; then
        echo "fuzz: $target: a reproducer in regressions/$target/ fails again; see fuzz/$log" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=512 -max_len="$max_len" -timeout=10 \
        >"$log" 2>&1; then
        echo "fuzz: $target: FAILED; full output in fuzz/$log" >&2
        tail -n 40 "$log" >&2
        echo "fuzz: the input is in fuzz/artifacts/$target/ (reproduce:" \
            "cargo +nightly fuzz run $target <file>)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log")
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 |
        sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, features \2, corpus \3/')
    echo "fuzz: $target: ${runs:-? runs}, ${stats:-no stats}, no crash"
done
