#!/usr/bin/env bash
# `make bench`: how fast one deploy runs and how much memory it takes, on the
# local stack (moto for S3, the simulator for Cloudflare), with the release
# build. Two runs of the same bundle: a first deploy (every file hashed and
# uploaded) and an unchanged redeploy (every file hashed, nothing uploaded).
#
# Goals checked here, not in tests: hashing+upload throughput, and peak
# memory that stays bounded (it must not grow with the bundle's size).
#
#   BENCH_FILES   number of files (default 2000)
#   BENCH_MB      total size in MiB (default 200)
#   BENCH_S3_ENDPOINT  the S3 server (default moto, http://127.0.0.1:9000)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:?usage: bench.sh path/to/release/wfp-deployer}"
files="${BENCH_FILES:-2000}"
mb="${BENCH_MB:-200}"
run_dir="${WFP_RUN_DIR:-$PWD/.run}/bench"
rm -rf "$run_dir" && mkdir -p "$run_dir/site"
account="0123456789abcdef0123456789abcdef"
token="bench-token"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" cloudflare-sim --listen "127.0.0.1:$port" --api-token "$token" --account "$account" \
  --bucket-max-files 50 >"$run_dir/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/__sim/health" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== generating $files files, $mb MiB"
python3 - "$run_dir/site" "$files" "$mb" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
for i in range(n):
    d = os.path.join(root, f"d{i % 40}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY

# moto by default; BENCH_S3_ENDPOINT=http://127.0.0.1:9100 for s3s-fs.
export AWS_ENDPOINT_URL_S3="${BENCH_S3_ENDPOINT:-http://127.0.0.1:9000}" AWS_REGION="us-east-1"
export AWS_ACCESS_KEY_ID="wfptest" AWS_SECRET_ACCESS_KEY="wfptestsecret"
export WFP__S3__FORCE_PATH_STYLE=true WFP__LOG__FILTER=warn
export CLOUDFLARE_API_TOKEN="$token" CLOUDFLARE_ACCOUNT_ID="$account"
export CLOUDFLARE_API_BASE_URL="http://127.0.0.1:$port/client/v4"
export WFP__WORKER__SPOOL_DIR="$run_dir"
prefix="bench/$(date +%s)/"
"$bin" upload-bundle "$run_dir/site" --bucket wfp-bench --prefix "$prefix"
cat >"$run_dir/job.json" <<JOB
{"version": 1, "job_id": "bench-$$", "namespace": "bench", "script_name": "bench-site",
 "bundle": {"bucket": "wfp-bench", "prefix": "$prefix"}}
JOB

for run in first-deploy unchanged-redeploy; do
  echo "== $run"
  /usr/bin/time -f "%e %M %U %S" -o "$run_dir/time" "$bin" deploy "$run_dir/job.json" >"$run_dir/$run.json"
  read -r secs rss_kb user_s sys_s <"$run_dir/time"
  python3 - "$run_dir/$run.json" "$secs" "$rss_kb" "$mb" "$user_s" "$sys_s" <<'PY'
import json, sys
event, secs, rss, mb = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = float(sys.argv[5]) + float(sys.argv[6])
up = event["data"]["upload"]
print(f"  wall {secs:.2f} s   {mb/secs:.1f} MiB/s hashed   worker CPU {cpu:.2f} s   peak RSS {rss/1024:.1f} MiB")
print(f"  uploaded {up['files']} files / {up['bytes']/1048576:.1f} MiB in {up['buckets']} buckets, {up['sessions']} session(s)")
PY
done
