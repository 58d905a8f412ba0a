-- Concurrency keys and task deadlines (docs/templates.md, "Task concurrency" and "Task timeout").
--
-- Concurrency. A task of a template with `concurrency: {key, limit}` holds a slot of its key while
-- it is in_progress or waiting_for_retry. At creation (create_task) it takes a slot if one is free
-- and nobody waits, else it waits as pending (waiting_for_slot); when a task holding a slot
-- finishes (settle_tasks, cancel_task, resolve_task, the deadline chore) the oldest waiting tasks
-- of its key start in that same transaction. Every decision about one key is made under a
-- transaction-scoped advisory lock on that key, so two creations, or a creation and a finish,
-- cannot both see the same free slot (or both miss a waiting task).
--
-- Lock order. Admission runs where the finishing task's row is already locked, and then locks the
-- steps of the tasks it starts (ascending id), then those tasks: the one place steps are locked
-- after a task. It cannot deadlock: a waiting task's steps are all pending, and the only other
-- writer of them, cancel_task of that waiting task, needs only that task's row next, which
-- admission locks after the steps (so cancel_task goes first, and admission sees it cancelled).
-- Keys are locked in (scope, key) order within one call.

-- Serializes every decision about one key (see above). hashtextextended: 64 bits, so two keys
-- share a lock only by a negligible chance (and then merely wait for each other).
CREATE OR REPLACE FUNCTION orcastra.lock_concurrency_key(p_scope text, p_key text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(p_scope || E'\x1f' || p_key, 19));
$$;

-- The key's value for a context: the jsonpath `p_path` evaluated over {"context": p_context} by
-- PostgreSQL, as text (a string without its quotes, any other value as JSON). Raises OR010 when
-- the path selects nothing or null: such a task could not be counted under any key.
CREATE OR REPLACE FUNCTION orcastra.concurrency_key_of(p_path text, p_context jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_value jsonb := jsonb_path_query_first(jsonb_build_object('context', p_context), p_path::jsonpath);
BEGIN
    IF v_value IS NULL OR v_value = 'null'::jsonb THEN
        RAISE EXCEPTION 'the concurrency key % selects nothing in this task''s context', p_path
            USING ERRCODE = 'OR010',
                  HINT = 'Give the context the field the key names, or make it required in the template''s input_schema.';
    END IF;
    RETURN v_value #>> '{}';
END
$$;

-- Starts pending tasks now: their plain root steps are enqueued, root steps with a `when:` or a
-- `for_each:` are decided (enqueued, skipped — a skip travels down — or fanned out: decide_steps
-- in settle.sql), and the tasks go in_progress; a task its decisions left nothing to run is
-- settled (complete) at once. Locks the tasks' steps (ascending id), then the tasks that are still
-- pending (ascending id); returns the tasks started (a task cancelled meanwhile is not).
CREATE OR REPLACE FUNCTION orcastra.start_pending_tasks(p_tasks uuid[], p_reason text) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    v_tasks uuid[];
    v_namespaces text[];
    v_conditional_roots bigint[];
    v_decided record;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks) ORDER BY s.id FOR UPDATE;
    SELECT coalesce(array_agg(t.id), '{}') INTO v_tasks FROM (
        SELECT t.id FROM orcastra.tasks t WHERE t.id = ANY (p_tasks) AND t.state = 'pending' ORDER BY t.id FOR UPDATE
    ) t;
    IF cardinality(v_tasks) = 0 THEN RETURN v_tasks; END IF;
    WITH roots AS (
        UPDATE orcastra.steps s SET state = 'enqueued', state_reason = 'task started', enqueued_at = now()
        WHERE s.task_id = ANY (v_tasks) AND s.state = 'pending' AND s.pending_parents = 0 AND s.when_condition IS NULL
          AND s.for_each IS NULL AND s.workflow IS NULL
        RETURNING s.namespace
    )
    SELECT array_agg(namespace) INTO v_namespaces FROM roots;
    -- Root steps with a `when:` (or a fan-out): enqueued, skipped or fanned out now.
    SELECT array_agg(s.id ORDER BY s.id) INTO v_conditional_roots FROM orcastra.steps s
    WHERE s.task_id = ANY (v_tasks) AND s.state = 'pending' AND s.pending_parents = 0
      AND (s.when_condition IS NOT NULL OR s.for_each IS NOT NULL OR s.workflow IS NOT NULL);
    IF v_conditional_roots IS NOT NULL THEN
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_conditional_roots);
        v_namespaces := v_namespaces || v_decided.namespaces;
    END IF;
    UPDATE orcastra.tasks t SET state = 'in_progress', state_reason = p_reason, started_at = now(), waiting_for_slot = false
    WHERE t.id = ANY (v_tasks);
    IF v_conditional_roots IS NOT NULL THEN
        PERFORM orcastra.settle_tasks(ARRAY(SELECT DISTINCT s.task_id FROM orcastra.steps s WHERE s.id = ANY (v_conditional_roots)));
    END IF;
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN v_tasks;
END
$$;

