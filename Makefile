# stockhold: the two commands are `make dev` and `make test`; both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
PORT ?= 8000
export PORT
# Where cargo puts what it builds: `target/` unless CARGO_TARGET_DIR (or cargo's own
# configuration) says otherwise; every target and script finds the binaries there.
TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$(CURDIR)/target")
export TARGET_DIR
# The eleven Lambda functions (their packages and binaries).
FUNCTIONS := products reserve order transition list expire sweep reconcile audit audit-api publish
# `sam build` as CI runs it: SAM_FAST=1 keeps the release profile but without any LTO and
# with 16 codegen units (see sam-check).
SAM_BUILD := $(if $(SAM_FAST),CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_INCREMENTAL=false) \
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/sam build

.PHONY: user aws-token sam-local help deps build dev test test-setup setup-times iam-reset iam-coverage test-rust fuzz fuzz-quick lint check-template sam-check deploy logs token lambda docs-assets bench bench-reserve bench-expiry bench-orders

help:
	@echo "The two commands:"
	@echo "  make dev             serve the API on http://127.0.0.1:$(PORT) with its local stack (Ctrl-C stops all)"
	@echo "  make test            every test against a throwaway local stack, then the IAM coverage check"
	@echo "Checks:"
	@echo "  make lint            rustfmt, clippy and cargo deny (licences, bans, sources)"
	@echo "  make check-template  cfn-lint and sam validate --lint on template.yaml"
	@echo "  make test-rust       the Rust tests alone (unit, integration, Lambda-level)"
	@echo "  make test-setup      deps.sh without root or sudo, and make with CARGO_TARGET_DIR set"
	@echo "  make fuzz            schemathesis, 300 examples per operation (make fuzz-quick: 15)"
	@echo "  make iam-coverage    every IAM grant of template.yaml used by some test (after make test-rust)"
	@echo "  make sam-check       template checks, then sam build of the eleven functions and their sizes"
	@echo "  make sam-local       each sam build artifact under sam local invoke and start-api (root)"
	@echo "Figures (never asserted; see BENCHMARKS.md):"
	@echo "  make bench           every benchmark (make bench-reserve, bench-expiry, bench-orders: one each)"
	@echo "  make lambda          release arm64 bootstraps and their sizes"
	@echo "AWS (needs credentials):"
	@echo "  make deploy          sam build, then sam deploy with samconfig.toml (PARAMS=\"Name=Value ...\")"
	@echo "  make logs            every function's logs, followed (sam logs --tail)"
	@echo "  make user EMAIL=a@b.c [ADMIN=1]   a user of the stack's Cognito pool (password printed once)"
	@echo "  make aws-token EMAIL=a@b.c        an ID token for that user (PASSWORD=..., else asked)"
	@echo "Tools:"
	@echo "  make token SUB=alice GROUPS=admin   print a token for the local gateway"
	@echo "  make deps            install the test tools (make dev installs only what it needs)"
	@echo "  make setup-times     seconds from a fresh clone to make dev's first 200 and to a green make test"
	@echo "  make build           build the workspace"
	@echo "  make docs-assets     refresh the docs page's Swagger UI files from npm"

deps:
	@infra/scripts/deps.sh test

build:
	$(CARGO) build --workspace --bins

# The dev server needs Java, DynamoDB Local and the gateway binary, nothing more.
dev:
	@infra/scripts/deps.sh dev
	$(CARGO) build -p gateway --bin gateway
	infra/scripts/with-stack.sh --persist .local/dev-data -- "$(TARGET_DIR)/debug/gateway"

# Every AWS call of every test runs under the IAM policy template.yaml gives the function
# that makes it in AWS (shared::iam); the grants each process used are collected in
# IAM_USAGE_DIR, and iam-coverage fails when the template grants something no test used.
IAM_USAGE_DIR := $(TARGET_DIR)/iam-usage
test: deps check-template iam-reset test-rust fuzz-quick iam-coverage

# Setup paths our machines do not take: deps.sh as a non-root user without sudo or Java,
# and make's fuzz step and dev server with CARGO_TARGET_DIR set (CI runs it).
test-setup: build
	infra/scripts/test-setup.sh

