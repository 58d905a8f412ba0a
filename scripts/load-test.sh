#!/usr/bin/env bash
# Orcastra load test: N independent 4-step no-op tasks through 1 orchestrator and 2 workers.
#
# CI runs it strictly (.ci/run: LOAD_TEST_STRICT=1, debug build, 50,000 tasks, under `timeout`); a
# person runs it to see throughput and memory over time on their machine:
#
#   scripts/load-test.sh                  # 50,000 tasks on a throwaway PostgreSQL
#   scripts/load-test.sh 10000            # fewer tasks
#   DATABASE_URL=postgresql://… scripts/load-test.sh   # on a database you provide (it is migrated)
#
# What it does: builds release binaries; starts a throwaway PostgreSQL (`orcastra dev-db` in a
# temporary ORCASTRA_DEV_DB_DIR, deleted at the end) unless DATABASE_URL is set; migrates; registers
# a 4-step template (namespace `load`, handler `orcastra.noop`, a → b → c → d); starts
# `orcastra-orchestrator` and two `orcastra-worker --namespace load --concurrency 32 --claim-batch 32`;
# inserts the N tasks at once; then every 2 s prints the tasks remaining, the steps completed per
# second and the resident memory (VmRSS) of each process, until every task is complete or
# LOAD_TEST_TIMEOUT seconds (default 240) pass. At the end: `orcastra check` when the CLI has it,
# and the live/dead tuples of orcastra.steps.
#
# The tasks are inserted by one SQL statement (generate_series) that writes exactly the rows
# TaskCreator's statement writes for a task that starts now — the task, its four steps (the root
# enqueued, the others pending with one pending parent), the three edges, and the 'created'
# transition rows — and then NOTIFYs the namespace. Submitting 50,000 tasks one `orcastra submit`
# at a time would measure process start-up, not the engine; this is a test fixture, not an API.
# If TaskCreator's statement changes, change this one with it.
set -euo pipefail

N=${1:-${LOAD_TEST_TASKS:-50000}}
TIMEOUT=${LOAD_TEST_TIMEOUT:-240}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# LOAD_TEST_BUILD=debug uses the debug binaries (as CI does, to avoid a second, release build);
# LOAD_TEST_STRICT=1 makes the script fail unless every task ends `complete` (one left running, in
# `error` or `cancelled` fails it, with the counts), when a process died during the run, when the
# invariant check fails, or when a process's memory grows by more than LOAD_TEST_MAX_GROWTH_MIB
# (default 64) over the run.
BUILD=${LOAD_TEST_BUILD:-release}
STRICT=${LOAD_TEST_STRICT:-0}
MAX_GROWTH=${LOAD_TEST_MAX_GROWTH_MIB:-64}
echo "== building $BUILD binaries"
for product in orcastra orcastra-orchestrator orcastra-worker; do
    swift build -c "$BUILD" --product "$product" >/dev/null
done
BIN="$ROOT/.build/$BUILD"
ORCASTRA="$BIN/orcastra"

WORK=$(mktemp -d /tmp/orcastra-load-XXXXXX)
chmod 755 "$WORK"   # the server runs as the postgres user when we are root
PIDS=()
OWN_DB=0
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$OWN_DB" = 1 ]; then
        ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db destroy --yes >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${DATABASE_URL:-}" ]; then
    URL=$DATABASE_URL
    echo "== using DATABASE_URL"
else
    echo "== starting a throwaway PostgreSQL in $WORK/db"
    OWN_DB=1
    URL=$(ORCASTRA_DEV_DB_DIR="$WORK/db" "$ORCASTRA" dev-db url)
fi
export ORCASTRA_DATABASE_URL=$URL
PSQL=(psql "$URL" -X -q -t -A -v ON_ERROR_STOP=1)

"$ORCASTRA" migrate >/dev/null
cat > "$WORK/noop4.yaml" <<'YAML'
namespace: load
name: noop4
version: 1.0.0
description: Four no-op steps in a row, for scripts/load-test.sh.
steps:
  - {name: a, handler: orcastra.noop}
  - {name: b, handler: orcastra.noop, depends_on: [a]}
  - {name: c, handler: orcastra.noop, depends_on: [b]}
  - {name: d, handler: orcastra.noop, depends_on: [c]}
YAML
"$ORCASTRA" template register "$WORK/noop4.yaml" >/dev/null
TEMPLATE_ID=$("${PSQL[@]}" -c "SELECT id FROM orcastra.templates WHERE namespace = 'load' AND name = 'noop4' AND version = '1.0.0'")
BEFORE_TASKS=$("${PSQL[@]}" -c "SELECT count(*) FROM orcastra.tasks")
BEFORE_DONE=$("${PSQL[@]}" -c "SELECT count(*) FROM orcastra.steps WHERE state = 'complete'")