-- Fills the free slots of the keys of `p_tasks` (tasks that just finished, or just started to wait)
-- with the tasks waiting longest for them. Returns how many tasks it started.
CREATE OR REPLACE FUNCTION orcastra.admit_waiting_tasks(p_tasks uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_key record;
    v_running integer;
    v_limit integer;
    v_next uuid[];
    v_started integer := 0;
BEGIN
    FOR v_key IN
        SELECT DISTINCT t.concurrency_scope AS scope, t.concurrency_key AS key FROM orcastra.tasks t
        WHERE t.id = ANY (p_tasks) AND t.concurrency_key IS NOT NULL ORDER BY 1, 2
    LOOP
        PERFORM orcastra.lock_concurrency_key(v_key.scope, v_key.key);
        LOOP
            SELECT count(*) INTO v_running FROM orcastra.tasks t
            WHERE t.concurrency_scope = v_key.scope AND t.concurrency_key = v_key.key AND t.state IN ('in_progress', 'waiting_for_retry');
            -- The limit of the task first in line (versions of a template may differ in it).
            SELECT t.concurrency_limit INTO v_limit FROM orcastra.tasks t
            WHERE t.concurrency_scope = v_key.scope AND t.concurrency_key = v_key.key AND t.state = 'pending' AND t.waiting_for_slot
            ORDER BY t.waiting_since, t.id LIMIT 1;
            EXIT WHEN v_limit IS NULL OR v_running >= v_limit;
            SELECT array_agg(w.id) INTO v_next FROM (
                SELECT t.id FROM orcastra.tasks t
                WHERE t.concurrency_scope = v_key.scope AND t.concurrency_key = v_key.key AND t.state = 'pending' AND t.waiting_for_slot
                ORDER BY t.waiting_since, t.id LIMIT v_limit - v_running
            ) w;
            -- A task cancelled meanwhile is not started; then look again.
            v_started := v_started + cardinality(orcastra.start_pending_tasks(v_next, 'a concurrency slot freed (key ' || v_key.key || ')'));
        END LOOP;
    END LOOP;
    RETURN v_started;
END
$$;

-- Decides, at creation, whether a task of a template with a concurrency limit may start now:
-- takes the key's lock (held until commit, so the task's own insert is seen by the next decision)
-- and returns true when a slot is free and no older task waits for one.
CREATE OR REPLACE FUNCTION orcastra.concurrency_slot_free(p_scope text, p_key text, p_limit integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orcastra.lock_concurrency_key(p_scope, p_key);
    RETURN NOT EXISTS (SELECT 1 FROM orcastra.tasks t
                       WHERE t.concurrency_scope = p_scope AND t.concurrency_key = p_key AND t.state = 'pending' AND t.waiting_for_slot)
       AND (SELECT count(*) FROM orcastra.tasks t
            WHERE t.concurrency_scope = p_scope AND t.concurrency_key = p_key AND t.state IN ('in_progress', 'waiting_for_retry')) < p_limit;
END
$$;

-- Tasks past their deadline (a template's `timeout:`): every step not finished is cancelled — a
-- running one at once, its lease token cleared, so its worker's report is refused (lease_lost)
-- and its next heartbeat tells it to stop — and the task fails (error) with the reason in its
-- transition and its error. The slot of its concurrency key, if any, goes to the next in line.
-- Takes up to p_limit tasks; safe from any number of orchestrators: the steps are locked
-- (ascending id) before the tasks (ascending id, SKIP LOCKED), and a task is re-checked once its
-- locks are held, so a task another orchestrator already failed is left alone.
CREATE OR REPLACE FUNCTION orcastra.fail_overdue_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_candidates uuid[];
    v_tasks uuid[];
BEGIN
    SELECT coalesce(array_agg(t.id), '{}') INTO v_candidates FROM (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.deadline_at IS NOT NULL AND t.state IN ('in_progress', 'waiting_for_retry') AND t.deadline_at <= now()
        ORDER BY t.deadline_at LIMIT p_limit
    ) t;
    IF cardinality(v_candidates) = 0 THEN RETURN 0; END IF;

    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = ANY (v_candidates) ORDER BY s.id FOR UPDATE;
    SELECT coalesce(array_agg(t.id), '{}') INTO v_tasks FROM (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.id = ANY (v_candidates) AND t.state IN ('in_progress', 'waiting_for_retry') AND t.deadline_at <= now()
        ORDER BY t.id FOR UPDATE SKIP LOCKED
    ) t;
    IF cardinality(v_tasks) = 0 THEN RETURN 0; END IF;

    -- The task first, while its running steps can still be named.
    UPDATE orcastra.tasks t
    SET state = 'error',
        state_reason = 'timed out: not finished ' || orcastra.duration_text(t.timeout_ms) || ' after it started (the template''s timeout)',
        finished_at = now(),
        error = 'timed out after ' || orcastra.duration_text(t.timeout_ms)
                || coalesce(' while running ' || (SELECT string_agg(s.name, ', ' ORDER BY s.id) FROM orcastra.steps s
                                                   WHERE s.task_id = t.id AND s.state = 'in_progress'), '')
    WHERE t.id = ANY (v_tasks);
    UPDATE orcastra.steps s
    SET state = 'cancelled',
        state_reason = CASE WHEN s.state = 'in_progress' THEN 'cancelled while running: the task''s timeout passed'
                            ELSE 'the task''s timeout passed' END,
        finished_at = now(), lease_token = NULL, lease_expires_at = NULL
    WHERE s.task_id = ANY (v_tasks) AND s.state IN ('pending', 'enqueued', 'in_progress', 'waiting_for_retry');
    PERFORM orcastra.admit_waiting_tasks(v_tasks);
    RETURN cardinality(v_tasks);
END
$$;

-- `7200000` → `2h`, `90000` → `1m30s`, `1500` → `1.5s`: durations as templates write them.
CREATE OR REPLACE FUNCTION orcastra.duration_text(p_ms bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_ms < 1000 THEN p_ms || 'ms'
                WHEN p_ms % 1000 <> 0 THEN trim_scale((p_ms / 1000.0)::numeric) || 's'
                ELSE nullif(concat(CASE WHEN p_ms >= 86400000 THEN (p_ms / 86400000) || 'd' END,
                                   CASE WHEN p_ms % 86400000 >= 3600000 THEN (p_ms % 86400000 / 3600000) || 'h' END,
                                   CASE WHEN p_ms % 3600000 >= 60000 THEN (p_ms % 3600000 / 60000) || 'm' END,
                                   CASE WHEN p_ms % 60000 >= 1000 THEN (p_ms % 60000 / 1000) || 's' END), '') END;
$$;
