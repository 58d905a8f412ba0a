#!/usr/bin/env bash
# A mixed run (issues 12 and 20, docs/benchmarks.md): on a fresh database of the server SERVER_URL,
# continuous submission at RATE tasks/s for SECONDS (orcastra-bench, two workers) while
# `orcastra prune --older-than 2m` runs every minute; every minute it prints the tasks, and size,
# index size, dead and live tuples and autovacuum count of the tables a task owns. At the end it
# prints per minute, from the history (which the prune leaves to its partitions): tasks created,
# steps completed per second, and created → finished p50 / p99. Run it against a server with
# default autovacuum settings to see what they do (ALTER SYSTEM SET autovacuum_naptime = '1min').
#
#   scripts/mixed-run.sh SERVER_URL [RATE] [SECONDS]       (defaults 300 and 600; ORCASTRA_BIN as elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:?give the URL of a server where you may create databases}
rate=${2:-300}
seconds=${3:-600}
bin=${ORCASTRA_BIN:-.build/release}
. scripts/scratch-database.sh
log=$(mktemp)
trap 'kill ${bench:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -f "$log"; drop_scratch_database' EXIT
scratch_database "$server" orcastra_mixed
timeout $((seconds + 600)) "$bin/orcastra-bench" --database-url "$url" --linear 0 --burn-down 2000 --single-step 0 --submissions 0 \
    --rate "$rate" --rate-seconds "$seconds" --history 0 --workers 2 >"$log" 2>&1 &
bench=$!
sleep 15
while kill -0 "$bench" 2>/dev/null; do
    psql -qXAt "$url" -c "
        SELECT to_char(now(), 'HH24:MI:SS') || ' tasks=' || (SELECT count(*) FROM orcastra.tasks) || ' | '
               || string_agg(format('%s %s+%s idx, dead %s, live %s, autovacuums %s', relname, pg_size_pretty(pg_table_size(relid)),
                                    pg_size_pretty(pg_indexes_size(relid)), n_dead_tup, n_live_tup, autovacuum_count), '; ' ORDER BY relname)
        FROM pg_stat_user_tables WHERE schemaname = 'orcastra' AND relname IN ('tasks', 'steps', 'step_results', 'step_edges')"
    ORCASTRA_DATABASE_URL="$url" "$bin/orcastra" prune --older-than 2m 2>&1 | head -1
    sleep 60
done
echo "per minute (created, steps completed/s, created → finished p50 / p99 ms):"
psql -qXAt "$url" -c "
    WITH t AS (SELECT task_id, min(created_at) AS c, max(created_at) FILTER (WHERE to_state = 'complete') AS f
               FROM orcastra.task_transitions GROUP BY task_id),
         s AS (SELECT date_trunc('minute', created_at) AS m, count(*) FILTER (WHERE to_state = 'complete') AS n
               FROM orcastra.step_transitions GROUP BY 1)
    SELECT to_char(date_trunc('minute', t.c), 'HH24:MI'), count(*), round(max(s.n) / 60.0),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.f - t.c) * 1000)::numeric, 1),
           round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM t.f - t.c) * 1000)::numeric, 1)
    FROM t JOIN s ON s.m = date_trunc('minute', t.c) WHERE t.f IS NOT NULL GROUP BY 1 ORDER BY 1"
