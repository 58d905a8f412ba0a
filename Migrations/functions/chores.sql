-- The orchestrator's chores: what is driven by time rather than by a worker's report.
--
-- Each takes up to p_limit rows it can lock (SKIP LOCKED where it picks), so any number of
-- orchestrators can run them at once without doing the same work twice, and returns how many it
-- handled. Each runs in a transaction of its own, and each locks steps (ascending id) before tasks
-- (ascending id), like every other function: no chore can deadlock with a worker, an operator or
-- another orchestrator.

-- Scheduled tasks whose time has come: start them and enqueue their root steps. A task with a
-- concurrency key joins its key's line instead, and starts now only if a slot is free
-- (functions/limits.sql).
CREATE OR REPLACE FUNCTION orcastra.start_due_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_candidates uuid[];
    v_tasks uuid[];
    v_limited uuid[];
BEGIN
    SELECT coalesce(array_agg(t.id), '{}') INTO v_candidates FROM (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.state = 'pending' AND NOT t.waiting_for_slot AND t.run_at <= now()
        ORDER BY t.run_at LIMIT p_limit
    ) t;
    IF cardinality(v_candidates) = 0 THEN RETURN 0; END IF;

    -- Steps first (a cancel_task of one of these tasks locks the same rows in the same order),
    -- then the tasks still due once those locks are ours.
    PERFORM 1 FROM orcastra.steps s WHERE s.task_id = ANY (v_candidates) ORDER BY s.id FOR UPDATE;
    SELECT coalesce(array_agg(t.id) FILTER (WHERE t.concurrency_key IS NULL), '{}'),
           coalesce(array_agg(t.id) FILTER (WHERE t.concurrency_key IS NOT NULL), '{}') INTO v_tasks, v_limited FROM (
        SELECT t.id, t.concurrency_key FROM orcastra.tasks t
        WHERE t.id = ANY (v_candidates) AND t.state = 'pending' AND NOT t.waiting_for_slot AND t.run_at <= now()
        ORDER BY t.id FOR UPDATE SKIP LOCKED
    ) t;
    IF cardinality(v_tasks) + cardinality(v_limited) = 0 THEN RETURN 0; END IF;

    PERFORM orcastra.start_pending_tasks(v_tasks, 'start time reached');
    IF cardinality(v_limited) > 0 THEN
        UPDATE orcastra.tasks t SET waiting_for_slot = true, waiting_since = clock_timestamp(),
                                    state_reason = 'start time reached; waiting for a concurrency slot'
        WHERE t.id = ANY (v_limited);
        PERFORM orcastra.admit_waiting_tasks(v_limited);
    END IF;
    RETURN cardinality(v_tasks) + cardinality(v_limited);
END
$$;

