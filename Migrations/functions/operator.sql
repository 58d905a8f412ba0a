-- What an operator does by hand (`orcastra task cancel|retry|resolve`, `orcastra step retry|resolve`). Each
-- locks steps (ascending id) before tasks (ascending id), like every other function, and refuses
-- with SQLSTATE OR002 and a sentence that says why when the action does not apply.

-- A sub-workflow task follows its workflow step (functions/subworkflows.sql): an operator's retry
-- or resolve inside it would let the two disagree (the step may have failed with it already), so
-- they are refused, naming the step to act on instead. Cancelling a child stays allowed (its step
-- then fails).
CREATE OR REPLACE FUNCTION orcastra.refuse_in_subworkflow(p_task uuid, p_action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_parent record;
BEGIN
    SELECT t.parent_step_id, t.parent_task_id INTO v_parent FROM orcastra.tasks t WHERE t.id = p_task AND t.parent_step_id IS NOT NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'task % is the sub-workflow of step % (task %): it cannot be %; act on that step instead (`orcastra step retry %` starts a new child task, `orcastra step resolve %` gives its result)',
                        p_task, v_parent.parent_step_id, v_parent.parent_task_id, p_action, v_parent.parent_step_id, v_parent.parent_step_id
            USING ERRCODE = 'OR002';
    END IF;
END
$$;

-- The attempts a step's template allows (retry.max_attempts): an operator's retry grants that many
-- again on top of those used, whatever earlier retries granted.
CREATE OR REPLACE FUNCTION orcastra.template_max_attempts(p_task uuid, p_step text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT (d.step->'retry'->>'max_attempts')::integer
    FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id,
         jsonb_array_elements(tp.definition->'steps') AS d(step)
    -- An instance `charge[3]` of a fan-out has its fan-out step's policy (was NULL: the retry of an
    -- instance failed on steps.max_attempts NOT NULL).
    WHERE t.id = p_task AND d.step->>'name' = split_part(p_step, '[', 1)
$$;

-- Cancels a task: steps not yet running are cancelled now; running ones when their worker next
-- heartbeats or reports (their outcome is then ignored). Its live sub-workflow tasks (and theirs,
-- all the way down) are cancelled with it, and so are the workflow steps waiting for them.
-- Returns the task's state afterwards, or NULL when there is no such task.
CREATE OR REPLACE FUNCTION orcastra.cancel_task(p_task uuid, p_reason text) RETURNS text
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_state text;
BEGIN
    SELECT c.state INTO v_state FROM orcastra.cancel_task_trees(ARRAY[p_task], p_reason) AS c WHERE c.task_id = p_task;
    IF NOT FOUND THEN
        SELECT t.state INTO v_state FROM orcastra.tasks t WHERE t.id = p_task;
    END IF;
    RETURN v_state;
END
$$;

-- Cancels the live tasks `p_roots` and their live descendants (sub-workflow tasks, found through
-- parent_task_id): steps not running and workflow steps are cancelled now, tasks go cancelled, and
-- each task that held a concurrency slot hands it on. Returns the tasks it cancelled.
-- Lock order: every step of the whole tree by ascending id, then its tasks by ascending id. A
-- child can only be made by a transaction holding its workflow step, so once a generation's steps
-- are locked, its children are known: the tree is looked up again until no new task appears (a
-- child made meanwhile is then locked after the others, out of order, in that rare race only).
CREATE OR REPLACE FUNCTION orcastra.cancel_task_trees(p_roots uuid[], p_reason text)
RETURNS TABLE (task_id uuid, state text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_tree uuid[] := '{}';
    v_found uuid[];
    v_cancelled uuid[];
    v_running uuid[];
BEGIN
    LOOP
        WITH RECURSIVE tree AS (
            SELECT t.id FROM orcastra.tasks t WHERE t.id = ANY (p_roots)
            UNION
            SELECT c.id FROM orcastra.tasks c JOIN tree ON c.parent_task_id = tree.id
            WHERE c.parent_task_id IS NOT NULL
        )
        SELECT coalesce(array_agg(tree.id), '{}') INTO v_found FROM tree WHERE NOT tree.id = ANY (v_tree);
        EXIT WHEN cardinality(v_found) = 0;
        PERFORM 1 FROM orcastra.steps s WHERE s.task_id = ANY (v_found) ORDER BY s.id FOR UPDATE;
        v_tree := v_tree || v_found;
    END LOOP;
    SELECT coalesce(array_agg(x.id), '{}'), coalesce(array_agg(x.id) FILTER (WHERE x.state IN ('in_progress', 'waiting_for_retry')), '{}')
    INTO v_cancelled, v_running FROM (
        SELECT t.id, t.state FROM orcastra.tasks t WHERE t.id = ANY (v_tree) ORDER BY t.id FOR UPDATE
    ) x
    -- A root in error may be cancelled too (it stops being retryable); a descendant only while live.
    WHERE CASE WHEN x.id = ANY (p_roots) THEN x.state NOT IN ('complete', 'cancelled', 'resolved_manually')
               ELSE x.state IN ('pending', 'in_progress', 'waiting_for_retry') END;
    IF cardinality(v_cancelled) = 0 THEN RETURN; END IF;
    UPDATE orcastra.steps s
    SET state = 'cancelled', finished_at = now(),
        state_reason = CASE WHEN s.task_id = ANY (p_roots) THEN p_reason ELSE 'its parent task was cancelled: ' || p_reason END
    WHERE s.task_id = ANY (v_cancelled)
      AND (s.state IN ('pending', 'enqueued', 'waiting_for_retry') OR (s.state = 'in_progress' AND s.workflow IS NOT NULL));
    UPDATE orcastra.tasks t
    SET state = 'cancelled', finished_at = now(),
        state_reason = CASE WHEN t.id = ANY (p_roots) THEN p_reason ELSE 'its parent task was cancelled: ' || p_reason END
    WHERE t.id = ANY (v_cancelled);
    -- A running task frees its concurrency slot for the next in line (functions/limits.sql).
    IF cardinality(v_running) > 0 THEN PERFORM orcastra.admit_waiting_tasks(v_running); END IF;
    RETURN QUERY SELECT u.id, 'cancelled'::text FROM unnest(v_cancelled) AS u(id);
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
    PERFORM orcastra.refuse_in_subworkflow(p_task, 'resolved by hand');
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
    SET pending_parents = (SELECT count(*) FROM orcastra.step_links e JOIN orcastra.steps p ON p.id = e.parent_id
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
    v_error text;
BEGIN
    -- An instance's fan-out first (a lower id): it may have failed with it and must reopen.
    PERFORM 1 FROM orcastra.steps s
    WHERE s.id IN (SELECT p_step UNION SELECT i.fanout_of FROM orcastra.steps i WHERE i.id = p_step)
    ORDER BY s.id FOR UPDATE;
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state <> 'error' THEN
        RAISE EXCEPTION 'step % is %, not error: only a failed step can be retried', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    PERFORM orcastra.refuse_in_subworkflow(v_step.task_id, 'retried step by step');
    IF v_step.for_each IS NOT NULL AND v_step.instances IS NOT NULL THEN
        RAISE EXCEPTION 'step % is a fan-out (for_each) whose instances failed (%): retry the failed instances (orcastra step retry of each, or orcastra task retry), and the fan-out carries on',
                        p_step, coalesce(v_step.last_error, v_step.state_reason)
            USING ERRCODE = 'OR002';
    ELSIF v_step.for_each IS NOT NULL THEN
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
    -- A workflow step runs again as a new child task (functions/subworkflows.sql), or not at all.
    IF v_step.workflow IS NOT NULL THEN
        SELECT x.error INTO v_error FROM orcastra.start_subworkflows(ARRAY[p_step]) AS x;
        IF v_error IS NOT NULL THEN
            RAISE EXCEPTION 'step % cannot run again: %', p_step, v_error USING ERRCODE = 'OR002';
        END IF;
        PERFORM orcastra.settle_tasks(ARRAY[v_step.task_id]);
        RETURN 'in_progress';
    END IF;
    PERFORM orcastra.reopen_fanouts(ARRAY[p_step]);
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
    v_error text;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = p_task AND s.state = 'error' ORDER BY s.id FOR UPDATE;
    SELECT t.state INTO v_task_state FROM orcastra.tasks t WHERE t.id = p_task;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_task_state IN ('cancelled', 'complete', 'resolved_manually') THEN
        RAISE EXCEPTION 'task % is %: its steps cannot run again', p_task, v_task_state USING ERRCODE = 'OR002';
    END IF;
    PERFORM orcastra.refuse_in_subworkflow(p_task, 'retried');
    -- Fan-outs that failed with their instances carry on (they were locked above, with the
    -- instances: every step in error, ascending).
    PERFORM orcastra.reopen_fanouts(ARRAY(SELECT s.id FROM orcastra.steps s
                                          WHERE s.task_id = p_task AND s.state = 'error' AND s.fanout_of IS NOT NULL));
    WITH retried AS (
        UPDATE orcastra.steps s
        SET state = 'enqueued', state_reason = p_reason, enqueued_at = now(), finished_at = NULL,
            max_attempts = s.attempts + orcastra.template_max_attempts(s.task_id, s.name)
        WHERE s.task_id = p_task AND s.state = 'error' AND s.for_each IS NULL AND s.workflow IS NULL
        RETURNING s.namespace
    )
    SELECT count(*), array_agg(DISTINCT r.namespace) INTO v_count, v_namespaces FROM retried r;
    -- Workflow steps in error start a new child task each; one that cannot start refuses the retry.
    SELECT string_agg('step ' || x.step_id || ': ' || x.error, '; '), v_count + count(*) FILTER (WHERE x.error IS NULL)
    INTO v_error, v_count
    FROM orcastra.start_subworkflows(ARRAY(SELECT s.id FROM orcastra.steps s
                                           WHERE s.task_id = p_task AND s.state = 'error' AND s.workflow IS NOT NULL ORDER BY s.id)) AS x;
    IF v_error IS NOT NULL THEN
        RAISE EXCEPTION 'task % cannot run again: %', p_task, v_error USING ERRCODE = 'OR002';
    END IF;
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
    WHERE s.id IN (SELECT p_step UNION SELECT e.child_id FROM orcastra.step_links e WHERE e.parent_id = p_step)
    ORDER BY s.id FOR UPDATE;
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step;
    IF v_step.state = 'error' AND v_step.for_each IS NOT NULL AND v_step.instances IS NOT NULL
       AND EXISTS (SELECT 1 FROM orcastra.steps i WHERE i.fanout_of = p_step AND i.state = 'error') THEN
        RAISE EXCEPTION 'step % is a fan-out whose instances failed: resolve or retry the failed instances instead, and the fan-out completes with their results',
                        p_step USING ERRCODE = 'OR002';
    END IF;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state NOT IN ('error', 'pending', 'waiting_for_retry') THEN
        RAISE EXCEPTION 'step % is %: only a failed, waiting or pending step can be resolved by hand', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    PERFORM orcastra.refuse_in_subworkflow(v_step.task_id, 'resolved step by step');
    SELECT t.state, t.run_at INTO v_task FROM orcastra.tasks t WHERE t.id = v_step.task_id;
    IF v_task.state = 'pending' THEN
        RAISE EXCEPTION 'step % belongs to a task scheduled to start at %: resolve it once the task has started', p_step, v_task.run_at
            USING ERRCODE = 'OR002';
    ELSIF v_task.state NOT IN ('in_progress', 'waiting_for_retry', 'error') THEN
        RAISE EXCEPTION 'step % belongs to a task that is %: its steps cannot change any more', p_step, v_task.state
            USING ERRCODE = 'OR002';
    END IF;
    -- Its fan-out (its child, locked above) carries on if it had failed with it.
    PERFORM orcastra.reopen_fanouts(ARRAY[p_step]);
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
