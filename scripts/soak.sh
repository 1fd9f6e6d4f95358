#!/usr/bin/env bash
# `make soak`: the thin shell side of the soak. Starts the local stack
# (RabbitMQ, moto, s3s-fs) when it is not running, then runs the driver
# (examples/soak, built in release with the binary it soaks), which starts
# the simulator and three workers, injects the faults, checks every job and
# writes target/soak/summary.json. Restarts the broker: never run it beside
# `make test`.
#
#   SOAK_QUICK=1      150 jobs, a 30 s outage (a few minutes)
#   SOAK_JOBS         jobs in all (1000; 150 quick)
#   SOAK_OUTAGE_SECS  the Cloudflare outage (90; 30 quick)
#   SOAK_SERVER       moto (default) or s3s
#   SOAK_SEED         the simulator's fault seed (7)
#   SOAK_KEEP=1       keep the run's queues and exchanges
set -euo pipefail
cd "$(dirname "$0")/.."

release="${1:?usage: soak.sh path/to/target/release}"
# Its variables go to stdout; the driver sets its own.
scripts/services.sh start >&2
SOAK_BIN="$release/wfp-deployer" exec "$release/examples/soak"
