#!/usr/bin/env bash
# Latency under load (issue 12, docs/benchmarks.md): on a fresh database of the server SERVER_URL,
# orcastra-bench runs 200 sequential 4-step tasks (the idle p50), a 3,000-task burn-down, then RATE
# tasks/s of continuous submission for 20 s, and this prints one line: the idle 4-step p50, the
# continuous created → finished p50 and p99, the completed rate, and whether submission fell behind.
# Compare two builds by running it with each (alternate them: the machine drifts).
#
#   scripts/latency-under-load.sh SERVER_URL [RATE]        (RATE default 375)
#   ORCASTRA_BIN=/tmp/rel/release ORCASTRA_MIGRATIONS_DIR=/tmp/old/Migrations scripts/latency-under-load.sh "$URL"
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:?give the URL of a server where you may create databases, e.g. $(orcastra dev-db url)}
rate=${2:-375}
bin=${ORCASTRA_BIN:-.build/release}
. scripts/scratch-database.sh
trap drop_scratch_database EXIT
scratch_database "$server" orcastra_load
out=$(timeout 600 "$bin/orcastra-bench" --database-url "$url" --linear 200 --burn-down 3000 --single-step 0 --submissions 0 \
      --rate "$rate" --rate-seconds 20 --history 0 --workers 2 2>&1)
value() { printf '%s\n' "$out" | grep -F "$1" | head -1 | awk '{print $(NF-1)}'; }
behind=$(printf '%s\n' "$out" | grep -o 'took [0-9.]* s' || true)
echo "rate=$rate idle_4step_p50=$(value 'submit → complete seen by client, p50')ms" \
     "continuous_p50=$(value 'continuous submit: created → finished, p50')ms continuous_p99=$(value 'continuous submit: created → finished, p99')ms" \
     "completed=$(value 'continuous submit at')steps/s ${behind:+(submission fell behind: $behind for 20 s)}"
