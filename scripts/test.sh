#!/usr/bin/env bash
# The one command that runs every Berth test on a fresh Debian (bookworm) machine:
#
#   ./scripts/test.sh
#
# It installs what the tests need (skipping what is already there), then runs, in order:
# rustfmt check, clippy (warnings are errors), a build of the binaries, and the whole
# workspace test suite, with the test venv's bin dir on PATH so tests find `oras`/python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ORAS_VERSION="0.2.43"
VENV="$ROOT/target/test-venv"
# Debian packages the integration tests drive (real clients and a peer registry).
DEB_PACKAGES=(skopeo podman buildah docker-registry uidmap postgresql openssl)

START=$(date +%s)
step() {
    printf '\n==> [%4ss] %s\n' "$(($(date +%s) - START))" "$*"
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

# ---------------------------------------------------------------------------------------
step "Debian packages: ${DEB_PACKAGES[*]}"
deb_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${DEB_PACKAGES[@]}"; do
        deb_installed "$p" || missing+=("$p")
    done
    # A venv needs python3 with ensurepip (Debian splits that into python3-venv).
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing: ${missing[*]}"
        "${SUDO[@]}" apt-get update -q
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "all present"
    fi
else
    echo "warning: not a Debian system (no dpkg-query); install ${DEB_PACKAGES[*]} yourself" >&2
fi

# ---------------------------------------------------------------------------------------
step "Python venv $VENV with oras==$ORAS_VERSION"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "venv is broken (its python moved?); recreating"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$ROOT/target"
    python3 -m venv "$VENV"
fi
have_oras="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("oras"))' 2>/dev/null || true)"
if [ "$have_oras" != "$ORAS_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "oras==$ORAS_VERSION"
fi
"$VENV/bin/python" -c 'import oras.client, importlib.metadata as m; print("oras", m.version("oras"))'

# ---------------------------------------------------------------------------------------
step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo build --locked --bins"
cargo build --locked --bins

step "cargo test --locked --workspace --no-fail-fast   (metadata: SQLite)"
PATH="$VENV/bin:$PATH" cargo test --locked --workspace --no-fail-fast

# ---------------------------------------------------------------------------------------
# The same server-level suites again with the metadata in a real PostgreSQL, started here on
# 127.0.0.1 and stopped on exit.
find_pg_bin() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1
    fi
}
INITDB="$(find_pg_bin initdb)"
PG_CTL="$(find_pg_bin pg_ctl)"
[ -x "$INITDB" ] && [ -x "$PG_CTL" ] || { echo "initdb/pg_ctl not found; install the postgresql package" >&2; exit 1; }
PG_DIR="$ROOT/target/pg-test"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
rm -rf "$PG_DIR"
mkdir -p "$PG_DIR"
# PostgreSQL refuses to run as root: run it as nobody then.
PG_AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$PG_DIR"
    PG_AS=(runuser -u nobody --)
fi
stop_pg() { "${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; }
trap stop_pg EXIT
step "PostgreSQL on 127.0.0.1:$PG_PORT"
"${PG_AS[@]}" "$INITDB" -D "$PG_DIR/data" -U test --auth=trust >"$PG_DIR/initdb.log" 2>&1
"${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start

step "server suites again with metadata in PostgreSQL"
TEST_POSTGRES_URL="postgresql://test@127.0.0.1:$PG_PORT" PATH="$VENV/bin:$PATH" \
    cargo test --locked -p berth --no-fail-fast --test conformance --test clients --test crash

step "all tests passed"
