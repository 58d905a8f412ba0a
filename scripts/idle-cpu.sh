#!/usr/bin/env bash
# Idle CPU of an orchestrator and a worker: starts both against a database with nothing to do,
# lets them settle, then reads their CPU time from /proc over a window and prints the share of
# one core each used. Target (docs/benchmarks.md): at most 0.1 %.
#
#   scripts/idle-cpu.sh [SECONDS]          (default 60; uses .build/release, else .build/debug)
#   ORCASTRA_BIN=.build-rel/release scripts/idle-cpu.sh 60
#   ORCASTRA_DATABASE_URL=...              (default: the development database, `orcastra dev-db url`)
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-60}
bin=${ORCASTRA_BIN:-$([ -x .build/release/orcastra ] && echo .build/release || echo .build/debug)}
url=${ORCASTRA_DATABASE_URL:-$("$bin/orcastra" dev-db url)}
export ORCASTRA_DATABASE_URL=$url
"$bin/orcastra" migrate >/dev/null
"$bin/orcastra-orchestrator" --log-level warning & orchestrator=$!
"$bin/orcastra-worker" --namespace idle-cpu --log-level warning & worker=$!
trap 'kill $orchestrator $worker 2>/dev/null; wait 2>/dev/null' EXIT
sleep 5   # start-up work (connecting, LISTEN) is not idle time
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
o0=$(ticks $orchestrator); w0=$(ticks $worker)
sleep "$window"
o1=$(ticks $orchestrator); w1=$(ticks $worker)
for pair in "orchestrator $o0 $o1" "worker $w0 $w1"; do
    set -- $pair
    awk -v name="$1" -v a="$2" -v b="$3" -v hz="$hz" -v s="$window" \
        'BEGIN { printf "idle %s: %.3f %% of one core over %d s (%d ticks of 1/%d s)\n", name, 100 * (b - a) / hz / s, s, b - a, hz }'
done