export ORCASTRA_LOG_LEVEL=${ORCASTRA_LOG_LEVEL:-warning}
"$BIN/orcastra-orchestrator" >"$WORK/orchestrator.log" 2>&1 &
PIDS+=($!)
"$BIN/orcastra-worker" --namespace load --concurrency 32 --claim-batch 32 >"$WORK/worker-1.log" 2>&1 &
PIDS+=($!)
"$BIN/orcastra-worker" --namespace load --concurrency 32 --claim-batch 32 >"$WORK/worker-2.log" 2>&1 &
PIDS+=($!)
NAMES=(orchestrator worker-1 worker-2)
sleep 1

# A process that exited but is not reaped yet (a zombie) still has /proc/PID/status, with no VmRSS
# line, and `kill -0` still succeeds: both helpers look at the state instead.
alive() { local state; state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null); [ -n "$state" ] && [ "$state" != Z ]; }
rss() { local v=""; alive "$1" && v=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null); echo "${v:-gone}"; }

echo "== inserting $N tasks ($((N * 4)) steps) in one statement"
# Tag this run's tasks, so counts ignore whatever an earlier run left in a provided database.
RUN_ID="load-$(date +%s)-$$"
START_INSERT=$(date +%s.%N)
"${PSQL[@]}" <<SQL >/dev/null
WITH task AS (
    INSERT INTO orcastra.tasks (template_id, state, priority, context, run_at, started_at)
    SELECT $TEMPLATE_ID, 'in_progress', 0, jsonb_build_object('n', g, 'run', '$RUN_ID'), now(), now()
    FROM generate_series(1, $N) AS g
    RETURNING id, state
), task_audit AS (
    INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason)
    SELECT id, NULL, state, 'created' FROM task
), new_steps AS (
    INSERT INTO orcastra.steps (task_id, name, namespace, state, priority, max_attempts, pending_parents, enqueued_at)
    SELECT task.id, s.name, 'load', CASE WHEN s.parents = 0 THEN 'enqueued' ELSE 'pending' END, 0, 3, s.parents,
           CASE WHEN s.parents = 0 THEN now() END
    FROM task CROSS JOIN (VALUES ('a', 0, 1), ('b', 1, 2), ('c', 1, 3), ('d', 1, 4)) AS s(name, parents, position)
    ORDER BY task.id, s.position
    RETURNING id, task_id, name, state
), step_audit AS (
    INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason)
    SELECT id, task_id, NULL, state, 0, 'created' FROM new_steps
), edges AS (
    INSERT INTO orcastra.step_edges (parent_id, child_id)
    SELECT parent.id, child.id
    FROM (VALUES ('a', 'b'), ('b', 'c'), ('c', 'd')) AS e(parent, child)
    JOIN new_steps AS parent ON parent.name = e.parent
    JOIN new_steps AS child ON child.name = e.child AND child.task_id = parent.task_id
)
SELECT pg_notify('orcastra_ns_load', ''), (SELECT count(*) FROM task);
SQL
START=$(date +%s.%N)
printf "   inserted in %.1f s\n\n" "$(echo "$START - $START_INSERT" | bc)"

printf "%7s %10s %9s %10s %10s %10s\n" "time_s" "remaining" "steps/s" "orch_MiB" "worker1" "worker2"
LAST_DONE=$BEFORE_DONE
LAST_T=$START
PEAK=0
FIRST_RSS=()
LAST_RSS=()
DIED=()
while true; do
    sleep 2
    NOW=$(date +%s.%N)
    # REMAINING: this run's tasks still running; only `complete` counts as done, `error` and
    # `cancelled` are counted apart (and fail a strict run).
    read -r REMAINING COMPLETE FAILED_TASKS DONE < <("${PSQL[@]}" -F ' ' -c "SELECT count(*) FILTER (WHERE state IN ('pending', 'in_progress', 'waiting_for_retry')), count(*) FILTER (WHERE state = 'complete'), count(*) FILTER (WHERE state NOT IN ('pending', 'in_progress', 'waiting_for_retry', 'complete')), (SELECT count(*) FROM orcastra.steps WHERE state = 'complete') FROM orcastra.tasks WHERE template_id = $TEMPLATE_ID AND context->>'run' = '$RUN_ID'")
    RATE=$(echo "($DONE - $LAST_DONE) / ($NOW - $LAST_T)" | bc)
    [ "$RATE" -gt "$PEAK" ] && PEAK=$RATE
    printf "%7.1f %10d %9d %10s %10s %10s\n" "$(echo "$NOW - $START" | bc)" "$REMAINING" "$RATE" \
        "$(rss "${PIDS[0]}")" "$(rss "${PIDS[1]}")" "$(rss "${PIDS[2]}")"
    for i in 0 1 2; do
        LAST_RSS[$i]=$(rss "${PIDS[$i]}")
        [ -z "${FIRST_RSS[$i]:-}" ] && FIRST_RSS[$i]=${LAST_RSS[$i]}
        # A process that is gone has no memory to measure: remember it died (and never read "gone" as 0).
        if [ "${LAST_RSS[$i]}" = gone ] && [ -z "${DIED[$i]:-}" ]; then
            DIED[$i]=$(printf "%.1f" "$(echo "$NOW - $START" | bc)")
            echo "!! ${NAMES[$i]} is not running any more (noticed at ${DIED[$i]} s)"
        fi
    done
    LAST_DONE=$DONE
    LAST_T=$NOW
    [ "$REMAINING" -eq 0 ] && break
    if [ "$(echo "$NOW - $START > $TIMEOUT" | bc)" = 1 ]; then
        echo "!! gave up after ${TIMEOUT} s with $REMAINING tasks remaining"
        break
    fi