iam-reset:
	rm -rf "$(IAM_USAGE_DIR)"

iam-coverage: build
	$(CARGO) run -q -p stockhold-tests --bin iam-coverage -- "$(IAM_USAGE_DIR)" "$(TARGET_DIR)/iam-usage.json" infra/iam-allowlist.txt

# The end-to-end tests start the real gateway binary, and the Lambda tests run every
# function binary under cargo-lambda (from .venv), so the binaries are built first.
test-rust: build
	IAM_USAGE_DIR="$(IAM_USAGE_DIR)" PATH="$(CURDIR)/.venv/bin:$$PATH" infra/scripts/with-stack.sh --moto -- $(CARGO) test --workspace

# schemathesis against the real gateway binary from openapi.yaml, as an admin and as a
# customer: a bounded pass in make test, a longer one in make fuzz.
FUZZ_EXAMPLES ?= 15
fuzz-quick: deps build
	IAM_USAGE_DIR="$(IAM_USAGE_DIR)" infra/scripts/with-stack.sh -- infra/scripts/fuzz.sh $(FUZZ_EXAMPLES)

fuzz: deps build
	infra/scripts/with-stack.sh -- infra/scripts/fuzz.sh 300

# Template checks: cfn-lint, and SAM's own validation with its linter (offline).
check-template: deps
	.venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/sam validate --lint --region us-east-1

# Refreshes the docs page's renderer (docs/swagger-ui/) from the npm package that
# deps.sh installs; the spec tests fail when the two differ.
docs-assets: deps
	for f in swagger-ui-bundle.js swagger-ui.css; do \
	  gzip -9n -c .local/docs/node_modules/swagger-ui-dist/$$f > docs/swagger-ui/$$f.gz; done
	cp .local/docs/node_modules/swagger-ui-dist/LICENSE .local/docs/node_modules/swagger-ui-dist/NOTICE docs/swagger-ui/

# rustfmt, clippy, and cargo deny's checks that need no advisory database (deny.toml:
# licences, bans, sources; the RustSec advisories need a clone of their database).
lint:
	@infra/scripts/deps.sh lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	.local/tools/bin/cargo-deny deny --locked check bans licenses sources
	@# One digest stack in every bootstrap: ours (cursors, fingerprints) is the SDK's.
	@! $(CARGO) tree -d -e normal --workspace 2>/dev/null | grep -E '^(sha2|hmac|digest) ' || { echo "lint: two versions of a hash crate (align hmac/sha2 with aws-sigv4's)" >&2; exit 1; }
	@# The production form of the functions (built alone, as `sam build` does) leaves the
	@# local platform out: nothing but `--features local` turns on shared's `local`.
	@! $(CARGO) tree $(addprefix -p ,$(FUNCTIONS)) -e features -i shared 2>/dev/null | grep 'shared feature "local"' || { echo "lint: a function's production build enables shared's local feature" >&2; exit 1; }
	@# ... and it compiles, lint-clean, without it.
	$(CARGO) clippy $(addprefix -p ,$(FUNCTIONS)) -- -D warnings

token:
	@$(CARGO) run -q --bin token -- "$(SUB)" "$(GROUPS)"

# A deployed stack's users (its Cognito pool; README, "First requests against your stack").
user:
	@infra/scripts/deps.sh deploy
	@.venv/bin/python infra/scripts/cognito.py user "$(EMAIL)" $(if $(ADMIN),--admin)

aws-token:
	@infra/scripts/deps.sh deploy
	@.venv/bin/python infra/scripts/cognito.py token "$(EMAIL)"

# Figures, not tests: latency of POST /api/reservations, and expiry delay.
bench-reserve: deps
	infra/scripts/with-stack.sh -- $(CARGO) run -q --bin bench -- reserve

bench-expiry: deps
	infra/scripts/with-stack.sh -- $(CARGO) run -q --bin bench -- expiry

# Order list at scale: 10,000 orders for one user and 50,000 across 500 users.
bench-orders: deps
	$(CARGO) build -q --profile perf --workspace --bins
	infra/scripts/with-stack.sh -- "$(TARGET_DIR)/perf/bench" orders

