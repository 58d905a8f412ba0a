#!/bin/bash
# What one executed step costs PostgreSQL, counted rather than timed, so that the figures do not
# depend on how loaded the machine is (docs/benchmarks.md, "HOT updates: the work per step").
#
# Usage: scripts/hotpath-counters.sh DATABASE_URL [TASKS]
#
# Registers a 4-step linear template (namespace `hotpath`), runs TASKS (default 300) tasks through
# SQL alone with pgbench, one client, as the stock worker drives them (create_task and a first
# claim_steps, then per step one transaction of report_steps + claim_steps: the last claim finds
# nothing), after 30 tasks of warm-up, and prints per executed step:
#   - heap tuples inserted / updated / HOT-updated / deleted, per table of schema orcastra, and the
#     HOT ratio of orcastra.steps (pg_stat_user_tables);
#   - WAL records by kind (pg_waldump --stats over the run's LSN range: Btree INSERT_LEAF is one
#     index tuple written, Heap HOT_UPDATE one HOT update) and WAL bytes, with and without
#     full-page images;
#   - PL/pgSQL and SQL function calls (pg_stat_user_functions; track_functions = all is set for the
#     run's connection) and, when pg_stat_statements is loaded, statements executed at every level;
#   - the CPU time the server's backend spent per step (/proc, same machine only), over TASKS more;
#   - the buffers of each hot call, from EXPLAIN (ANALYZE, BUFFERS) of one more task.
# Needs: a superuser URL (track_functions, pg_stat_statements.track, pg_current_wal_lsn), the server's
# pg_wal readable from here (same machine) for the WAL breakdown, pgbench and pg_waldump (found on
# PATH or under /usr/lib/postgresql/*/bin), and the orcastra binary (ORCASTRA_BIN, default
# .build/debug) to register the template. The database must be migrated. Nothing else is changed,
# but the tasks it runs stay (they are finished; prune them as any others).
set -euo pipefail
D="${1:?usage: scripts/hotpath-counters.sh DATABASE_URL [TASKS]}"
TASKS="${2:-300}"
BIN="${ORCASTRA_BIN:-.build/debug}"
STEPS=$((TASKS * 4))
WORK=$(mktemp -d /tmp/hotpath-counters.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$D" "$@"; }
# The server's own major version's tools (Debian's /usr/bin has wrappers for some only).
PGBIN="/usr/lib/postgresql/$(q -c "SELECT current_setting('server_version_num')::int / 10000")/bin"
[ -x "$PGBIN/pg_waldump" ] || PGBIN=$(dirname "$(command -v pg_waldump || command -v pgbench)")

cat > "$WORK/hotpath-linear4.yaml" <<'YAML'
namespace: hotpath
name: linear4
version: 1.0.0
description: Four no-op steps in a row, for scripts/hotpath-counters.sh.
steps:
  - {name: a, handler: hotpath.noop}
  - {name: b, depends_on: [a], handler: hotpath.noop}
  - {name: c, depends_on: [b], handler: hotpath.noop}
  - {name: d, depends_on: [c], handler: hotpath.noop}
YAML
"$BIN/orcastra" template register "$WORK/hotpath-linear4.yaml" --database-url "$D" > /dev/null
TEMPLATE=$(q -c "SELECT id FROM orcastra.templates WHERE namespace = 'hotpath' AND name = 'linear4' AND version = '1.0.0'")
if [ -n "$(q -c "SELECT 1 FROM orcastra.steps WHERE namespace = 'hotpath' AND state IN ('enqueued', 'in_progress') LIMIT 1")" ]; then
    echo "hotpath-counters: namespace hotpath has unfinished steps from an interrupted run; cancel those tasks first" >&2; exit 1
fi

{
    # As the stock worker does: one transaction per step that reports the previous step's result
    # (report_steps) and claims the next (claim_steps); the first claim follows the submission.
    echo "SELECT task_id FROM orcastra.create_task($TEMPLATE, '{}') \\gset"
    echo "SELECT step_id, lease_token FROM orcastra.claim_steps('hotpath', 'w', 1, 60000) \\gset"
    for _ in 1 2 3 4; do
        echo "BEGIN;"
        echo "SELECT count(*) FROM orcastra.report_steps(ARRAY[:step_id]::bigint[], ARRAY[(:lease_token)::uuid], ARRAY['{}'::jsonb], ARRAY[NULL::text], ARRAY[NULL::bigint]);"
        echo "SELECT coalesce(max(step_id), 0) AS step_id, coalesce(max(lease_token::text), '00000000-0000-0000-0000-000000000000') AS lease_token FROM orcastra.claim_steps('hotpath', 'w', 1, 60000) \\gset"
        echo "COMMIT;"
    done
} > "$WORK/task.pgb"

STATEMENTS=$(q -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'" 2>/dev/null || echo 0)
if [ "$STATEMENTS" = 0 ] && q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 2>/dev/null \
   && q -c "SELECT 1 FROM pg_stat_statements LIMIT 1" > /dev/null 2>&1; then STATEMENTS=1; fi
if [ "$STATEMENTS" = 1 ] && ! q -c "SELECT 1 FROM pg_stat_statements LIMIT 1" > /dev/null 2>&1; then STATEMENTS=0; fi

export PGOPTIONS="-c track_functions=all $([ "$STATEMENTS" = 1 ] && echo '-c pg_stat_statements.track=all')"
"$PGBIN/pgbench" -n -c 1 -t 30 -M prepared -f "$WORK/task.pgb" "$D" > /dev/null 2>&1

snapshot() {  # $1: file prefix
    q -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = 'orcastra' ORDER BY relname" > "$WORK/$1.tables"
    q -c "SELECT schemaname || '.' || funcname, calls FROM pg_stat_user_functions ORDER BY 1" > "$WORK/$1.functions"
    if [ "$STATEMENTS" = 1 ]; then q -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())" > "$WORK/$1.statements"; fi
}
q -c "SELECT pg_stat_clear_snapshot()" > /dev/null
snapshot before
LSN0=$(q -c "SELECT pg_current_wal_lsn()")
"$PGBIN/pgbench" -n -c 1 -t "$TASKS" -M prepared -f "$WORK/task.pgb" "$D" > "$WORK/pgbench.out" 2>&1
LSN1=$(q -c "SELECT pg_current_wal_lsn()")
sleep 1  # the backend's statistics are flushed when it exits
snapshot after

echo "== $STEPS steps ($TASKS 4-step tasks through SQL), $(q -c "SELECT version()" | cut -d' ' -f1-2), database $(q -c "SELECT current_database()")"
echo
echo "-- heap tuples per step (pg_stat_user_tables)"
printf '%-26s %8s %8s %8s %8s %6s\n' table inserted updated hot deleted hot%
join -t'|' "$WORK/before.tables" "$WORK/after.tables" | awk -F'|' -v n="$STEPS" '
    { i = $6 - $2; u = $7 - $3; h = $8 - $4; d = $9 - $5
      if (i + u + d == 0) next
      printf "%-26s %8.2f %8.2f %8.2f %8.2f %6s\n", $1, i / n, u / n, h / n, d / n, (u > 0 ? sprintf("%.0f", 100 * h / u) : "-")
      ti += i; tu += u; th += h; td += d }
    END { printf "%-26s %8.2f %8.2f %8.2f %8.2f %6s\n", "all", ti / n, tu / n, th / n, td / n, (tu > 0 ? sprintf("%.0f", 100 * th / tu) : "-") }'
echo "dead tuples in orcastra.steps now (autovacuum and HOT pruning permitting): $(q -c "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'orcastra.steps'::regclass")"
echo
echo "-- WAL per step ($LSN0 .. $LSN1)"
q -c "SELECT 'WAL bytes per step (all): ' || round(pg_wal_lsn_diff('$LSN1', '$LSN0') / $STEPS)"
WALDIR="$(q -c "SHOW data_directory")/pg_wal"
if [ -r "$WALDIR" ]; then
    "$PGBIN/pg_waldump" -p "$WALDIR" -s "$LSN0" -e "$LSN1" --stats=record 2>/dev/null > "$WORK/waldump" || true
    awk -v n="$STEPS" '
        { gsub(/\( *[0-9.]+\)|\[[0-9.]+%\]/, "") }
        $1 ~ /^(Heap|Heap2|Btree|Transaction)\// && $2 + 0 > 0 {
            printf "  %-24s %7.2f records %7.0f bytes\n", $1, $2 / n, $5 / n }
        $1 == "Total" { printf "  %-24s %7.2f records %7.0f bytes (full-page images %.0f)\n", "all (cluster-wide)", $2 / n, $5 / n, $4 / n }' "$WORK/waldump"
    awk -v n="$STEPS" '$1 == "Btree/INSERT_LEAF" { printf "index tuples written per step (Btree/INSERT_LEAF): %.2f\n", $2 / n }' "$WORK/waldump"
    echo "index tuples written per step, by index (Btree/INSERT_LEAF records of this database):"
    DBOID=$(q -c "SELECT oid FROM pg_database WHERE datname = current_database()")
    "$PGBIN/pg_waldump" -p "$WALDIR" -s "$LSN0" -e "$LSN1" -r Btree 2>/dev/null | grep 'desc: INSERT_LEAF' \
        | grep -o "rel [0-9]*/$DBOID/[0-9]*" | cut -d/ -f3 | sort | uniq -c > "$WORK/leaf" || true
    q -c "SELECT relfilenode, relname FROM pg_class WHERE relkind = 'i' AND relnamespace = 'orcastra'::regnamespace" | tr '|' ' ' > "$WORK/indexes"
    awk -v n="$STEPS" 'NR == FNR { name[$1] = $2; next } { printf "  %-34s %6.2f\n", ($2 in name ? name[$2] : "relfilenode " $2), $1 / n }' "$WORK/indexes" "$WORK/leaf" | sort -k2 -nr
