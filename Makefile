# wfp-deployer: the two set-up commands are `make demo` and `make test`.
# Build output lives outside the clone so a warm machine rebuilds little.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wfp-deployer/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug/wfp-deployer

.PHONY: all build services services-stop test test-unit demo bench soak fuzz fmt lint check clean-run contract deploy-configmap config-reference console-screenshot man

all: build

build:
	$(CARGO) build --bin wfp-deployer

## services: start RabbitMQ and the S3 servers (moto, s3s-fs) when not running
services:
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

## test: every test, against the real broker, both S3 servers and the simulator
# Doc examples first (nextest does not run them), so the run ends on the
# summary of the main suite.
test: services
	$(CARGO) test --doc --quiet
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --all-targets --no-fail-fast; \
	else \
	  $(CARGO) test --all-targets --no-fail-fast; \
	fi

## test-unit: the tests that need no running services
test-unit:
	$(CARGO) nextest run --lib

## demo: deploy a sample site end to end on the local stack, then stop what it started
# moto's install (network-bound, first run only) goes on beside the build
# (CPU-bound) rather than after it; its output is shown only if it fails.
DEMO_RUN_DIR := $(or $(WFP_RUN_DIR),$(CURDIR)/.run)
demo:
	@mkdir -p "$(DEMO_RUN_DIR)"
	@scripts/s3-install.sh moto >"$(DEMO_RUN_DIR)/demo-install.log" 2>&1 & install=$$!; \
	  $(CARGO) build --bin wfp-deployer; built=$$?; \
	  if ! wait $$install; then cat "$(DEMO_RUN_DIR)/demo-install.log" >&2; exit 1; fi; \
	  exit $$built
	scripts/demo.sh "$(BIN)"

## bench: deploy figures against limits measured in the same run (README, Benchmarks);
## not part of `make test` or CI. BENCH_QUICK=1 for a short run, BENCH_SERVERS=moto|s3s.
# Two builds: an example gets the dev-dependencies' features (tokio's
# test-util), and one invocation would give them to the measured binary too.
bench: services
	$(CARGO) build --release --bin wfp-deployer
	$(CARGO) build --release --example bench
	scripts/bench.sh "$(CARGO_TARGET_DIR)/release"

## soak: 1,000 jobs over 3 workers through faults, every job checked (README, Soak);
## not part of `make test` or CI; restarts the broker. SOAK_QUICK=1 for a short run.
soak: services
	$(CARGO) build --release --bin wfp-deployer
	$(CARGO) build --release --example soak
	scripts/soak.sh "$(CARGO_TARGET_DIR)/release"

## fuzz: fuzz the archive readers for FUZZ_SECONDS (default 60)
# Installs cargo-fuzz if missing. No nightly toolchain can be downloaded
# here, so RUSTC_BOOTSTRAP=1 lets the stable one take cargo-fuzz's -Z flags.
# New inputs go to a scratch corpus outside the clone; the seeds in
# fuzz/corpus/archive are only read. Crashes land in fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_CORPUS := $(CARGO_TARGET_DIR)/fuzz-corpus/archive
fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	mkdir -p "$(FUZZ_CORPUS)"
	RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)/fuzz" \
	  $(CARGO) fuzz run archive "$(FUZZ_CORPUS)" fuzz/corpus/archive -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=1024 -timeout=10
## contract: regenerate contract/*.schema.json from the wire types (a test fails while they are stale)
contract: build
	$(BIN) schema job > contract/job.schema.json
	$(BIN) schema event > contract/event.schema.json

## config-reference: regenerate README's configuration reference from src/config/ (a test fails while it is stale)
config-reference:
	WFP_BLESS=1 $(CARGO) test --quiet --test it config_reference

## deploy-configmap: copy config/default.toml into the Kubernetes ConfigMap (a test fails while they differ)
deploy-configmap:
	{ sed -n '1,/^  default.toml: |$$/p' deploy/kubernetes/configmap.yaml; \
	  sed 's/^\(.\)/    \1/' config/default.toml; } > deploy/kubernetes/configmap.yaml.new
	mv deploy/kubernetes/configmap.yaml.new deploy/kubernetes/configmap.yaml

## console-screenshot: PNGs of the web console's main views in target/console/,
# taken by the console's browser test from a real worker's deploys
console-screenshot: services
	WFP_CONSOLE_SCREENSHOTS="$(CURDIR)/target/console" \
	  $(CARGO) nextest run --test it console::screenshots::screenshots_of_the_main_views
	@ls -1 target/console/*.png

## man: man pages from the clap definitions: target/man/wfp-deployer.1 and one
# per command (man -l target/man/wfp-deployer.1)
man: build
	"$(BIN)" man --dir target/man

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

check: lint test
