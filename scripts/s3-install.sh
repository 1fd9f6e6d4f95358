#!/usr/bin/env bash
# Installs the two S3 servers the integration tests run against:
#   - moto (Python, in a virtualenv under the cache dir), the reference
#     emulator of AWS's own behaviour;
#   - s3s-fs (Rust, into ~/.cargo/bin), a second, independent implementation
#     so a test passing on one server by accident fails on the other.
# Idempotent and fast when both are already there. Only package registries
# (PyPI, crates.io) are used.
#
# `scripts/s3-install.sh [moto] [s3s-fs]` installs only the servers named
# (default: both). `make demo` needs moto alone, and building s3s-fs would
# cost a newcomer's first run about two minutes for nothing.
set -euo pipefail

CACHE_DIR="${WFP_CACHE:-$HOME/.cache/wfp-deployer}"
VENV="$CACHE_DIR/venv"
# 5.2.5: older releases mishandle the Rust SDK's aws-chunked uploads.
MOTO_VERSION="5.2.5"
# 0.14.1: 0.15 and later need a newer Rust than the project's.
S3S_FS_VERSION="0.14.1"

say() { printf 's3-install: %s\n' "$*"; }
die() { printf 's3-install: error: %s\n' "$*" >&2; exit 1; }

install_moto() {
    if [[ -x "$VENV/bin/moto_server" ]] \
        && [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" == "$MOTO_VERSION" ]]; then
        say "moto $MOTO_VERSION already installed in $VENV"
        return
    fi
    local python
    python="$(command -v python3 || true)"
    [[ -n "$python" ]] || die "python3 not found; install it (e.g. apt-get install python3 python3-venv)"
    mkdir -p "$CACHE_DIR"
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating virtualenv $VENV"
        "$python" -m venv "$VENV" || die "could not create $VENV (is python3-venv installed?)"
    fi
    say "installing moto[server]==$MOTO_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
        || die "pip could not install moto[server]==$MOTO_VERSION"
    [[ -x "$VENV/bin/moto_server" ]] || die "moto_server missing from $VENV/bin after install"
    say "moto $MOTO_VERSION installed"
}

install_s3s_fs() {
    local bin="$HOME/.cargo/bin/s3s-fs"
    if command -v s3s-fs >/dev/null 2>&1 && s3s-fs --version >/dev/null 2>&1; then
        say "s3s-fs already installed ($(s3s-fs --version))"
        return
    fi
    if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
        say "s3s-fs already installed at $bin (add ~/.cargo/bin to PATH)"
        return
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust first"
    say "building s3s-fs $S3S_FS_VERSION (about two minutes)"
    cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked \
        || die "cargo install s3s-fs@$S3S_FS_VERSION failed"
    say "s3s-fs installed at $bin"
}

(($# > 0)) || set -- moto s3s-fs
for server in "$@"; do
    case "$server" in
    moto) install_moto ;;
    s3s-fs) install_s3s_fs ;;
    *) die "unknown server '$server' (usage: $0 [moto] [s3s-fs])" ;;
    esac
done
say "done"