# Every benchmark with default sizes: prints tables, writes target/bench/*.json.
bench: deps
	$(CARGO) build -q --profile perf --workspace --bins
	PATH="$(CURDIR)/.venv/bin:$$PATH" infra/scripts/with-stack.sh --moto -- "$(TARGET_DIR)/perf/bench" all

# What users run to deploy, checked offline (CI runs it): SAM's own validation and
# linter, then `sam build`, which runs `cargo lambda build --release --arm64` per function
# (all ten share one dependency graph, so the tree compiles once), then each artifact's size.
# SAM_FAST=1 (CI) keeps the release profile but without any LTO and with 16 codegen units:
# the same build through SAM and cargo-lambda, in a third of the time on 2 cores (the ten
# thin-LTO links alone take ~15 min); `make lambda` measures the tuned artifacts.
# The artifacts are the production form (no `local` feature): none may carry the local
# platform, whose marks are the embedded template's Transform and the IAM refusal's text
# (the local form has both: `make sam-local` checks that, so this check can fail).
LOCAL_MARKS := -e 'AWS::Serverless-2016-10-31' -e 'is not authorized to perform'
sam-check: check-template
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	$(SAM_BUILD)
	@for f in .aws-sam/build/*Function/bootstrap; do printf '%-34s %8d bytes\n' $$f $$(wc -c < $$f); done
	@for f in .aws-sam/build/*Function/bootstrap; do \
	  if grep -q -a $(LOCAL_MARKS) $$f; then echo "sam-check: $$f carries the local platform" >&2; exit 1; fi; done
	@echo "sam-check: no bootstrap carries the local platform"

# Every function under SAM's own emulator (`sam local invoke`), with the Lambda-level
# tests' checks: a `sam build` of the local form (into .aws-sam/local; cargo-lambda turns
# on shared's `local` through infra/cargo-lambda-local.toml, so each binary is held to its
# IAM policy as under cargo lambda). Sets up (and afterwards removes) a container engine of
# its own, offline; needs root. See infra/scripts/sam-local.sh.
sam-local: deps
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	CARGO_LAMBDA_GLOBAL="$(CURDIR)/infra/cargo-lambda-local.toml" $(SAM_BUILD) --build-dir .aws-sam/local
	@for f in .aws-sam/local/*Function/bootstrap; do printf '%-34s %8d bytes\n' $$f $$(wc -c < $$f); \
	  grep -q -a $(LOCAL_MARKS) $$f || { echo "sam-local: $$f lacks the local platform" >&2; exit 1; }; done
	infra/scripts/with-stack.sh -- infra/scripts/sam-local.sh

# Release bootstraps for Lambda (arm64, linked with zig from .venv), and their sizes:
# the production form (the ten packages alone, so shared's `local` feature is off).
lambda:
	@infra/scripts/deps.sh deploy
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	@# -p, not --bin: in a virtual workspace `--bin` selects every member for feature
	@# resolution, and the gateway's and the tests' `local` would come along.
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do printf '%-12s %8d bytes\n' $$f $$(wc -c < "$(TARGET_DIR)/lambda/$$f/bootstrap"); done
	@for f in $(FUNCTIONS); do b="$(TARGET_DIR)/lambda/$$f/bootstrap"; \
	  if grep -q -a $(LOCAL_MARKS) "$$b"; then echo "lambda: $$b carries the local platform" >&2; exit 1; fi; done

# Deploy to the AWS account and region of your AWS configuration (samconfig.toml holds
# the stack name and defaults; confirm the change set when asked). Not runnable offline.
deploy:
	@infra/scripts/deps.sh deploy
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	$(SAM_BUILD)
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/sam deploy $(if $(PARAMS),--parameter-overrides $(PARAMS))

setup-times:
	infra/scripts/time-setup.sh dev
	infra/scripts/time-setup.sh test

logs:
	@infra/scripts/deps.sh deploy
	SAM_CLI_TELEMETRY=0 .venv/bin/sam logs
