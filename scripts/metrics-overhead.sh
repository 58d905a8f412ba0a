#!/usr/bin/env bash
# What recording metrics costs a worker (docs/benchmarks.md): N examples/linear tasks (4 no-op steps)
# are submitted while no worker runs, then one release worker drains them, without metrics ("off")
# or with --metrics-address ("on"); prints its wall time and its CPU time per step (/proc, 10 ms
# ticks). Usage: scripts/metrics-overhead.sh off on off on   (N=5000 for more tasks per run).
# Needs a running dev database with the schema and Templates/linear.yaml registered
# (ORCASTRA_DEV_DB_DIR chooses it) and `swift build -c release --scratch-path .build-rel`.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-.build-rel/release}
URL=$($R/orcastra dev-db url)
export ORCASTRA_DATABASE_URL=$URL
N=${N:-3000}
for mode in "$@"; do
  psql -qAt "$URL" -c "SELECT count(*) FROM generate_series(1, $N) g, LATERAL orcastra.create_task_by_name('examples', 'linear', p_context => jsonb_build_object('i', g)) c" >/dev/null
  extra=(); [ "$mode" = on ] && extra=(--metrics-address 127.0.0.1:0)
  start=$(date +%s.%N)
  $R/orcastra-worker --namespace examples --concurrency 64 --claim-batch 32 --log-level warning "${extra[@]}" 2>/tmp/metrics-cpu-worker.log &
  pid=$!
  while [ "$(psql -qAt "$URL" -c "SELECT count(*) FROM orcastra.steps WHERE namespace = 'examples' AND state IN ('pending','enqueued','in_progress')")" != 0 ]; do sleep 0.2; done
  end=$(date +%s.%N)
  read -r utime stime < <(awk '{print $14, $15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  steps=$((N * 4))
  echo "$mode: $steps steps, wall $(echo "$end - $start" | bc) s, worker CPU $(( (utime + stime) * 10 )) ms = $(echo "scale=1; (($utime + $stime) * 10000) / $steps" | bc) µs/step"
done
