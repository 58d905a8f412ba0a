-- Enforcement and audit of the two state machines. SQL is the source of truth: the legal moves are
-- the rows of orcastra.task_state_transitions_allowed and orcastra.step_state_transitions_allowed
-- (seeded in 0001; change them with a numbered migration), these trigger functions refuse every
-- other move, and the Swift tables in Sources/OrcastraStateMachines are checked against the
-- database by a test (StateMachineDatabaseTests), never the other way round.
--
-- Every state change, whatever statement makes it, is checked against the table of legal moves and
-- written as a transition row in the same transaction. Illegal moves fail with SQLSTATE OR001.
-- The triggers that call these functions are declared in 0001_core_schema.sql.

CREATE OR REPLACE FUNCTION orcastra.audit_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The move is written only when it is legal, in one statement with the check (a state change
    -- is on the latency path: docs/benchmarks.md, "Statements per step").
    -- task_created_at is the history's partition key (migration 0014, history_partitions.sql).
    INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason, task_created_at)
    SELECT NEW.id, OLD.state, NEW.state, NEW.state_reason, NEW.created_at
    FROM orcastra.task_state_transitions_allowed a
    WHERE a.from_state = OLD.state AND a.to_state = NEW.state;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'illegal task transition from % to % (task %)', OLD.state, NEW.state, OLD.id
            USING ERRCODE = 'OR001', HINT = 'See docs/state-machines.md for the legal transitions.';
    END IF;
    -- Wakes whoever waits for this task (`orcastra submit --wait`); one per task per transaction
    -- (at commit, or after it: post_notification in channels.sql).
    PERFORM orcastra.post_notification('orcastra_task_events', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orcastra.audit_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The transition row, written only when the move is legal: the check is part of the insert
    -- (one statement instead of two; this trigger runs 2.75 times per executed step of a linear
    -- task: docs/benchmarks.md, "Statements per step"). pending → complete and pending → error are a
    -- fan-out step's moves (it never runs itself: fanout.sql), pending → error also a workflow
    -- step's that could not start its child, and pending → in_progress and error → in_progress a
    -- workflow step's starting its child (subworkflows.sql); for any other step they would skip
    -- the queue. error → pending is a fan-out's that failed with its instances, reopened when one
    -- is retried or resolved (fanout.sql).
    -- The row holds the worker that held the step, and for an attempt that failed its error (the
    -- command's exit status and the end of its stderr): `orcastra step show` lists every attempt
    -- from these rows. task_created_at, the history's partition key (migration 0014), is one probe
    -- of the tasks' primary key, whose page the same transaction has usually just read.
    -- (The live-table moves below stay separate statements: folded into this one as data-modifying
    -- CTEs, the trigger took 25 % longer — every table of the eight was opened on every call.)
    INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, metadata, task_created_at)
    SELECT NEW.id, NEW.task_id, OLD.state, NEW.state, NEW.attempts, NEW.state_reason,
           CASE WHEN OLD.state = 'in_progress' AND NEW.state IN ('waiting_for_retry', 'error') AND NEW.last_error IS NOT NULL
                THEN jsonb_strip_nulls(jsonb_build_object('worker', NEW.lease_owner, 'error', NEW.last_error))
                WHEN NEW.lease_owner IS NOT NULL THEN jsonb_build_object('worker', NEW.lease_owner)
                -- A workflow step's child task, on the move that started it.
                WHEN NEW.state = 'in_progress' AND NEW.child_task_id IS NOT NULL THEN jsonb_build_object('child_task', NEW.child_task_id) END,
           (SELECT t.created_at FROM orcastra.tasks t WHERE t.id = NEW.task_id)
    FROM orcastra.step_state_transitions_allowed a
    WHERE a.from_state = OLD.state AND a.to_state = NEW.state
      AND NOT (OLD.state = 'pending' AND NEW.state = 'complete' AND NEW.for_each IS NULL)
      AND NOT (OLD.state = 'pending' AND NEW.state = 'error' AND NEW.for_each IS NULL AND NEW.workflow IS NULL)
      AND NOT (OLD.state IN ('pending', 'error') AND NEW.state = 'in_progress' AND NEW.workflow IS NULL)
      AND NOT (OLD.state = 'error' AND NEW.state = 'pending' AND NEW.instances IS NULL);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'illegal step transition from % to % (step % of task %)', OLD.state, NEW.state, OLD.id, OLD.task_id
            USING ERRCODE = 'OR001', HINT = 'See docs/state-machines.md for the legal transitions.';
    END IF;
    -- The live-step tables (0012_live_step_tables.sql): the step leaves the one of its old state and
    -- enters the one of its new state. Rows leave by the full key of their table's index.
    IF OLD.state = 'enqueued' THEN
        DELETE FROM orcastra.step_queue q
        WHERE q.namespace = OLD.namespace AND q.priority = OLD.priority AND q.enqueued_at = OLD.enqueued_at AND q.step_id = OLD.id;
    ELSIF OLD.state = 'in_progress' THEN
        DELETE FROM orcastra.step_leases l WHERE l.step_id = OLD.id;
    ELSIF OLD.state = 'waiting_for_retry' THEN
        DELETE FROM orcastra.step_retries r WHERE r.visible_at = OLD.visible_at AND r.step_id = OLD.id;
    ELSIF OLD.state = 'pending' AND OLD.fanout_of IS NOT NULL THEN
        DELETE FROM orcastra.step_fanout_held h WHERE h.fanout_of = OLD.fanout_of AND h.item_index = OLD.item_index;
    END IF;
    IF NEW.state = 'enqueued' THEN
        NEW.enqueued_at := coalesce(NEW.enqueued_at, now());
        INSERT INTO orcastra.step_queue (step_id, namespace, priority, enqueued_at, limit_scope, fanout_of)
        VALUES (NEW.id, NEW.namespace, NEW.priority, NEW.enqueued_at, NEW.limit_scope, NEW.fanout_of);
    ELSIF NEW.state = 'in_progress' THEN
        INSERT INTO orcastra.step_leases (step_id, namespace, limit_scope, fanout_of)
        VALUES (NEW.id, NEW.namespace, NEW.limit_scope, NEW.fanout_of);
    ELSIF NEW.state = 'waiting_for_retry' THEN
        INSERT INTO orcastra.step_retries (step_id, namespace, visible_at, fanout_of)
        VALUES (NEW.id, NEW.namespace, NEW.visible_at, NEW.fanout_of);
    ELSIF NEW.state = 'pending' AND NEW.fanout_of IS NOT NULL THEN
        INSERT INTO orcastra.step_fanout_held (fanout_of, item_index, step_id) VALUES (NEW.fanout_of, NEW.item_index, NEW.id);
    END IF;
    RETURN NEW;
END
$$;

-- A new version of the state-change trigger above may find the live-step tables out of date (an
-- older version ran meanwhile, for example after a downgrade and upgrade): rebuild them now, in the
-- transaction that applies the changed repeatable files, once live_steps.sql has defined how (it
-- does the same when it is applied).
DO $$
BEGIN
    IF to_regprocedure('orcastra.sync_live_steps()') IS NOT NULL THEN PERFORM orcastra.sync_live_steps(); END IF;
END
$$;
