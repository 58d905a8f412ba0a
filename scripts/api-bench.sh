#!/usr/bin/env bash
# Benchmarks the HTTP API (docs/benchmarks.md, "HTTP API"): POST /v1/tasks with keep-alive through wrk
# (Debian's wrk), against direct SQL submission (pgbench calling orcastra.create_task) in the same run,
# GET /v1/tasks/{id}, and the orchestrator's memory over a 60 s run.
#
#   scripts/api-bench.sh                    # release binaries (API_BENCH_BUILD=debug for the debug ones)
#   API_BENCH_SECONDS=60                    # length of the sustained run
#   API_BENCH_SCRATCH=/tmp/api-rel          # binaries of `swift build --scratch-path DIR` instead of .build
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${API_BENCH_BUILD:-release}
SECONDS_LONG=${API_BENCH_SECONDS:-60}
SCRATCH=${API_BENCH_SCRATCH:-$ROOT/.build}
if [ "${API_BENCH_SKIP_BUILD:-0}" != 1 ]; then
    for product in orcastra orcastra-orchestrator; do swift build -c "$BUILD" --scratch-path "$SCRATCH" --product "$product" >/dev/null; done
fi
BIN="$SCRATCH/$BUILD"
ORCASTRA="$BIN/orcastra"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
command -v pgbench >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | tail -1)"

WORK=$(mktemp -d /tmp/orcastra-api-bench-XXXXXX)
chmod 755 "$WORK"
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db destroy --yes >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export ORCASTRA_DATABASE_URL=$(ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db url)
"$ORCASTRA" migrate >/dev/null
cat > "$WORK/idle.yaml" <<'YAML'
namespace: bench_idle
name: idle
version: 1.0.0
description: One step in a namespace no worker serves, for scripts/api-bench.sh.
steps:
  - {name: a, handler: orcastra.noop}
YAML
"$ORCASTRA" template register "$WORK/idle.yaml" >/dev/null
TOKEN=$("$ORCASTRA" token create --name bench --scopes admin 2>/dev/null)
PSQL=(psql "$ORCASTRA_DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1)
TEMPLATE_ID=$("${PSQL[@]}" -c "SELECT id FROM orcastra.templates WHERE namespace = 'bench_idle'")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ORCASTRA_LOG_LEVEL=warning "$BIN/orcastra-orchestrator" --http-address "127.0.0.1:$PORT" >"$WORK/orchestrator.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT"

p50_of_pgbench_log() { cat "$@" | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int(NR*0.5)+1]}'; }

echo "load average: $(cut -d" " -f1-3 /proc/loadavg)"
echo "== direct SQL: orcastra.create_task, 1 client, 5,000 submissions (pgbench)"
echo "SELECT task_id FROM orcastra.create_task($TEMPLATE_ID::bigint, '{\"order_id\": 1}'::jsonb, NULL::text, 0, NULL::timestamptz, false);" > "$WORK/create.sql"
(cd "$WORK" && pgbench -n -c 1 -t 5000 -f create.sql -l --log-prefix=direct "$ORCASTRA_DATABASE_URL" | grep -E "tps|latency average")
SQL_P50=$(p50_of_pgbench_log "$WORK"/direct.*)
echo "direct SQL p50: $SQL_P50 ms"
# The ceiling for the 16-connection HTTP run: what PostgreSQL itself takes on this machine.
echo "== direct SQL: orcastra.create_task, 16 clients, 10 s (pgbench)"
(cd "$WORK" && pgbench -n -c 16 -j 2 -T 10 -f create.sql "$ORCASTRA_DATABASE_URL" | grep -E "^tps|latency average")

cat > "$WORK/submit.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"template": "bench_idle/idle", "context": {"order_id": 1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
echo "== POST /v1/tasks, 1 connection, 10 s"
wrk -t1 -c1 -d10s --latency -s "$WORK/submit.lua" "$URL/v1/tasks" | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"
echo "== POST /v1/tasks, 16 connections, 10 s"
wrk -t2 -c16 -d10s --latency -s "$WORK/submit.lua" "$URL/v1/tasks" | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"

ID=$(curl -s -H "Authorization: Bearer $TOKEN" --json '{"template": "bench_idle/idle"}' "$URL/v1/tasks" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cat > "$WORK/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
echo "== GET /v1/tasks/{id}, 16 connections, 10 s"
wrk -t2 -c16 -d10s --latency -s "$WORK/get.lua" "$URL/v1/tasks/$ID" | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"

rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$PID/status"; }
echo "load average: $(cut -d" " -f1-3 /proc/loadavg)"
echo "== memory over ${SECONDS_LONG} s of POST /v1/tasks at 16 connections"
BEFORE=$(rss)
wrk -t2 -c16 -d"${SECONDS_LONG}s" -s "$WORK/submit.lua" "$URL/v1/tasks" > "$WORK/long.txt" &
WRK=$!
samples="$BEFORE"
for _ in $(seq 1 $((SECONDS_LONG / 10))); do sleep 10; samples="$samples $(rss)"; done
wait "$WRK"
grep -E "Requests/sec|Non-2xx" "$WORK/long.txt"
echo "orchestrator RSS (MiB), every 10 s: $samples"
echo "tasks created: $("${PSQL[@]}" -c "SELECT count(*) FROM orcastra.tasks")"
grep -c "internal error answering" "$WORK/orchestrator.log" | sed 's/^/internal errors logged: /' || true
