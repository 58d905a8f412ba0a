#!/bin/bash
# EXPLAIN ANALYZE of the statement that releases children, 30 times, in a database migrated from
# main's Migrations/ (before) or from a branch with issue 19's conditions (after), which holds the
# template with id 1: a 4-step linear chain a → b → c → d in namespace e2e (docs/benchmarks.md,
# "Conditions and triggers"). Usage: condition-hotpath-explain.sh DATABASE_URL before|after
# Prints Execution Time lines; pipe through grep/sort for the median.
set -euo pipefail
D="$1"
if [ "$2" = before ]; then
STMT="WITH finished_parents AS (SELECT e.child_id, count(*)::int AS n FROM orcastra.step_edges e WHERE e.parent_id = ANY (ARRAY[:'a']::bigint[]) GROUP BY e.child_id), released AS (UPDATE orcastra.steps c SET pending_parents = c.pending_parents - f.n, state = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN 'enqueued' ELSE c.state END, state_reason = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN 'parents complete' ELSE c.state_reason END, enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN now() ELSE c.enqueued_at END FROM finished_parents f WHERE c.id = f.child_id RETURNING c.namespace, c.task_id, c.state) SELECT coalesce(array_agg(DISTINCT namespace) FILTER (WHERE state = 'enqueued'), '{}'), coalesce(array_agg(DISTINCT task_id) FILTER (WHERE state = 'enqueued'), '{}') FROM released"
else
STMT="WITH finished_parents AS (SELECT e.child_id, count(*)::int AS n FROM orcastra.step_edges e WHERE e.parent_id = ANY (ARRAY[:'a']::bigint[]) GROUP BY e.child_id), released AS (UPDATE orcastra.steps c SET pending_parents = c.pending_parents - f.n, state = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL AND c.when_condition IS NULL AND c.skipped_parents = 0 THEN 'enqueued' ELSE c.state END, state_reason = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL AND c.when_condition IS NULL AND c.skipped_parents = 0 THEN 'parents complete' ELSE c.state_reason END, enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL AND c.when_condition IS NULL AND c.skipped_parents = 0 THEN now() ELSE c.enqueued_at END FROM finished_parents f WHERE c.id = f.child_id RETURNING c.id, c.namespace, c.task_id, c.state, c.state = 'pending' AND (c.pending_parents = 0 OR c.trigger_rule IN ('one_success', 'all_done')) AS undecided) SELECT coalesce(array_agg(DISTINCT namespace) FILTER (WHERE state = 'enqueued'), '{}'), coalesce(array_agg(DISTINCT task_id) FILTER (WHERE state = 'enqueued'), '{}'), array_agg(id ORDER BY id) FILTER (WHERE undecided) FROM released"
fi
psql -qAt "$D" <<SQL
SELECT task_id FROM orcastra.create_task(1, '{}') \gset
SELECT id AS a FROM orcastra.steps WHERE task_id = :'task_id' AND name = 'a' \gset
SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off;
$(for i in $(seq 1 30); do echo "BEGIN; EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) $STMT; ROLLBACK;"; done)
SQL