-- Failed steps whose backoff has elapsed go back in line.
CREATE OR REPLACE FUNCTION orcastra.enqueue_due_retries(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_namespaces text[];
    v_tasks uuid[];
    v_count integer;
BEGIN
    WITH due AS (
        -- step_retries (0012) by due time; the steps are locked, as claim_steps does.
        SELECT s.id FROM orcastra.step_retries r JOIN orcastra.steps s ON s.id = r.step_id
        WHERE r.visible_at <= now() AND s.state = 'waiting_for_retry' AND s.visible_at <= now()
        ORDER BY r.visible_at LIMIT p_limit FOR UPDATE OF s SKIP LOCKED
    ), retried AS (
        UPDATE orcastra.steps s SET state = 'enqueued', state_reason = 'retry due', enqueued_at = now()
        FROM due WHERE s.id = due.id
        RETURNING s.namespace, s.task_id
    )
    SELECT array_agg(namespace), coalesce(array_agg(DISTINCT task_id), '{}'), count(*)
    INTO v_namespaces, v_tasks, v_count FROM retried;
    IF v_count = 0 THEN RETURN 0; END IF;
    PERFORM orcastra.settle_tasks(v_tasks);
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN v_count;
END
$$;

-- Steps whose worker stopped heartbeating (it died, or lost the database): the lost attempt is
-- recorded, and the step goes back in line, or into error if that was its last attempt — or is
-- cancelled if its task was cancelled meanwhile (it must not run again).
CREATE OR REPLACE FUNCTION orcastra.recover_expired_leases(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_namespaces text[];
    v_tasks uuid[];
    v_count integer;
    v_errored bigint[];
    v_after_failures record;
BEGIN
    WITH expired AS (
        -- The running steps (step_leases, 0012) whose lease expired: reads every running step's
        -- row by primary key (the expiry stays on steps so that a heartbeat is one HOT update).
        SELECT s.id FROM orcastra.step_leases l JOIN orcastra.steps s ON s.id = l.step_id
        WHERE s.state = 'in_progress' AND s.lease_expires_at < clock_timestamp()
        ORDER BY s.lease_expires_at LIMIT p_limit FOR UPDATE OF s SKIP LOCKED
    ), recovered AS (
        UPDATE orcastra.steps s
        SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled'
                         WHEN s.attempts < s.max_attempts THEN 'enqueued' ELSE 'error' END,
            state_reason = CASE WHEN t.state = 'cancelled'
                                THEN 'lease expired after its task was cancelled (worker ' || coalesce(s.lease_owner, '?') || ')'
                                ELSE 'lease expired: attempt ' || s.attempts || ' lost (worker ' || coalesce(s.lease_owner, '?') || ')' END,
            last_error = 'attempt ' || s.attempts || ' lost: the worker ' || coalesce(s.lease_owner, '?') || ' stopped heartbeating',
            enqueued_at = now(), lease_token = NULL, lease_expires_at = NULL,
            finished_at = CASE WHEN t.state = 'cancelled' OR s.attempts >= s.max_attempts THEN now() END
        FROM expired, orcastra.tasks t
        WHERE s.id = expired.id AND t.id = s.task_id
        RETURNING s.id, s.namespace, s.task_id, s.state
    )
    SELECT array_agg(namespace) FILTER (WHERE state = 'enqueued'), coalesce(array_agg(DISTINCT task_id), '{}'), count(*),
           array_agg(id ORDER BY id) FILTER (WHERE state = 'error')
    INTO v_namespaces, v_tasks, v_count, v_errored FROM recovered;
    IF v_count = 0 THEN RETURN 0; END IF;
    -- Children with trigger all_done run once every parent finished, failed ones included. They
    -- are locked here, after the recovered steps (only templates with all_done get this far, or
    -- a fan-out whose instance failed: it may fail in turn, release_after_failures).
    IF v_errored IS NOT NULL AND EXISTS (SELECT 1 FROM orcastra.step_links e JOIN orcastra.steps c ON c.id = e.child_id
                                         WHERE e.parent_id = ANY (v_errored)
                                           AND (c.trigger_rule = 'all_done' OR c.instances IS NOT NULL)) THEN
        PERFORM 1 FROM orcastra.steps c
        WHERE c.id IN (SELECT e.child_id FROM orcastra.step_links e WHERE e.parent_id = ANY (v_errored))
        ORDER BY c.id FOR UPDATE;
        SELECT * INTO v_after_failures FROM orcastra.release_after_failures(v_errored);
        v_namespaces := v_namespaces || v_after_failures.namespaces;
    END IF;
    PERFORM orcastra.settle_tasks(v_tasks);
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN v_count;
END
$$;

-- A safety net: live tasks with nothing live left are settled (normally the last report does it).
-- Touches tasks only.
CREATE OR REPLACE FUNCTION orcastra.settle_stalled_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_tasks uuid[];
BEGIN
    SELECT coalesce(array_agg(t.id), '{}') INTO v_tasks FROM (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.state IN ('in_progress', 'waiting_for_retry')
          AND NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.task_id = t.id AND s.state IN ('enqueued', 'in_progress'))
        ORDER BY t.id LIMIT p_limit FOR UPDATE SKIP LOCKED
    ) t;
    RETURN (SELECT count(*) FROM orcastra.settle_tasks(v_tasks));
END
$$;

-- When the next chore falls due: the earliest retry, lease expiry, scheduled start, task deadline
-- or schedule occurrence; now when a sub-workflow needs following (a child task finished while its
-- workflow step still runs: advance_subworkflows) or cancelling (a live child whose step stopped
-- waiting: cancel_orphaned_subworkflows). NULL: nothing will fall due by time alone. The
-- orchestrator asks this on each poll and runs its chores only when the answer is not in the
-- future, so an idle orchestrator sends one statement a poll (issue 12).
CREATE OR REPLACE FUNCTION orcastra.next_due() RETURNS timestamptz
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT least(
        (SELECT min(r.visible_at) FROM orcastra.step_retries r),
        (SELECT min(s.lease_expires_at) FROM orcastra.step_leases l JOIN orcastra.steps s ON s.id = l.step_id),
        (SELECT min(run_at) FROM orcastra.tasks WHERE state = 'pending' AND NOT waiting_for_slot),
        (SELECT min(deadline_at) FROM orcastra.tasks WHERE deadline_at IS NOT NULL AND state IN ('in_progress', 'waiting_for_retry')),
        (SELECT min(next_fire_at) FROM orcastra.schedules WHERE NOT paused AND next_fire_at IS NOT NULL),
        -- Running workflow steps are among the running steps (step_leases), as advance_subworkflows reads them.
        (SELECT now() WHERE EXISTS (
            SELECT 1 FROM orcastra.step_leases l JOIN orcastra.steps s ON s.id = l.step_id
            JOIN orcastra.tasks c ON c.id = s.child_task_id
            WHERE s.state = 'in_progress' AND s.workflow IS NOT NULL
              AND c.state IN ('complete', 'resolved_manually', 'error', 'cancelled'))),
        -- The live children by their step (tasks_live_children), as cancel_orphaned_subworkflows reads them.
        (SELECT now() WHERE EXISTS (
            SELECT 1 FROM orcastra.tasks c JOIN orcastra.steps s ON s.id = c.parent_step_id
            WHERE c.parent_step_id IS NOT NULL AND c.state IN ('pending', 'in_progress', 'waiting_for_retry')
              AND (s.state <> 'in_progress' OR s.child_task_id IS DISTINCT FROM c.id))));
$$;
