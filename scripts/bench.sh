#!/usr/bin/env bash
# `make bench`: the thin shell side of the bench. Starts the local stack
# (RabbitMQ, moto, s3s-fs) when it is not running, then runs the driver
# (examples/bench, built in release with the binary it measures), which
# starts the simulators from the release binary, generates and uploads its
# data, measures, and writes target/bench/results.json and bench.svg.
#
#   BENCH_SERVERS  moto,s3s (default) or one of them
#   BENCH_QUICK=1  a scaled-down run (a couple of minutes)
#   BENCH_SEED     the data's seed (default 42)
#   BENCH_TRIES    first deploys and limits are the best of this many runs (3)
#   BENCH_KEEP=1   keep the run's S3 bucket
#   BENCH_ONLY=huge  just the huge shape (4 x 100,000 files at once), to target/bench/huge.json
set -euo pipefail
cd "$(dirname "$0")/.."

release="${1:?usage: bench.sh path/to/target/release}"
# Its variables go to stdout; the driver sets its own.
scripts/services.sh start >&2
BENCH_BIN="$release/wfp-deployer" exec "$release/examples/bench"
