# Aliases for the exact commands CI runs (`test` = the tools the tests need, fmt check, the
# no-async check, clippy, tests, then the vendored tiny_http's own unit tests, in that order),
# plus targets that run the pieces by hand. Run `make demo` for all three at once.
# `make soak` loads the proxy for SOAK_SECS seconds while killing clients and restarting the
# server (see BENCHMARKS.md); `make soak SOAK_SECS=60` for a short run.
# `make bench` measures the proxy against direct requests and against rathole (see
# BENCHMARKS.md): BENCH_SECS seconds per wrk run, BENCH_LONG=1 adds the 1,000,000-request
# memory row, BENCH_ONLY picks groups of rows (e.g. `make bench BENCH_ONLY=register`),
# BENCH_REGISTER_MAX caps the registration row's WebSockets (2000 to 10000).

CARGO ?= cargo
# Seconds each fuzz target runs for in `make fuzz`.
FUZZ_SECS ?= 60

# Seconds `make soak` runs for.
SOAK_SECS ?= 300

# Seconds of each wrk run of `make bench`; BENCH_LONG=1 adds its long memory row.
BENCH_SECS ?= 10
BENCH_LONG ?= 0
# Groups of rows of `make bench` (small,bulk,idle,register,peers,console); empty runs all.
BENCH_ONLY ?=
# WebSockets of the registration row; empty means 10000.
BENCH_REGISTER_MAX ?=

.PHONY: build small test fmt fmt-check clippy run-test-server run-server run-client demo fuzz soak bench

build:
	$(CARGO) build --release --bins --examples

# The binaries built for size (profile `small`), for constrained machines; prints their sizes.
small:
	$(CARGO) build --profile small --bins
	@ls -l target/small/wsp_server target/small/wsp_client | awk '{printf "%s: %d KiB\n", $$9, $$5 / 1024}'

# scripts/test-deps.sh first: silent when nginx (the deployment test) and the other tools
# the tests need are there, else it installs them (as root or with sudo) or says how to.
test:
	./scripts/test-deps.sh
	$(CARGO) fmt --check
	CARGO=$(CARGO) ./scripts/check-no-async.sh
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets
	$(CARGO) test --manifest-path vendor/tiny_http/Cargo.toml --features ssl-rustls --target-dir target/tiny_http

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

run-test-server:
	$(CARGO) run --release --example test_api -- --port 8081

run-server:
	$(CARGO) run --release --bin wsp_server -- -config examples/wsp_server.cfg

run-client:
	$(CARGO) run --release --bin wsp_client -- -config examples/wsp_client.cfg

demo: build
	./scripts/demo.sh

# Fuzz the parsers of untrusted input, FUZZ_SECS seconds per target (nightly + cargo-fuzz;
# not part of `test` or CI). FUZZ_TARGETS="heads config" picks targets. See fuzz/run.sh.
fuzz:
	FUZZ_SECS=$(FUZZ_SECS) FUZZ_TARGETS="$(FUZZ_TARGETS)" ./fuzz/run.sh

soak: build
	SOAK_SECS=$(SOAK_SECS) ./target/release/examples/soak

bench: build
	CARGO=$(CARGO) BENCH_SECS=$(BENCH_SECS) BENCH_LONG=$(BENCH_LONG) BENCH_ONLY=$(BENCH_ONLY) \
		BENCH_REGISTER_MAX=$(BENCH_REGISTER_MAX) ./scripts/bench.sh
