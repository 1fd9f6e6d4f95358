#!/usr/bin/env bash
# `make demo`: one deploy end to end on the local stack.
#
# Starts what is not running and the demo uses (RabbitMQ and moto,
# installing moto if needed; not s3s-fs, which only the tests use), then the
# Cloudflare simulator and a worker; puts a small sample
# site in S3, publishes a job, waits for its deploy.succeeded event, prints
# it, then fetches pages back from the simulator and checks the bytes match.
# Whatever this script started is stopped when it exits; what was already
# running is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/wfp-deployer/target}/debug/wfp-deployer}"
run_dir="${WFP_RUN_DIR:-$PWD/.run}"
mkdir -p "$run_dir"
site_dir="scripts/demo-site"
sim_port="${DEMO_SIM_PORT:-8787}"
account="0123456789abcdef0123456789abcdef"
token="demo-api-token"
suffix="demo-$(date +%s)-$$"
bucket="wfp-demo-sites"

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rabbit_was_up=false; up 5672 && rabbit_was_up=true
moto_was_up=false; up 9000 && moto_was_up=true

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  $moto_was_up || scripts/s3-start.sh stop moto || true
  if ! $rabbit_was_up; then
    echo "stopping the RabbitMQ this demo started"
    rabbitmqctl -q stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

scripts/services.sh demo >/dev/null

step() { printf '\n== %s\n' "$*"; }

# A free port for the simulator if the usual one is taken.
if (exec 3<>"/dev/tcp/127.0.0.1/$sim_port") 2>/dev/null; then
  sim_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi

step "Cloudflare simulator on 127.0.0.1:$sim_port"
"$bin" cloudflare-sim --listen "127.0.0.1:$sim_port" --api-token "$token" --account "$account" \
  >"$run_dir/demo-sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$sim_port/__sim/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$sim_port/__sim/health" >/dev/null || {
  echo "the simulator did not start:" >&2; tail -20 "$run_dir/demo-sim.log" >&2; exit 1; }

# The local stack: S3 on moto, the simulator as Cloudflare, and the
# contract's default topology names, as a real deployment uses them.
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:9000" AWS_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="wfptest" AWS_SECRET_ACCESS_KEY="wfptestsecret"
export WFP__S3__FORCE_PATH_STYLE=true
export CLOUDFLARE_API_TOKEN="$token" CLOUDFLARE_ACCOUNT_ID="$account"
export CLOUDFLARE_API_BASE_URL="http://127.0.0.1:$sim_port/client/v4"
export WFP__WORKER__INSTANCE="demo"

step "Sample site into s3://$bucket/acme/builds/1/"
"$bin" upload-bundle "$site_dir/public" --bucket "$bucket" --prefix "acme/builds/1/"
"$bin" upload-bundle "$site_dir/worker" --bucket "$bucket" --prefix "acme/builds/1-worker/"

step "Worker"
"$bin" worker >"$run_dir/demo-worker.log" 2>&1 &
pids+=($!)

step "Publish the job, wait for its outcome"
cat >"$run_dir/demo-job.json" <<JOB
{
  "version": 1,
  "job_id": "acme-site-$suffix",
  "namespace": "customers",
  "script_name": "acme-site",
  "bundle": {"bucket": "$bucket", "prefix": "acme/builds/1/"},
  "worker": {"main_module": "index.js", "prefix": "acme/builds/1-worker/"},
  "compatibility_date": "2025-01-24",
  "assets_config": {"html_handling": "auto-trailing-slash", "not_found_handling": "404-page"},
  "correlation_id": "demo-request",
  "labels": {"tenant": "acme"}
}
JOB
if ! "$bin" publish "$run_dir/demo-job.json" --wait 120s >"$run_dir/demo-event.json"; then
  echo "the deploy did not succeed:" >&2
  cat "$run_dir/demo-event.json" >&2
  echo "--- worker log" >&2; tail -30 "$run_dir/demo-worker.log" >&2
  exit 1
fi
cat "$run_dir/demo-event.json"

step "Pages served back by the simulator"
base="http://127.0.0.1:$sim_port/__sim/scripts/$account/customers/acme-site"
for page in index.html about/index.html css/site.css img/logo.png; do
  curl -fsS -D "$run_dir/demo-headers.txt" "$base/assets/$page" -o "$run_dir/demo-page"
  type=$(grep -i '^content-type:' "$run_dir/demo-headers.txt" | tr -d '\r' | cut -d' ' -f2-)
  if cmp -s "$run_dir/demo-page" "$site_dir/public/$page"; then
    printf '  /%-18s %6d bytes  %-26s identical to the bundle\n' "$page" "$(wc -c <"$run_dir/demo-page")" "$type"
  else
    echo "  /$page differs from the bundle!" >&2
    exit 1
  fi
done
echo
echo "demo: deploy succeeded and the deployed bytes match the bundle"
