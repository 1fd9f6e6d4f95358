#!/usr/bin/env bash
# Starts what the tests and the demo need, when it is not already running:
# RabbitMQ (127.0.0.1:5672, with its management plugin on :15672) and the
# two S3 servers (moto on :9000, s3s-fs on :9100), installing the S3 servers
# first if needed. Prints the variables to
# use. `scripts/services.sh demo` starts only what `make demo` uses: RabbitMQ
# and moto (no management plugin, no s3s-fs to build).
# `scripts/services.sh stop` stops the S3 servers this project started
# (RabbitMQ belongs to the machine and is left alone).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

rabbit_up() {
  # A TCP connect is enough to know the listener is there; the AMQP
  # handshake is the tests' business.
  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null
}

start_rabbit() {
  if rabbit_up; then
    echo "rabbitmq: already running on 127.0.0.1:5672"
    return
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "rabbitmq: not installed; install it (Debian: apt-get install rabbitmq-server)" >&2
    exit 1
  fi
  echo "rabbitmq: starting"
  rabbitmq-server -detached
  for _ in $(seq 1 120); do
    if rabbit_up && rabbitmqctl -q await_startup >/dev/null 2>&1; then
      echo "rabbitmq: up on 127.0.0.1:5672"
      return
    fi
    sleep 1
  done
  echo "rabbitmq: did not come up within 120 s" >&2
  exit 1
}

# The web console (`wfp-deployer console`) reads queue depths from the
# management API on 127.0.0.1:15672; RabbitMQ ships the plugin disabled.
enable_management() {
  if ! command -v rabbitmq-plugins >/dev/null 2>&1; then
    echo "rabbitmq: no rabbitmq-plugins here; enable rabbitmq_management on the broker for the console" >&2
    return
  fi
  if rabbitmq-plugins is_enabled rabbitmq_management >/dev/null 2>&1; then
    return
  fi
  echo "rabbitmq: enabling the management plugin (the console reads queue depths from it)"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
}

case "${1:-start}" in
  start)
    start_rabbit
    enable_management
    "$here/s3-install.sh"
    "$here/s3-start.sh"
    ;;
  demo)
    start_rabbit
    "$here/s3-install.sh" moto
    "$here/s3-start.sh" start moto
    ;;
  stop)
    "$here/s3-start.sh" stop
    ;;
  *)
    echo "usage: $0 [start|demo|stop]" >&2
    exit 2
    ;;
esac