done
END=$(date +%s.%N)
ELAPSED=$(echo "$END - $START" | bc)
COMPLETED=$(( DONE - BEFORE_DONE ))
echo
printf "== %d steps completed in %.1f s: %.0f steps/s on average, %d steps/s at best (2 s window)\n" \
    "$COMPLETED" "$ELAPSED" "$(echo "$COMPLETED / $ELAPSED" | bc -l)" "$PEAK"
"${PSQL[@]}" -F ' ' -c "SELECT 'tasks by state:', string_agg(state || '=' || n, ' ') FROM (SELECT state, count(*) AS n FROM orcastra.tasks GROUP BY state ORDER BY state) s"
for i in 0 1 2; do
    if ! alive "${PIDS[$i]}"; then
        [ -n "${DIED[$i]:-}" ] || DIED[$i]=end
        echo "!! ${NAMES[$i]} exited early; its log:"; tail -20 "$WORK/${NAMES[$i]}.log"
    fi
done
echo "== this run's tasks: $COMPLETE complete, $FAILED_TASKS in error or cancelled, $REMAINING unfinished (of $N)"
ERRORS=$(cat "$WORK"/*.log | grep -ci "error" || true)
echo "== log lines mentioning 'error': $ERRORS"

if "$ORCASTRA" help check >/dev/null 2>&1; then
    echo "== orcastra check (processes stopped first, at most 120 s)"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    CHECK_START=$(date +%s.%N)
    STATUS=0
    timeout 120 "$ORCASTRA" check --database-url "$URL" || STATUS=$?
    printf "   check took %.1f s, exit %d\n" "$(echo "$(date +%s.%N) - $CHECK_START" | bc)" "$STATUS"
else
    echo "== orcastra check: not in this build, skipped"
fi
echo "== orcastra.steps tuples (before any vacuum the test forces: none)"
"${PSQL[@]}" -F ' ' -c "SELECT 'live', n_live_tup, 'dead', n_dead_tup, 'autovacuums', autovacuum_count, 'last autovacuum', coalesce(last_autovacuum::text, 'never') FROM pg_stat_user_tables WHERE schemaname = 'orcastra' AND relname = 'steps'"

if [ "$STRICT" = 1 ]; then
    FAILED=0
    [ "$REMAINING" -eq 0 ] || { echo "!! FAIL: $REMAINING tasks did not finish"; FAILED=1; }
    [ "$FAILED_TASKS" -eq 0 ] || { echo "!! FAIL: $FAILED_TASKS tasks ended in error or cancelled, not complete"; FAILED=1; }
    [ "$COMPLETE" -eq "$N" ] || { echo "!! FAIL: $COMPLETE of $N tasks complete"; FAILED=1; }
    [ "${STATUS:-1}" -eq 0 ] || { echo "!! FAIL: orcastra check exited ${STATUS:-(not run)}"; FAILED=1; }
    for i in 0 1 2; do
        echo "   ${NAMES[$i]}: ${FIRST_RSS[$i]} → ${LAST_RSS[$i]} MiB"
        if [ -n "${DIED[$i]:-}" ]; then
            echo "!! FAIL: ${NAMES[$i]} died during the run (noticed at ${DIED[$i]} s); its memory cannot be judged"; FAILED=1
            continue
        fi
        case "${FIRST_RSS[$i]}${LAST_RSS[$i]}" in
            *[!0-9.]*|'') echo "!! FAIL: no memory reading for ${NAMES[$i]}"; FAILED=1; continue ;;
        esac
        GROWTH=$(awk -v a="${FIRST_RSS[$i]}" -v b="${LAST_RSS[$i]}" 'BEGIN { printf "%.0f", b - a }')
        [ "$GROWTH" -le "$MAX_GROWTH" ] || { echo "!! FAIL: ${NAMES[$i]} grew by $GROWTH MiB"; FAILED=1; }
    done
    [ "$FAILED" -eq 0 ] && echo "== load test passed" || exit 1
fi
