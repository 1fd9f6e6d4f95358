#!/usr/bin/env bash
# Starts the two S3 servers the integration tests use, if not already up:
#   moto   on 127.0.0.1:9000 (in memory; any credentials)
#   s3s-fs on 127.0.0.1:9100 (files under the cache dir; wfptest / wfptestsecret)
# Logs and pid files go to ${WFP_RUN_DIR:-$PWD/.run}. Progress goes to
# stderr; the variables to use go to stdout, so this works:
#   eval "$(scripts/s3-start.sh)"
# `scripts/s3-start.sh start moto` starts only moto (what `make demo` uses).
# `scripts/s3-start.sh stop [moto|s3s-fs]` stops only the servers this
# script started (those with a pid file). Install the servers first: scripts/s3-install.sh.
set -euo pipefail

CACHE_DIR="${WFP_CACHE:-$HOME/.cache/wfp-deployer}"
RUN_DIR="${WFP_RUN_DIR:-$PWD/.run}"
VENV="$CACHE_DIR/venv"
S3S_DATA="$CACHE_DIR/s3s-fs-data"
START_TIMEOUT="${WFP_S3_START_TIMEOUT:-30}"

HOST=127.0.0.1
MOTO_PORT=9000
S3S_PORT=9100
ACCESS_KEY=wfptest
SECRET_KEY=wfptestsecret

say() { printf 's3-start: %s\n' "$*" >&2; }
die() { printf 's3-start: error: %s\n' "$*" >&2; exit 1; }

# Whether something answers HTTP on the port (any status will do).
answers() {
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$HOST:$1/" 2>/dev/null || true)"
    [[ -n "$code" && "$code" != "000" ]]
}

# The pid in a pid file, if that process is alive and still runs `pattern`
# (a stale pid file whose pid was reused must not get someone else killed).
live_pid() {
    local pidfile="$1" pattern="$2" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    printf '%s\n' "$pid"
}

# start NAME PORT PATTERN COMMAND...
start() {
    local name="$1" port="$2" pattern="$3"
    shift 3
    local pidfile="$RUN_DIR/$name.pid" log="$RUN_DIR/$name.log" pid
    if pid="$(live_pid "$pidfile" "$pattern")"; then
        if answers "$port"; then
            say "$name already running (pid $pid) on $HOST:$port"
            return
        fi
        # Alive but not answering: still starting, or on its way out (just
        # killed, its port not yet free). Wait for one or the other; one
        # that exits is replaced below.
        local settle=$((SECONDS + START_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && ! answers "$port" && ((SECONDS < settle)); do
            sleep 0.2
        done
        if answers "$port"; then
            say "$name is up on $HOST:$port (pid $pid)"
            return
        fi
    fi
    if pid="$(live_pid "$pidfile" "$pattern")"; then
        : # alive, not answering within the time: the wait below says so
    elif answers "$port"; then
        say "$name: something not started by this script already answers on $HOST:$port; using it"
        return
    else
        rm -f "$pidfile"
        say "starting $name on $HOST:$port (log: $log)"
        # setsid: its own session, so the server outlives the shell (or CI
        # step, or make) that started it.
        setsid nohup "$@" >"$log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$pidfile"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            tail -n 20 "$log" >&2 || true
            die "$name exited before answering on $HOST:$port (log above: $log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$log" >&2 || true
            die "$name did not answer on $HOST:$port within ${START_TIMEOUT}s (log above: $log)"
        fi
        sleep 0.2
    done
    say "$name is up on $HOST:$port"
}

# stop NAME PATTERN
stop() {
    local name="$1" pattern="$2" pidfile="$RUN_DIR/$1.pid" pid
    if ! pid="$(live_pid "$pidfile" "$pattern")"; then
        [[ -f "$pidfile" ]] && say "$name: stale pid file removed"
        rm -f "$pidfile"
        return
    fi
    say "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop within 5s; killing it"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

find_s3s_fs() {
    if command -v s3s-fs >/dev/null 2>&1; then
        command -v s3s-fs
    elif [[ -x "$HOME/.cargo/bin/s3s-fs" ]]; then
        printf '%s\n' "$HOME/.cargo/bin/s3s-fs"
    else
        return 1
    fi
}

case "${1:-start}" in
start)
    # `start` alone starts both; `start moto` or `start s3s-fs` just one.
    what="${2:-all}"
    [[ "$what" == all || "$what" == moto || "$what" == s3s-fs ]] \
        || die "usage: $0 [start|stop] [moto|s3s-fs]"
    command -v curl >/dev/null 2>&1 || die "curl is needed to check the servers answer"
    mkdir -p "$RUN_DIR" "$S3S_DATA"
    if [[ "$what" == all || "$what" == moto ]]; then
        [[ -x "$VENV/bin/moto_server" ]] || die "moto is not installed in $VENV; run scripts/s3-install.sh moto"
        start moto "$MOTO_PORT" moto_server \
            "$VENV/bin/moto_server" -H "$HOST" -p "$MOTO_PORT"
    fi
    if [[ "$what" == all || "$what" == s3s-fs ]]; then
        s3s_fs="$(find_s3s_fs)" || die "s3s-fs is not installed; run scripts/s3-install.sh s3s-fs"
        # moto forgets everything when restarted; do the same for the tests'
        # buckets (wfp-it-*) on s3s-fs, so its data dir does not grow forever.
        if ! live_pid "$RUN_DIR/s3s-fs.pid" s3s-fs >/dev/null && ! answers "$S3S_PORT"; then
            find "$S3S_DATA" -mindepth 1 -maxdepth 1 -type d -name 'wfp-it-*' -exec rm -rf {} +
        fi
        start s3s-fs "$S3S_PORT" s3s-fs \
            "$s3s_fs" --host "$HOST" --port "$S3S_PORT" \
            --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$S3S_DATA"
    fi
    cat <<VARS
# moto (in memory, accepts any credentials):
export AWS_ENDPOINT_URL_S3=http://$HOST:$MOTO_PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY WFP__S3__FORCE_PATH_STYLE=true
# s3s-fs (on disk under $S3S_DATA): same, with AWS_ENDPOINT_URL_S3=http://$HOST:$S3S_PORT
VARS
    ;;
stop)
    # `stop` alone stops both; `stop moto` or `stop s3s-fs` just one.
    what="${2:-all}"
    if [[ "$what" == all || "$what" == moto ]]; then stop moto moto_server; fi
    if [[ "$what" == all || "$what" == s3s-fs ]]; then stop s3s-fs s3s-fs; fi
    ;;
*)
    die "usage: $0 [start|stop] [moto|s3s-fs]"
    ;;
esac
