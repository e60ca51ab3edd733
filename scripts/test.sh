#!/usr/bin/env bash
# The one command that runs every Berth test on a fresh Debian (bookworm) machine:
#
#   ./scripts/test.sh
#
# It installs what the tests need (skipping what is already there), then runs, in order:
# rustfmt check, clippy (warnings are errors), a build of the binaries, cargo-deny (licences,
# duplicates, sources, advisories: deny.toml), and the whole workspace test suite, with the
# test venv's bin dir on PATH so tests find `oras`/python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ORAS_VERSION="0.2.43"
MOTO_VERSION="5.2.5"
AZURE_BLOB_VERSION="12.31.1"
# An OpenID Connect provider for tests/oidc.rs; 0.3.x is the last line for bookworm's Python 3.11.
OIDC_MOCK_VERSION="0.3.4"
# Validates the OpenAPI document Berth serves (tests/openapi.rs).
OPENAPI_VALIDATOR_VERSION="0.9.0"
# A real SMTP server for email notifications (tests/notifications.rs).
AIOSMTPD_VERSION="1.4.6"
AZURITE_VERSION="3.35.0"
# The web UI's browser test (tests/browser.rs) drives Debian's chromium with these (npm).
PLAYWRIGHT_VERSION="1.65.1"
AXE_VERSION="4.14.1"
UI_TOOLS_DIR="$ROOT/target/ui-tools"
# Licence, duplicate, source and advisory checks (deny.toml); 0.20.x builds with Rust >= 1.88.
CARGO_DENY_VERSION="0.20.2"
CARGO_AUDITABLE_VERSION=0.7.7
AZURITE_DIR="$ROOT/target/azurite"
VENV="$ROOT/target/test-venv"
# Debian packages the integration tests drive (real clients, a peer registry, and OpenLDAP's
# slapd + ldap-utils, which the LDAP test starts on its own port; DEBIAN_FRONTEND=noninteractive
# below keeps slapd's postinst from asking questions).
DEB_PACKAGES=(skopeo podman buildah docker-registry uidmap postgresql openssl slapd ldap-utils curl jq chromium mmdebstrap)

START=$(date +%s)
step() {
    printf '\n==> [%4ss] %s   (disk: %s free, target/ %s)\n' "$(($(date +%s) - START))" "$*" \
        "$(df -h --output=avail "$ROOT" 2>/dev/null | tail -1 | tr -d ' ')" \
        "$(du -sh "$ROOT/target" 2>/dev/null | cut -f1)"
}

