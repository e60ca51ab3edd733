#!/usr/bin/env bash
# Profiles one large blob push into a Berth server and draws the flame graph of the server's CPU.
#
#   scripts/profile-push.sh [BERTH_BIN] [OUT_PREFIX] [SIZE_MIB]
#
# Starts BERTH_BIN (default target/release/berth) on a free 127.0.0.1 port with a temporary data
# directory (default configuration, so STORAGE_FSYNC on), logs in, and pushes SIZE_MIB (default
# 1024) random bytes the way podman does (POST, one streamed PATCH, PUT ?digest=) with curl,
# while `perf record` samples the server (997 Hz, DWARF call graphs). Writes OUT_PREFIX.svg (the
# flame graph, inferno) and OUT_PREFIX.txt (the timings and the top of the profile), then stops
# the server and removes the data. Needs perf, curl and inferno (`cargo install inferno`).
set -euo pipefail

BIN="${1:-target/release/berth}"
OUT="${2:-push-profile}"
SIZE_MIB="${3:-1024}"
PASSWORD="profile-admin-password"

for tool in perf curl inferno-collapse-perf inferno-flamegraph sha256sum; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
BERTH_BOOTSTRAP_SUPERUSER_PASSWORD="$PASSWORD" RUST_LOG=warn \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/v2/" && break
    sleep 0.1
done

head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/blob"
DIGEST="sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)"

SERVICE="$(curl -s -D - -o /dev/null "$BASE/v2/" | tr -d '\r' | sed -n 's/.*service="\([^"]*\)".*/\1/p')"
TOKEN="$(curl -s -u "admin:$PASSWORD" -G "$BASE/v2/auth" --data-urlencode "service=$SERVICE" \
    --data-urlencode "scope=repository:profile/blob:pull,push" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
AUTH="Authorization: Bearer $TOKEN"

LOCATION="$(curl -s -D - -o /dev/null -X POST -H "$AUTH" "$BASE/v2/profile/blob/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')"
case "$LOCATION" in http*) ;; *) LOCATION="$BASE$LOCATION" ;; esac

sync
perf record -q -F 997 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$WORK/perf.data" 2>/dev/null &
PERF_PID=$!
sleep 0.5
cpu() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
faults() { awk '{print $10}' "/proc/$SERVER_PID/stat"; }
CPU0="$(cpu)"
FAULTS0="$(faults)"
START=$(date +%s.%N)
NEXT="$(curl -s -D - -o /dev/null -X PATCH -H "$AUTH" -H 'Content-Type: application/octet-stream' \
    -T "$WORK/blob" -w '%{time_total}\n' "$LOCATION" | tr -d '\r')"
PATCH_S="$(echo "$NEXT" | tail -1)"
LOCATION="$(echo "$NEXT" | sed -n 's/^[Ll]ocation: //p')"
case "$LOCATION" in http*) ;; *) LOCATION="$BASE$LOCATION" ;; esac
SEP='?'
case "$LOCATION" in *\?*) SEP='&' ;; esac
PUT="$(curl -s -o /dev/null -X PUT -H "$AUTH" -w '%{http_code} %{time_total}' "$LOCATION${SEP}digest=$DIGEST")"
END=$(date +%s.%N)
CPU1="$(cpu)"
FAULTS1="$(faults)"
sleep 0.2
kill -INT "$PERF_PID"
wait "$PERF_PID" || true

perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf >"$WORK/folded"
[ -n "${FOLDED:-}" ] && cp "$WORK/folded" "$FOLDED"
inferno-flamegraph --title "berth: push of $SIZE_MIB MiB (POST, PATCH, PUT)" <"$WORK/folded" >"$OUT.svg"
{
    echo "binary: $BIN ($(sha256sum "$BIN" | cut -c1-12))"
    echo "blob: $SIZE_MIB MiB, $DIGEST"
    echo "PATCH: ${PATCH_S}s; PUT (commit): ${PUT#* }s, status ${PUT%% *}"
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'PATCH+PUT: {s:.2f}s, {int(sys.argv[3])/s:.0f} MiB/s')" "$START" "$END" "$SIZE_MIB"
    echo "server CPU during PATCH+PUT: $(python3 -c "import os,sys; print(f'{(int(sys.argv[2])-int(sys.argv[1]))/os.sysconf(\"SC_CLK_TCK\"):.2f}s')" "$CPU0" "$CPU1")"
    echo "server page faults during PATCH+PUT: $((FAULTS1 - FAULTS0))"
    echo
    echo "share of server samples by function (self), top 25:"
    perf report -i "$WORK/perf.data" --no-children --sort symbol -g none --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | awk 'NR <= 25'
    echo
    echo "share of server samples by thread:"
    perf report -i "$WORK/perf.data" --no-children --sort pid -g none --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | awk 'NR <= 10'
} | tee "$OUT.txt"
[ "${PUT%% *}" = "201" ] || { echo "the push failed (PUT answered ${PUT%% *})" >&2; exit 1; }
