# Aliases for the exact commands CI runs (`test` = fmt check, clippy, tests, in that order),
# plus targets that run the pieces by hand. Run `make demo` for all three at once.
# `make soak` loads the proxy for SOAK_SECS seconds while killing clients and restarting the
# server (see BENCHMARKS.md); `make soak SOAK_SECS=60` for a short run.

CARGO ?= cargo

.PHONY: build test fmt fmt-check clippy run-test-server run-server run-client demo soak

SOAK_SECS ?= 300

build:
	$(CARGO) build --release --bins --examples

test:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

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

soak: build
	SOAK_SECS=$(SOAK_SECS) ./target/release/examples/soak
