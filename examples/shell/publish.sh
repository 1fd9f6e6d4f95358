#!/usr/bin/env bash
# Publish a deploy job to wfp-deployer (contract v1) from the shell, and
# wait for its outcome.
#
# Tools: check-jsonschema (pip) validates the job against
# contract/job.schema.json before anything is published; amqp-tools
# (Debian's amqp-tools: amqp-publish, amqp-get, ...) talk to the broker.
# The job asks for its terminal event on a reply queue of its own
# (`reply_to`), which this script polls and deletes at the end.
#
#   AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f examples/shell/publish.sh job.json
#
# Exit status: 0 deploy.succeeded, 1 deploy.failed or an error, 2 timeout.
# Environment: AMQP_URL, WFP_JOBS_EXCHANGE (default wfp.deploy),
# WFP_JOBS_ROUTING_KEY (default deploy), WFP_JOB_SCHEMA, WFP_WAIT_SECONDS
# (default 300).
#
# With only the management plugin at hand, rabbitmqadmin publishes the same
# way (it answers "routed": true or false, but has no publisher confirm):
#   rabbitmqadmin publish exchange=wfp.deploy routing_key=deploy \
#     payload="$(cat job.json)" properties='{"content_type":"application/json","delivery_mode":2}'
set -euo pipefail

job_file=${1:?usage: publish.sh JOB.json}
here=$(cd "$(dirname "$0")" && pwd)
schema=${WFP_JOB_SCHEMA:-$here/../../contract/job.schema.json}
url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
exchange=${WFP_JOBS_EXCHANGE:-wfp.deploy}
routing_key=${WFP_JOBS_ROUTING_KEY:-deploy}
wait_seconds=${WFP_WAIT_SECONDS:-300}

# Refuse a broken job here, naming the field, rather than as an invalid_job event.
check-jsonschema --schemafile "$schema" "$job_file" >&2

reply=$(amqp-declare-queue --url "$url" -q "wfp-deployer.reply.$(date +%s).$$")
trap 'amqp-delete-queue --url "$url" -q "$reply" >/dev/null 2>&1 || true' EXIT

amqp-publish --url "$url" -e "$exchange" -r "$routing_key" --persistent \
  -C application/json -t "$reply" -b "$(cat "$job_file")"
echo "published $job_file; waiting for its outcome on $reply" >&2

deadline=$((SECONDS + wait_seconds))
while ((SECONDS < deadline)); do
  # amqp-get exits 2 while the queue is empty.
  if event=$(amqp-get --url "$url" -q "$reply"); then
    printf '%s\n' "$event"
    case $event in
      *'"type":"wfp.deploy.succeeded"'*) exit 0 ;;
      *) exit 1 ;;
    esac
  elif (($? != 2)); then
    echo "amqp-get failed" >&2
    exit 1
  fi
  sleep 1
done
echo "no outcome within ${wait_seconds}s" >&2
exit 2
