# stockhold: the two commands are `make dev` and `make test`; both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
PORT ?= 8000
export PORT

.PHONY: help deps build dev test test-rust lint cfn-lint token lambda bench bench-reserve bench-expiry bench-orders

help:
	@echo "make dev    serve the API on http://127.0.0.1:$(PORT) with DynamoDB Local"
	@echo "make test   run every test against a throwaway DynamoDB Local"
	@echo "make lint   rustfmt and clippy"
	@echo "make token SUB=alice GROUPS=admin   print a token for the local gateway"

deps:
	@infra/scripts/deps.sh

build:
	$(CARGO) build --workspace --bins

dev: deps build
	infra/scripts/with-stack.sh --persist .local/dev-data -- target/debug/gateway

test: deps cfn-lint test-rust

# The end-to-end tests start the real gateway binary, and the Lambda tests run every
# function binary under cargo-lambda (from .venv), so the binaries are built first.
test-rust: build
	PATH="$(CURDIR)/.venv/bin:$$PATH" infra/scripts/with-stack.sh --moto -- $(CARGO) test --workspace

# Template checks: cfn-lint, and SAM's own validation with its linter (offline).
cfn-lint: deps
	.venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/sam validate --lint --region us-east-1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

token:
	@$(CARGO) run -q --bin token -- "$(SUB)" "$(GROUPS)"

# Figures, not tests: latency of POST /api/reservations, and expiry delay.
bench-reserve: deps
	infra/scripts/with-stack.sh -- $(CARGO) run -q --bin bench -- reserve

bench-expiry: deps
	infra/scripts/with-stack.sh -- $(CARGO) run -q --bin bench -- expiry

# Order list at scale: 10,000 orders for one user and 50,000 across 500 users.
bench-orders: deps
	$(CARGO) build -q --profile perf --workspace --bins
	infra/scripts/with-stack.sh -- target/perf/bench orders

# Every benchmark with default sizes: prints tables, writes target/bench/*.json.
bench: deps
	$(CARGO) build -q --profile perf --workspace --bins
	infra/scripts/with-stack.sh -- target/perf/bench all

# Release bootstraps for Lambda (arm64, linked with zig from .venv), and their sizes.
FUNCTIONS := products reserve order transition list expire sweep audit audit-api
lambda: deps
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do printf '%-12s %8d bytes\n' $$f $$(stat -c %s target/lambda/$$f/bootstrap); done