else
    echo "  (pg_wal at $WALDIR is not readable from here: no per-kind breakdown)"
fi
echo
echo "-- function calls per step (pg_stat_user_functions, track_functions = all)"
join -t'|' -a2 -e0 -o '0,1.2,2.2' "$WORK/before.functions" "$WORK/after.functions" | awk -F'|' -v n="$STEPS" '
    { c = $3 - $2; if (c > 0) { printf "  %-44s %6.2f\n", $1, c / n; t += c } }
    END { printf "  %-44s %6.2f\n", "all", t / n }'
if [ "$STATEMENTS" = 1 ]; then
    echo "statements per step, every level (pg_stat_statements.track = all; BEGIN/COMMIT and this script's few queries included): $(awk -v n="$STEPS" 'NR == FNR { a = $1; next } { printf "%.2f", ($1 - a) / n }' "$WORK/before.statements" "$WORK/after.statements")"
fi
echo
echo "-- pgbench: $(grep -E 'latency average|tps' "$WORK/pgbench.out" | head -2 | tr '\n' ' ')"
echo
# CPU time of the server backend that ran the tasks (from /proc, utime + stime), measured over the
# same workload once more: what a step costs the server's CPU, whatever else the machine is doing
# (contention still inflates it somewhat: caches are shared). After every task the backend's
# counters are written down; the difference between the first task's and the last's is taken.
cat > "$WORK/cpu.sh" <<'CPU'
#!/bin/sh
[ -r "/proc/$1/stat" ] || exit 0
ticks=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
dir=$(dirname "$0")
[ -f "$dir/cpu.first" ] || echo "$ticks" > "$dir/cpu.first"
echo "$ticks" > "$dir/cpu.last"
CPU
chmod +x "$WORK/cpu.sh"
{ echo "SELECT pg_backend_pid() AS pid \\gset"; cat "$WORK/task.pgb"; echo "\\shell $WORK/cpu.sh :pid"; } > "$WORK/task-cpu.pgb"
"$PGBIN/pgbench" -n -c 1 -t "$TASKS" -M prepared -f "$WORK/task-cpu.pgb" "$D" > /dev/null 2>&1 || true
if [ -f "$WORK/cpu.first" ] && [ -f "$WORK/cpu.last" ]; then
    awk -v hz="$(getconf CLK_TCK)" -v n="$(( (TASKS - 1) * 4 ))" 'NR == 1 { a = $1 } NR == 2 { printf "-- server backend CPU per step: %.3f ms (/proc utime+stime over %d steps)\n", ($1 - a) * 1000 / hz / n, n }' \
        "$WORK/cpu.first" "$WORK/cpu.last"
