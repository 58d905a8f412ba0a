#!/usr/bin/env bash
# Live latency while the retention chore prunes (issue 20, docs/benchmarks.md): on a fresh database
# of the server SERVER_URL, loads TASKS finished 4-step tasks created 10 days ago (as
# scripts/prune-bench.sh does), starts orcastra-bench's sequential 4-step tasks (2 workers), and
# after a few seconds prunes the loaded tasks batch after batch (orcastra.prune_expired_tasks, 10,000
# rows a transaction, back to back until none is left: harder than an orchestrator, which rests
# between batches).
# Then it prints, from the database's own timestamps, created → finished of the live tasks that
# started while the prune ran beside those that started before or after it, and the prune's rate.
#
#   scripts/prune-latency.sh SERVER_URL [TASKS]        (TASKS default 300000)
#   ORCASTRA_BIN=/tmp/rel/release scripts/prune-latency.sh "$(orcastra dev-db url)"
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:?give the URL of a server where you may create databases, e.g. $(orcastra dev-db url)}
tasks=${2:-300000}
bin=${ORCASTRA_BIN:-.build/release}
. scripts/scratch-database.sh
bench_out=$(mktemp)
trap 'drop_scratch_database; rm -f "$bench_out"' EXIT
scratch_database "$server" orcastra_prune
PRUNE_BENCH_LOAD_ONLY=1 scripts/prune-bench.sh "$url" "$tasks" > /dev/null

# Enough sequential tasks to run before, during and after the prune (about 12 ms each here).
# Its orchestrator prunes nothing (ORCASTRA_PRUNE_INTERVAL=off): the loop below is the only prune.
ORCASTRA_PRUNE_INTERVAL=off timeout 900 "$bin/orcastra-bench" --database-url "$url" --linear 4000 --burn-down 0 --single-step 0 --submissions 0 \
    --rate 0 --history 0 --workers 2 > "$bench_out" 2>&1 &
bench=$!
# Start the prune once the live tasks run.
for _ in $(seq 120); do
    [ "$(psql -qAtX "$url" -c "SELECT count(*) FROM orcastra.tasks t JOIN orcastra.templates m ON m.id = t.template_id
                                 WHERE m.namespace = 'bench' AND m.name = 'linear' AND t.state = 'complete'")" -ge 300 ] && break
    sleep 0.5
done
loaded() {
    psql -qAtX "$url" -c "SELECT count(*) FROM orcastra.tasks t JOIN orcastra.templates m ON m.id = t.template_id
                          WHERE m.namespace = 'bench_prune'"
}
before=$(loaded)
# Batch after batch, each its own transaction, until none is left.
window=$(psql -qAtX -v ON_ERROR_STOP=1 "$url" <<'SQL'
SELECT clock_timestamp();
DO $$
DECLARE
    n integer;
BEGIN
    LOOP
        SELECT tasks INTO n FROM orcastra.prune_expired_tasks('{"complete_ms": 604800000}', 10000);
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END
$$;
SELECT clock_timestamp();
SQL
)
started=$(printf '%s\n' "$window" | head -1)
ended=$(printf '%s\n' "$window" | tail -1)
pruned=$(( before - $(loaded) ))
wait "$bench" || { cat "$bench_out"; exit 1; }
psql -qAtX "$url" <<SQL
WITH live AS (
    SELECT t.created_at BETWEEN '$started' AND '$ended' AS during,
           extract(epoch FROM t.finished_at - t.created_at) * 1000 AS ms
    FROM orcastra.tasks t JOIN orcastra.templates m ON m.id = t.template_id
    WHERE m.namespace = 'bench' AND m.name = 'linear' AND t.state = 'complete'
)
SELECT format('%s: %s live 4-step tasks, created → finished p50 %s ms, p99 %s ms',
              CASE WHEN during THEN 'during the prune' ELSE 'outside the prune' END, count(*),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2))
FROM live GROUP BY during ORDER BY during;
SELECT format('prune: %s tasks in %s s, %s tasks/s (%s loaded)', $pruned,
              round(extract(epoch FROM timestamptz '$ended' - timestamptz '$started')::numeric, 1),
              round($pruned / extract(epoch FROM timestamptz '$ended' - timestamptz '$started')), $tasks);
SQL
