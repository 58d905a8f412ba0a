-- Partitioned history (issue 20; docs/retention.md, "Partitioned history"). The append-only logs,
-- task_transitions and step_transitions (a step's attempts are its transitions), are rebuilt as
-- tables range-partitioned by their task's creation week, so the history of pruned tasks is
-- dropped a week's partition at a time instead of deleted row by row and vacuumed.
--
-- * The key is task_created_at, the owning task's created_at copied into every row: a task's
--   whole history lives in one partition, and a week's partition may go once no task created in
--   that week is left (one probe of the tasks_created_at index). A transition's own time would
--   not do: a task kept `forever`, retried after 29 days or running for weeks would lose rows.
-- * No foreign keys to tasks and steps any more: a partition is dropped after its owners, and the
--   cascade checked every deleted step and task against every history partition. Pruning deletes
--   tasks, steps, edges, items and results; their history stays until its week is dropped, owned
--   by nobody (invisible to every reader, which looks history up by its owner). The invariant
--   checker's history-partition-key rule checks that every row of a live owner has its task's key.
-- * task_created_at defaults to now(): right for every row written in the transaction that created
--   the task (tasks.created_at is that transaction's now()), which is what create_task writes and
--   what a binary older than this migration writes until `orcastra migrate` has re-applied the
--   functions after it. Every later row names it (the audit triggers, fan-out).
-- * A DEFAULT partition catches a row whose week has no partition yet (orchestrators create them
--   weeks ahead: functions/history_partitions.sql), so a late chore never fails a state change.
--
-- The copy holds an exclusive lock on both tables: state changes wait for it (13 s for 1.4 million
-- transitions on the loaded 2-core test machine; docs/retention.md). The old tables are dropped in the same
-- transaction; ids go on from where they were.

LOCK TABLE orcastra.tasks IN SHARE MODE;
LOCK TABLE orcastra.task_transitions, orcastra.step_transitions IN ACCESS EXCLUSIVE MODE;

ALTER TABLE orcastra.task_transitions RENAME TO task_transitions_unpartitioned;
ALTER TABLE orcastra.step_transitions RENAME TO step_transitions_unpartitioned;

CREATE TABLE orcastra.task_transitions (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    task_id         uuid NOT NULL,
    from_state      text,
    to_state        text NOT NULL,
    reason          text NOT NULL,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The partition key: the task's created_at.
    task_created_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (task_created_at);

CREATE TABLE orcastra.step_transitions (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    step_id         bigint NOT NULL,
    task_id         uuid NOT NULL,
    from_state      text,
    to_state        text NOT NULL,
    attempt         integer NOT NULL,
    reason          text NOT NULL,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The partition key: the step's task's created_at.
    task_created_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (task_created_at);

CREATE TABLE orcastra.task_transitions_default PARTITION OF orcastra.task_transitions DEFAULT;
CREATE TABLE orcastra.step_transitions_default PARTITION OF orcastra.step_transitions DEFAULT;

-- One partition per week (Monday 00:00 UTC) that holds a task, and for this week and the next four.
DO $$
DECLARE
    v_first timestamptz := date_trunc('week', coalesce((SELECT min(created_at) FROM orcastra.tasks), now()), 'UTC');
    v_this timestamptz := date_trunc('week', now(), 'UTC');
    v_week timestamptz;
    v_table text;
BEGIN
    v_week := least(v_first, v_this);
    WHILE v_week <= v_this + interval '4 weeks' LOOP
        IF v_week >= v_this OR EXISTS (SELECT 1 FROM orcastra.tasks t
                                       WHERE t.created_at >= v_week AND t.created_at < v_week + interval '1 week') THEN
            FOREACH v_table IN ARRAY ARRAY['task_transitions', 'step_transitions'] LOOP
                EXECUTE format('CREATE TABLE orcastra.%I PARTITION OF orcastra.%I FOR VALUES FROM (%L) TO (%L)',
                               v_table || '_p' || to_char(v_week AT TIME ZONE 'UTC', 'YYYYMMDD'), v_table,
                               v_week, v_week + interval '1 week');
            END LOOP;
        END IF;
        v_week := v_week + interval '1 week';
    END LOOP;
END
$$;

INSERT INTO orcastra.task_transitions (id, task_id, from_state, to_state, reason, metadata, created_at, task_created_at)
OVERRIDING SYSTEM VALUE
SELECT o.id, o.task_id, o.from_state, o.to_state, o.reason, o.metadata, o.created_at, coalesce(t.created_at, o.created_at)
FROM orcastra.task_transitions_unpartitioned o LEFT JOIN orcastra.tasks t ON t.id = o.task_id;

INSERT INTO orcastra.step_transitions (id, step_id, task_id, from_state, to_state, attempt, reason, metadata, created_at, task_created_at)
OVERRIDING SYSTEM VALUE
SELECT o.id, o.step_id, o.task_id, o.from_state, o.to_state, o.attempt, o.reason, o.metadata, o.created_at, coalesce(t.created_at, o.created_at)
FROM orcastra.step_transitions_unpartitioned o LEFT JOIN orcastra.tasks t ON t.id = o.task_id;

-- Ids go on from the highest copied (the old sequences go with their tables).
SELECT setval(pg_get_serial_sequence('orcastra.task_transitions', 'id'),
              (SELECT coalesce(max(id), 0) FROM orcastra.task_transitions) + 1, false);
SELECT setval(pg_get_serial_sequence('orcastra.step_transitions', 'id'),
              (SELECT coalesce(max(id), 0) FROM orcastra.step_transitions) + 1, false);

DROP TABLE orcastra.task_transitions_unpartitioned;
DROP TABLE orcastra.step_transitions_unpartitioned;

-- Indexes after the copy (faster), under the old names.
ALTER TABLE orcastra.task_transitions ADD CONSTRAINT task_transitions_pkey PRIMARY KEY (id, task_created_at);
ALTER TABLE orcastra.step_transitions ADD CONSTRAINT step_transitions_pkey PRIMARY KEY (id, task_created_at);
CREATE INDEX task_transitions_task ON orcastra.task_transitions (task_id, id);
CREATE INDEX step_transitions_step ON orcastra.step_transitions (step_id, id);
CREATE INDEX step_transitions_task ON orcastra.step_transitions (task_id);

ANALYZE orcastra.task_transitions;
ANALYZE orcastra.step_transitions;
