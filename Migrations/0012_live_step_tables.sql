-- HOT updates on orcastra.steps (issue 12; docs/architecture.md "The queue", docs/benchmarks.md
-- "HOT updates: the work per step").
--
-- PostgreSQL can update a row in place on its page (a HOT update: no new index entry, no index
-- to clean later) only when no indexed column changes — and a column named in a partial index's
-- WHERE counts as indexed. Every index that served the hot path named `state` (steps_claimable,
-- steps_leases, steps_retry_due, steps_limit_running, steps_fanout_held, steps_fanout_active), so
-- every transition of every step wrote a new entry into each index of the table: 0 % HOT, ~9.5
-- index entries per executed step on steps alone.
--
-- The live work now sits in four narrow tables beside steps, one per thing a query looks for, each
-- written by INSERT when a step enters the state and by DELETE when it leaves it (the state-change
-- trigger does both, functions/audit.sql, so no caller can forget): steps keeps only indexes on
-- columns that never change (id; task_id, name; fanout_of, item_index), and its updates can be HOT.
-- steps.state stays the truth; the invariant checker holds these tables to it (live-step-tables).
--
-- The tables are filled, and the state-change triggers that keep them are installed, by the
-- repeatable functions/live_steps.sql in the same `orcastra migrate` (under a lock on steps, so that
-- a step that changes state while the upgrade runs is not missed).

-- Enqueued steps, in claiming order. No primary key: a step leaves the queue by the full key of this
-- one index (the trigger knows it from the step's row), so an enqueue writes one index entry.
CREATE TABLE orcastra.step_queue (
    step_id     bigint NOT NULL,
    namespace   text NOT NULL,
    priority    integer NOT NULL,
    enqueued_at timestamptz NOT NULL,
    -- Copies of the step's, so that claiming can pass over a full concurrency scope and count a
    -- fan-out's live instances without reading steps.
    limit_scope text,
    fanout_of   bigint
);
CREATE INDEX step_queue_claim ON orcastra.step_queue (namespace, priority DESC, enqueued_at, step_id);
CREATE INDEX step_queue_fanout ON orcastra.step_queue (fanout_of) WHERE fanout_of IS NOT NULL;

-- Running steps (in_progress). The lease's expiry stays on steps (a heartbeat is then one HOT update
-- of steps and nothing here): lease recovery reads the running steps through this table, O(running).
CREATE TABLE orcastra.step_leases (
    step_id     bigint PRIMARY KEY,
    namespace   text NOT NULL,
    limit_scope text,
    fanout_of   bigint
);
-- Attempts running per concurrency scope (claim.sql counts them) and per fan-out group (fanout.sql).
CREATE INDEX step_leases_scope ON orcastra.step_leases (limit_scope) WHERE limit_scope IS NOT NULL;
CREATE INDEX step_leases_fanout ON orcastra.step_leases (fanout_of) WHERE fanout_of IS NOT NULL;

-- Steps waiting for a retry, by when it falls due (leaving by the full key of the one index).
CREATE TABLE orcastra.step_retries (
    step_id    bigint NOT NULL,
    namespace  text NOT NULL,
    visible_at timestamptz NOT NULL,
    fanout_of  bigint
);
CREATE INDEX step_retries_due ON orcastra.step_retries (visible_at, step_id);
CREATE INDEX step_retries_fanout ON orcastra.step_retries (fanout_of) WHERE fanout_of IS NOT NULL;

-- Instances of a fan-out held back by max_parallel (pending), in index order.
CREATE TABLE orcastra.step_fanout_held (
    fanout_of  bigint NOT NULL,
    item_index integer NOT NULL,
    step_id    bigint NOT NULL,
    PRIMARY KEY (fanout_of, item_index)
);

-- Small tables where every row is inserted once and deleted once: vacuum them early and without
-- throttling, so that a claim does not walk over many dead index entries at the queue's head.
ALTER TABLE orcastra.step_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                     autovacuum_vacuum_cost_delay = 0);
ALTER TABLE orcastra.step_leases SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                      autovacuum_vacuum_cost_delay = 0);
ALTER TABLE orcastra.step_retries SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                       autovacuum_vacuum_cost_delay = 0);
ALTER TABLE orcastra.step_fanout_held SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                           autovacuum_vacuum_cost_delay = 0);

-- The indexes whose key or predicate changes on a transition go: the tables above serve their
-- queries. (steps_fanout_all has no state in it and stays: it lists a group's instances.)
DROP INDEX orcastra.steps_claimable;
DROP INDEX orcastra.steps_leases;
DROP INDEX orcastra.steps_retry_due;
DROP INDEX orcastra.steps_limit_running;
DROP INDEX orcastra.steps_fanout_held;
DROP INDEX orcastra.steps_fanout_active;
