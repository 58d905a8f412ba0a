-- What an operator does by hand (`orcastra task cancel|retry|resolve`, `orcastra step retry|resolve`). Each
-- locks steps (ascending id) before tasks (ascending id), like every other function, and refuses
-- with SQLSTATE OR002 and a sentence that says why when the action does not apply.

-- The attempts a step's template allows (retry.max_attempts): an operator's retry grants that many
-- again on top of those used, whatever earlier retries granted.
CREATE OR REPLACE FUNCTION orcastra.template_max_attempts(p_task uuid, p_step text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT (d.step->'retry'->>'max_attempts')::integer
    FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id,
         jsonb_array_elements(tp.definition->'steps') AS d(step)
    WHERE t.id = p_task AND d.step->>'name' = p_step
$$;

-- Cancels a task: steps not yet running are cancelled now; running ones when their worker next
-- heartbeats or reports (their outcome is then ignored). Returns the task's state afterwards, or
-- NULL when there is no such task.
CREATE OR REPLACE FUNCTION orcastra.cancel_task(p_task uuid, p_reason text) RETURNS text
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_state text;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = p_task ORDER BY s.id FOR UPDATE;
    SELECT t.state INTO v_state FROM orcastra.tasks t WHERE t.id = p_task FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_state IN ('complete', 'cancelled', 'resolved_manually') THEN RETURN v_state; END IF;
    UPDATE orcastra.steps s SET state = 'cancelled', state_reason = p_reason, finished_at = now()
    WHERE s.task_id = p_task AND s.state IN ('pending', 'enqueued', 'waiting_for_retry');
    UPDATE orcastra.tasks t SET state = 'cancelled', state_reason = p_reason, finished_at = now() WHERE t.id = p_task;
    -- A running task frees its concurrency slot for the next in line (functions/limits.sql).
    IF v_state IN ('in_progress', 'waiting_for_retry') THEN PERFORM orcastra.admit_waiting_tasks(ARRAY[p_task]); END IF;
    RETURN 'cancelled';
END
$$;

-- Declares a task done by hand: it becomes resolved_manually and nothing of it runs again. Its
-- unfinished steps are resolved too (pending, waiting_for_retry, error) or, if queued, cancelled.
-- Refused (OR002) while a step runs — wait for it or cancel the task — and for a scheduled task
-- (cancel it instead). Returns the task's state afterwards (a finished task keeps its own), or
-- NULL when there is no such task.
CREATE OR REPLACE FUNCTION orcastra.resolve_task(p_task uuid, p_reason text) RETURNS text
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_state text;
    v_running text;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = p_task ORDER BY s.id FOR UPDATE;
    SELECT t.state INTO v_state FROM orcastra.tasks t WHERE t.id = p_task FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_state IN ('complete', 'cancelled', 'resolved_manually') THEN RETURN v_state; END IF;
    IF v_state = 'pending' THEN
        RAISE EXCEPTION 'task % has not started (it is scheduled, or waits for a concurrency slot): cancel it instead', p_task
            USING ERRCODE = 'OR002';
    END IF;
    SELECT string_agg(s.name || ' (step ' || s.id || ')', ', ' ORDER BY s.id) INTO v_running
    FROM orcastra.steps s WHERE s.task_id = p_task AND s.state = 'in_progress';
    IF v_running IS NOT NULL THEN
        RAISE EXCEPTION 'task % has running steps: %; wait for them to finish, or cancel the task', p_task, v_running
            USING ERRCODE = 'OR002';
    END IF;
    -- A resolved step has a result like any other (JSON null here); counts of unfinished parents
    -- stay true (docs/state-machines.md, the invariant checker).
    WITH ended AS (
        UPDATE orcastra.steps s
        SET state = CASE WHEN s.state = 'enqueued' THEN 'cancelled' ELSE 'resolved_manually' END,
            -- A failed step keeps the end of its last attempt, so its duration stays that attempt's.
            state_reason = p_reason, finished_at = CASE WHEN s.state = 'error' THEN s.finished_at ELSE now() END
        WHERE s.task_id = p_task AND s.state IN ('pending', 'enqueued', 'waiting_for_retry', 'error')
        RETURNING s.id, s.state
    )
    INSERT INTO orcastra.step_results (step_id, result)
    SELECT e.id, 'null'::jsonb FROM ended e WHERE e.state = 'resolved_manually'
    ON CONFLICT (step_id) DO NOTHING;
    UPDATE orcastra.steps c
    SET pending_parents = (SELECT count(*) FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                           WHERE e.child_id = c.id AND p.state NOT IN ('complete', 'resolved_manually', 'skipped'))
    WHERE c.task_id = p_task;
    UPDATE orcastra.tasks t SET state = 'resolved_manually', state_reason = p_reason, finished_at = now(), error = NULL
    WHERE t.id = p_task;
    IF v_state IN ('in_progress', 'waiting_for_retry') THEN PERFORM orcastra.admit_waiting_tasks(ARRAY[p_task]); END IF;
    RETURN 'resolved_manually';
END
$$;

-- Gives a step in error its retry budget again and puts it back in line; its task resumes.
-- Returns the step's state afterwards, or NULL when there is no such step.
CREATE OR REPLACE FUNCTION orcastra.retry_step(p_step bigint, p_reason text) RETURNS text
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_step record;
    v_task_state text;
BEGIN
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state <> 'error' THEN
        RAISE EXCEPTION 'step % is %, not error: only a failed step can be retried', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    IF v_step.for_each IS NOT NULL THEN
        RAISE EXCEPTION 'step % is a fan-out (for_each) that failed before making its instances (%): it cannot run again; resolve it with the list of results (orcastra step resolve) or cancel the task',
                        p_step, coalesce(v_step.last_error, v_step.state_reason)
            USING ERRCODE = 'OR002';
    END IF;
    -- Every writer of a task's state locks its steps first, so this read stays true until commit.
    SELECT t.state INTO v_task_state FROM orcastra.tasks t WHERE t.id = v_step.task_id;
    IF v_task_state IN ('cancelled', 'complete', 'resolved_manually') THEN
        RAISE EXCEPTION 'step % belongs to a task that is %: it cannot run again', p_step, v_task_state
            USING ERRCODE = 'OR002';
    END IF;
    UPDATE orcastra.steps s
    SET state = 'enqueued', state_reason = p_reason, enqueued_at = now(), finished_at = NULL,
        max_attempts = s.attempts + orcastra.template_max_attempts(s.task_id, s.name)
    WHERE s.id = p_step;
    PERFORM orcastra.settle_tasks(ARRAY[v_step.task_id]);
    PERFORM orcastra.notify_namespaces(ARRAY[v_step.namespace]);
    RETURN 'enqueued';
END
$$;

-- Retries every step of the task that is in error at once, as retry_step does for one; the task
-- resumes. Returns how many steps went back in line, or NULL when there is no such task.
-- Locks the failed steps by ascending id, then (settle_tasks) the task.
CREATE OR REPLACE FUNCTION orcastra.retry_task(p_task uuid, p_reason text) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_task_state text;
    v_count integer;
    v_namespaces text[];
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = p_task AND s.state = 'error' ORDER BY s.id FOR UPDATE;
    SELECT t.state INTO v_task_state FROM orcastra.tasks t WHERE t.id = p_task;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_task_state IN ('cancelled', 'complete', 'resolved_manually') THEN
        RAISE EXCEPTION 'task % is %: its steps cannot run again', p_task, v_task_state USING ERRCODE = 'OR002';
    END IF;
    WITH retried AS (
        UPDATE orcastra.steps s
        SET state = 'enqueued', state_reason = p_reason, enqueued_at = now(), finished_at = NULL,
            max_attempts = s.attempts + orcastra.template_max_attempts(s.task_id, s.name)
        WHERE s.task_id = p_task AND s.state = 'error' AND s.for_each IS NULL
        RETURNING s.namespace
    )
    SELECT count(*), array_agg(DISTINCT r.namespace) INTO v_count, v_namespaces FROM retried r;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'task % is % and has no step in error: nothing to retry', p_task, v_task_state USING ERRCODE = 'OR002';
    END IF;
    PERFORM orcastra.settle_tasks(ARRAY[p_task]);
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN v_count;
END
$$;

-- Resolves a step by hand with the given result: its children run as if it had completed.
-- Only in a task that runs (in_progress, waiting_for_retry or error): a scheduled task's steps
-- wait for its start time, and a finished or cancelled task's steps never run again.
CREATE OR REPLACE FUNCTION orcastra.resolve_step(p_step bigint, p_result jsonb, p_reason text) RETURNS text
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_step record;
    v_task record;
    v_released record;
BEGIN
    -- The step and the children it may release, by ascending id.
    PERFORM 1 FROM orcastra.steps s
    WHERE s.id IN (SELECT p_step UNION SELECT e.child_id FROM orcastra.step_edges e WHERE e.parent_id = p_step)
    ORDER BY s.id FOR UPDATE;
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state NOT IN ('error', 'pending', 'waiting_for_retry') THEN
        RAISE EXCEPTION 'step % is %: only a failed, waiting or pending step can be resolved by hand', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    SELECT t.state, t.run_at INTO v_task FROM orcastra.tasks t WHERE t.id = v_step.task_id;
    IF v_task.state = 'pending' THEN
        RAISE EXCEPTION 'step % belongs to a task scheduled to start at %: resolve it once the task has started', p_step, v_task.run_at
            USING ERRCODE = 'OR002';
    ELSIF v_task.state NOT IN ('in_progress', 'waiting_for_retry', 'error') THEN
        RAISE EXCEPTION 'step % belongs to a task that is %: its steps cannot change any more', p_step, v_task.state
            USING ERRCODE = 'OR002';
    END IF;
    UPDATE orcastra.steps s SET state = 'resolved_manually', state_reason = p_reason,
        finished_at = CASE WHEN s.state = 'error' THEN s.finished_at ELSE now() END
    WHERE s.id = p_step;
    INSERT INTO orcastra.step_results (step_id, result) VALUES (p_step, p_result)
    ON CONFLICT (step_id) DO UPDATE SET result = EXCLUDED.result, written_at = now();
    SELECT * INTO v_released FROM orcastra.release_children(ARRAY[p_step]);
    PERFORM orcastra.settle_tasks(ARRAY[v_step.task_id]);
    PERFORM orcastra.notify_namespaces(v_released.namespaces);
    RETURN 'resolved_manually';
END
$$;
