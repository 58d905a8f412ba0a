#!/bin/sh
# Prune throughput of the retention chore (docs/benchmarks.md, docs/retention.md): loads N finished
# 4-step linear tasks shaped like a real run's (4 steps, 3 edges, 4 results, 12 step transitions,
# 2 task transitions: 26 rows each), created and finished 10 days ago, then runs
# orcastra.prune_expired_tasks batch after batch (one transaction each, 10,000 rows at most, as an
# orchestrator does but without its rests) until none is left, and prints tasks/s, rows/s, the WAL
# it wrote and the row-level foreign-key checks it cost (none since migration 0018). Then it drops the history of the pruned tasks the
# way the orchestrators do (orcastra.maintain_history_partitions: their week's partitions whole)
# and prints how long that took and what it freed.
#
# Usage: scripts/prune-bench.sh DATABASE_URL [TASKS]   (a migrated database you can fill and empty:
# it TRUNCATEs orcastra.tasks, what they own and the history; PRUNE_BENCH_LOAD_ONLY=1 only loads)
set -eu
url=${1:?give the URL of a migrated scratch database}
tasks=${2:-100000}
batches=$(( tasks * 26 / 9000 + 20 ))

psql -q -v ON_ERROR_STOP=1 -v n="$tasks" "$url" <<'SQL'
TRUNCATE orcastra.tasks, orcastra.steps, orcastra.step_results, orcastra.step_edges, orcastra.step_items,
         orcastra.task_transitions, orcastra.step_transitions CASCADE;
DELETE FROM orcastra.templates WHERE namespace = 'bench_prune';
INSERT INTO orcastra.templates (namespace, name, version, definition, source, content_hash, step_count)
VALUES ('bench_prune', 'linear', '1.0.0', '{}', 'loaded by scripts/prune-bench.sh', 'prune-bench', 4);
INSERT INTO orcastra.tasks (template_id, state, state_reason, context, created_at, started_at, finished_at)
SELECT (SELECT id FROM orcastra.templates WHERE namespace = 'bench_prune'), 'complete', 'loaded', '{"n": 1}'::jsonb,
       now() - interval '10 days', now() - interval '10 days', now() - interval '10 days' + g * interval '1 microsecond'
FROM generate_series(1, :n) g;
INSERT INTO orcastra.steps (task_id, name, namespace, state, state_reason, max_attempts, attempts, pending_parents, finished_at)
SELECT t.id, 's' || k, 'bench_prune', 'complete', 'loaded', 3, 1, 0, t.finished_at FROM orcastra.tasks t CROSS JOIN generate_series(1, 4) k
ORDER BY t.finished_at, k; -- a task's steps together, as create_task inserts them
INSERT INTO orcastra.step_edges (parent_id, child_id)
SELECT a.id, b.id FROM orcastra.steps a JOIN orcastra.steps b ON b.task_id = a.task_id AND b.name = 's' || (substr(a.name, 2)::int + 1);
INSERT INTO orcastra.step_results (step_id, result) SELECT id, '{"ok": true}'::jsonb FROM orcastra.steps;
-- The history goes to the partitions of the tasks' creation week (migration 0014).
SELECT orcastra.create_history_partition(h, orcastra.history_week(now() - interval '10 days'))
FROM unnest(ARRAY['task_transitions', 'step_transitions']) h;
INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
SELECT s.id, s.task_id, f.f, f.t, 1, 'loaded', now() - interval '10 days' FROM orcastra.steps s
CROSS JOIN (VALUES ('pending', 'enqueued'), ('enqueued', 'in_progress'), ('in_progress', 'complete')) AS f(f, t);
INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
SELECT t.id, f.f, f.t, 'loaded', t.created_at FROM orcastra.tasks t
CROSS JOIN (VALUES ('pending', 'in_progress'), ('in_progress', 'complete')) AS f(f, t);
VACUUM ANALYZE;
SQL
# scripts/prune-latency.sh loads this way, then prunes while live tasks run.
if [ -n "${PRUNE_BENCH_LOAD_ONLY:-}" ]; then exit 0; fi

script=$(mktemp)
trap 'rm -f "$script"' EXIT
i=0
while [ "$i" -lt "$batches" ]; do
    echo "SELECT tasks, deleted_rows FROM orcastra.prune_expired_tasks('{\"complete_ms\": 604800000}', 10000);" >> "$script"
    i=$((i + 1))
done
# Foreign-key checks a delete costs: one per deleted row of a referenced table per foreign key
# that references it (each is a query the RI trigger runs).
fk_counts=$(psql -qAt "$url" -c "
    SELECT string_agg(c.confrelid::regclass::text || '=' || count, ' ') FROM (
        SELECT confrelid, count(*) FROM pg_constraint WHERE contype = 'f'
        AND confrelid IN ('orcastra.tasks'::regclass, 'orcastra.steps'::regclass) AND conparentid = 0 GROUP BY confrelid) c")
# Table and index sizes of what a task owns, and dead tuples: loaded, pruned, then vacuumed.
sizes() {
    psql -qAt "$url" -c "
        SELECT '$1: ' || string_agg(format('%s %s (indexes %s, dead %s)', c.relname, pg_size_pretty(pg_table_size(c.oid)),
                                           pg_size_pretty(pg_indexes_size(c.oid)), coalesce(s.n_dead_tup, 0)), '; ' ORDER BY c.relname)
        FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.oid IN ('orcastra.tasks'::regclass, 'orcastra.steps'::regclass, 'orcastra.step_results'::regclass, 'orcastra.step_edges'::regclass)"
}
psql -qAt "$url" -c "SELECT pg_stat_force_next_flush()" >/dev/null 2>&1 || true
sizes "sizes loaded"
wal_before=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn()")
start=$(date +%s.%N)
totals=$(psql -qAt -v ON_ERROR_STOP=1 "$url" -f "$script" | awk -F'|' '{t += $1; r += $2; if ($1 > 0) b++} END {print t, r, b}')
end=$(date +%s.%N)
wal=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn() - '$wal_before'::pg_lsn")
left=$(psql -qAt "$url" -c "SELECT count(*) FROM orcastra.tasks")
echo "$totals $start $end $left $wal" | awk '{s = $5 - $4; printf "pruned %d tasks (%d rows) in %d batches in %.1f s: %.0f tasks/s, %.0f rows/s; %d tasks left; WAL %.1f MB (%.0f bytes/task)\n", $1, $2, $3, s, $1 / s, $2 / s, $6, $7 / 1048576, $7 / ($1 > 0 ? $1 : 1)}'
sleep 1   # statistics are flushed about once a second
sizes "sizes pruned"
psql -qAt "$url" -c "VACUUM orcastra.tasks, orcastra.steps, orcastra.step_results, orcastra.step_edges" >/dev/null
sleep 1
sizes "sizes after VACUUM (freed heap pages at the end of a table go back to the system; index pages stay, reused by new rows)"
echo "row-level foreign keys checked per deleted row: ${fk_counts:-none (migration 0018: statement-level triggers)} (4-step task: 1 task + 4 steps deleted)"
psql -qAt -v ON_ERROR_STOP=1 "$url" <<'SQL'
\timing on
SELECT format('history partitions: %s created, %s dropped (%s freed)', created, dropped, pg_size_pretty(dropped_bytes))
FROM orcastra.maintain_history_partitions();
\timing off
SELECT format('%s transition rows left in the history', (SELECT count(*) FROM orcastra.task_transitions) + (SELECT count(*) FROM orcastra.step_transitions));
SQL
