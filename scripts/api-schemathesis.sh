#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a live orcastra-orchestrator --http-address, from docs/openapi.yaml,
# with an admin token: every operation, no 5xx, every response as the spec says. Called by .ci/run.
#
#   scripts/api-schemathesis.sh              # the debug build; SCHEMATHESIS_EXAMPLES=N per operation (default 25)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/.build/${API_BUILD:-debug}"
ORCASTRA="$BIN/orcastra"
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}

if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet schemathesis==4.32.5 2>/dev/null || python3 -m pip install --quiet --break-system-packages schemathesis==4.32.5
fi

WORK=$(mktemp -d /tmp/orcastra-schemathesis-XXXXXX)
chmod 755 "$WORK"   # the server runs as the postgres user when we are root
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db destroy --yes >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export ORCASTRA_DATABASE_URL=$(ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db url)
"$ORCASTRA" migrate >/dev/null
"$ORCASTRA" template register Templates/ >/dev/null
TOKEN=$("$ORCASTRA" token create --name schemathesis --scopes admin 2>/dev/null)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ORCASTRA_LOG_LEVEL=notice "$BIN/orcastra-orchestrator" --http-address "127.0.0.1:$PORT" >"$WORK/orchestrator.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null && break
    sleep 0.1
done

status=0
schemathesis --config-file scripts/schemathesis.toml run docs/openapi.yaml --url "http://127.0.0.1:$PORT" -H "Authorization: Bearer $TOKEN" \
    --checks all --max-examples "$EXAMPLES" --seed 1 --no-color "$@" || status=$?
if grep -q "internal error answering" "$WORK/orchestrator.log"; then
    echo "!! the server logged internal errors:"; grep -A2 "internal error answering" "$WORK/orchestrator.log" | head -40
    status=1
fi
exit "$status"