# A fresh clone gains nothing from incremental compilation but its disk cost (several GB of
# query caches next to ~30 test binaries); a developer who wants it sets CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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
step "Python venv $VENV with oras==$ORAS_VERSION, moto==$MOTO_VERSION, azure-storage-blob==$AZURE_BLOB_VERSION, oidc-provider-mock==$OIDC_MOCK_VERSION, openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION, aiosmtpd==$AIOSMTPD_VERSION"
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
have_moto="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
if [ "$have_moto" != "$MOTO_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
have_azb="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("azure-storage-blob"))' 2>/dev/null || true)"
if [ "$have_azb" != "$AZURE_BLOB_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "azure-storage-blob==$AZURE_BLOB_VERSION"
fi
have_oav="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))' 2>/dev/null || true)"
if [ "$have_oav" != "$OPENAPI_VALIDATOR_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
fi
have_aiosmtpd="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null || true)"
if [ "$have_aiosmtpd" != "$AIOSMTPD_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi
have_oidc_mock="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("oidc-provider-mock"))' 2>/dev/null || true)"
if [ "$have_oidc_mock" != "$OIDC_MOCK_VERSION" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "oidc-provider-mock==$OIDC_MOCK_VERSION"
fi
"$VENV/bin/python" -c 'import oras.client, importlib.metadata as m; print("oras", m.version("oras"), "moto", m.version("moto"))'

# ---------------------------------------------------------------------------------------
step "Azurite $AZURITE_VERSION (Azure Blob Storage emulator, npm) in $AZURITE_DIR"
if ! command -v npm >/dev/null 2>&1; then
    missing_npm=(nodejs npm)
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing_npm[@]}"
fi
have_azurite="$(node -e "console.log(require('$AZURITE_DIR/node_modules/azurite/package.json').version)" 2>/dev/null || true)"
if [ "$have_azurite" != "$AZURITE_VERSION" ]; then
    mkdir -p "$AZURITE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION"
fi

# ---------------------------------------------------------------------------------------
step "playwright-core $PLAYWRIGHT_VERSION and axe-core $AXE_VERSION (npm) in $UI_TOOLS_DIR"
have_ui_tools="$(node -e "console.log(require('$UI_TOOLS_DIR/node_modules/playwright-core/package.json').version + ' ' + require('$UI_TOOLS_DIR/node_modules/axe-core/package.json').version)" 2>/dev/null || true)"
if [ "$have_ui_tools" != "$PLAYWRIGHT_VERSION $AXE_VERSION" ]; then
    mkdir -p "$UI_TOOLS_DIR"
    npm install --silent --no-audit --no-fund --prefix "$UI_TOOLS_DIR" \
        "playwright-core@$PLAYWRIGHT_VERSION" "axe-core@$AXE_VERSION"
fi
export UI_TEST_TOOLS="$UI_TOOLS_DIR" CHROMIUM=/usr/bin/chromium

# ---------------------------------------------------------------------------------------
step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo build --locked --bins"
cargo build --locked --bins

# ---------------------------------------------------------------------------------------
step "cargo-deny $CARGO_DENY_VERSION"
have_deny="$(cargo deny --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_deny" != "$CARGO_DENY_VERSION" ]; then
    cargo install --locked "cargo-deny@$CARGO_DENY_VERSION"
fi
cargo deny --version

step "cargo-auditable $CARGO_AUDITABLE_VERSION (the scanner's test builds a Rust binary with its dependency list)"
have_auditable="$(cargo auditable --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_auditable" != "$CARGO_AUDITABLE_VERSION" ]; then
    cargo install --locked "cargo-auditable@$CARGO_AUDITABLE_VERSION"
fi

step "cargo deny check licenses bans sources"
cargo deny --locked check --hide-inclusion-graph licenses bans sources

# Advisories need the RustSec database, which cargo-deny clones from GitHub; CI and these
# machines reach package registries only. In order of preference:
#  - BERTH_DENY_FETCH=1 (a machine with GitHub access): cargo-deny fetches the live database;
#  - the RustSec data exported as OSV (osv.dev's crates.io/all.zip, the same advisories), from
#    BERTH_OSV_CRATES_ZIP or a vulndb/ copy of shared/ next to the checkout: converted into a
#    database cargo-deny reads offline (scripts/rustsec-db-from-osv.py), its date printed;
#  - neither: advisories are NOT checked, and this says so; the other checks still ran.
step "cargo deny check advisories"
osv_zip="${BERTH_OSV_CRATES_ZIP:-}"
if [ -n "$osv_zip" ] && [ ! -f "$osv_zip" ]; then
    echo "BERTH_OSV_CRATES_ZIP=$osv_zip: no such file" >&2
    exit 1
elif [ -z "$osv_zip" ]; then
    for candidate in "$ROOT/../shared/vulndb/crates.io/all.zip" /work/shared/vulndb/crates.io/all.zip; do
        if [ -f "$candidate" ]; then
            osv_zip="$candidate"
            break
        fi
    done
fi
if [ "${BERTH_DENY_FETCH:-}" = 1 ]; then
    cargo deny --locked check --hide-inclusion-graph advisories
elif [ -n "$osv_zip" ]; then
    db_root="$ROOT/target/advisory-dbs"
    # Prints: <database dir> <date of its newest record> <advisory count>
    db_info="$(python3 "$ROOT/scripts/rustsec-db-from-osv.py" \
        "$osv_zip" "$db_root" "https://github.com/rustsec/advisory-db")"
    read -r _ db_date db_count <<<"$db_info"
    age_days=$(( ($(date -u +%s) - $(date -u -d "$db_date" +%s)) / 86400 ))
    echo "RustSec advisories: $db_count from $osv_zip, newest dated $db_date ($age_days days ago)"
    if [ "$age_days" -gt 90 ]; then
        echo "WARNING: the advisory data is $age_days days old; advisories published since $db_date are NOT checked"
    fi
    # The same deny.toml, reading that database without fetching; cargo-deny's staleness limit
    # is widened to this snapshot's age, which is printed above instead.
    python3 - "$ROOT/deny.toml" "$ROOT/target/deny-offline.toml" "$db_root" "$((age_days + 1))" <<'PY'
import sys
src, dst, root, days = sys.argv[1:]
out = []
for line in open(src):
    out.append(line)
    if line.strip() == "[advisories]":
        out.append(f'db-path = "{root}"\nmaximum-db-staleness = "P{days}D"\n')
open(dst, "w").write("".join(out))
PY
    cargo deny --locked --offline --config "$ROOT/target/deny-offline.toml" \
        check --hide-inclusion-graph advisories
    echo "advisories ok (offline RustSec data of $db_date)"
else
    echo "ADVISORIES NOT CHECKED: no RustSec data on this machine (cargo-deny cannot fetch it"
    echo "without GitHub access). Set BERTH_OSV_CRATES_ZIP=<crates.io OSV all.zip>, or"
    echo "BERTH_DENY_FETCH=1 where GitHub is reachable. Licences, bans and sources were checked."
fi

# ---------------------------------------------------------------------------------------
# Real services for the tests, on 127.0.0.1, stopped on exit: PostgreSQL and an S3-compatible
# server (moto).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
PG_PORT="$(free_port)"
rm -rf "$PG_DIR"
mkdir -p "$PG_DIR"
# PostgreSQL refuses to run as root: run it as nobody then.
PG_AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$PG_DIR"
    PG_AS=(runuser -u nobody --)
fi
MOTO_PID=""
AZURITE_PID=""
cleanup() {
    [ -n "$AZURITE_PID" ] && kill "$AZURITE_PID" 2>/dev/null || true
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT
step "PostgreSQL on 127.0.0.1:$PG_PORT"
"${PG_AS[@]}" "$INITDB" -D "$PG_DIR/data" -U test --auth=trust >"$PG_DIR/initdb.log" 2>&1
"${PG_AS[@]}" "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start
export TEST_POSTGRES_URL_SERVER="postgresql://test@127.0.0.1:$PG_PORT"

S3_PORT="$(free_port)"
step "S3-compatible server (moto) on 127.0.0.1:$S3_PORT"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$ROOT/target/moto.log" 2>&1 &
MOTO_PID=$!
export TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" TEST_S3_BUCKET=berth-test
"$VENV/bin/python" - <<PY
import time, boto3
c = boto3.client("s3", endpoint_url="$TEST_S3_ENDPOINT", aws_access_key_id="test",
                 aws_secret_access_key="test", region_name="us-east-1")
for _ in range(100):
    try:
        c.create_bucket(Bucket="berth-test"); break
    except Exception:
        time.sleep(0.1)
else:
    raise SystemExit("moto did not start")
PY

AZ_PORT="$(free_port)"
step "Azure Blob Storage emulator (Azurite) on 127.0.0.1:$AZ_PORT"
rm -rf "$AZURITE_DIR/data"
"$AZURITE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
    --location "$AZURITE_DIR/data" --skipApiVersionCheck --disableTelemetry >"$ROOT/target/azurite.log" 2>&1 &
AZURITE_PID=$!
export TEST_AZURE_ENDPOINT="http://127.0.0.1:$AZ_PORT/devstoreaccount1" TEST_AZURE_CONTAINER=berth-test
"$VENV/bin/python" - <<PY
import time
from azure.storage.blob import BlobServiceClient
# Azurite's well-known development account.
key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
cs = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=$TEST_AZURE_ENDPOINT;"
for _ in range(100):
    try:
        BlobServiceClient.from_connection_string(cs).create_container("berth-test"); break
    except Exception:
        time.sleep(0.1)
else:
    raise SystemExit("azurite did not start")
PY

export PATH="$VENV/bin:$PATH"
step "cargo test --locked --workspace --no-fail-fast   (servers on SQLite + filesystem)"
cargo test --locked --workspace --no-fail-fast

# Suites re-run per metadata/storage backend. Suites that do not depend on the backend (oidc, ldap, cli,
# ...) run once, in the workspace run above, on SQLite + filesystem.
SERVER_SUITES=(--test conformance --test clients --test crash --test multi_instance --test replication --test authz --test time_machine --test gc --test quota --test labels --test autoprune --test notifications --test scanning --test mirror --test proxy_cache --test org_mirror)
step "server suites on PostgreSQL + filesystem"
TEST_POSTGRES_URL="$TEST_POSTGRES_URL_SERVER" cargo test --locked -p berth --no-fail-fast "${SERVER_SUITES[@]}"
# berth-db's own tests of SQL written per backend (each makes a database of its own).
TEST_POSTGRES_URL="$TEST_POSTGRES_URL_SERVER" cargo test --locked -p berth-db --lib on_postgres

step "server suites on PostgreSQL + S3, the conformance suite split across two instances"
TEST_POSTGRES_URL="$TEST_POSTGRES_URL_SERVER" TEST_STORAGE=s3 TEST_CLUSTER=1 \
    cargo test --locked -p berth --no-fail-fast "${SERVER_SUITES[@]}"

step "all tests passed"