else
    echo "-- server backend CPU per step: not measured (the server's /proc is not readable from here)"
fi
echo
echo "-- buffers of the hot calls, one more task (EXPLAIN (ANALYZE, BUFFERS), summed over the call's node; autocommit)"
psql -X -qAt -v ON_ERROR_STOP=1 "$D" > "$WORK/explain" <<SQL
SELECT task_id FROM orcastra.create_task($TEMPLATE, '{}') \gset
$(for s in 1 2 3 4; do cat <<STEP
\\echo claim_steps $s
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, COSTS OFF, SUMMARY OFF) SELECT * FROM orcastra.claim_steps('hotpath', 'w', 1, 60000);
SELECT s.id AS step_id, s.lease_token FROM orcastra.steps s WHERE s.task_id = :'task_id' AND s.state = 'in_progress' \gset
\\echo report_steps $s
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, COSTS OFF, SUMMARY OFF) SELECT * FROM orcastra.report_steps(ARRAY[:step_id]::bigint[], ARRAY[(:'lease_token')::uuid], ARRAY['{}'::jsonb], ARRAY[NULL::text], ARRAY[NULL::bigint]);
STEP
done)
SQL
awk '/^(claim|report)_steps/ { name = $0 } /Function Scan/ { getline; if ($0 ~ /Buffers/) { sub(/^ *Buffers: /, ""); printf "  %-18s %s\n", name, $0 } }' "$WORK/explain"
