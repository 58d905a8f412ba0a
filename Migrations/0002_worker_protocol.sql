-- The worker protocol and the orchestrator's chores, as SQL functions.
--
-- A worker in any language takes part with four calls (docs/worker-protocol.md):
--   claim_steps     → a batch of enqueued steps of one namespace, each leased to the caller
--   heartbeat_steps → extend leases; learn which steps were cancelled meanwhile
--   complete_steps  → record results; children whose parents are all done are enqueued at once
--   fail_steps      → record failures; retry later or give up
-- Every call carries the lease token it got from claim_steps, so a worker whose lease expired (and
-- whose step was handed to another) can no longer change that step.
--
-- Locks are always taken in the same order — steps by ascending id, then tasks — so concurrent
-- completions of one task's steps cannot deadlock each other.

-- Wakes the workers of each namespace once, however many of its steps became ready.
CREATE FUNCTION orcastra.notify_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('orcastra_ns_' || namespace, '') FROM (SELECT DISTINCT unnest(p_namespaces) AS namespace) AS n;
$$;

-- Counts the completion of parents `p_parents` down on their children and enqueues the children
-- that have no unfinished parent left. Returns the namespaces that got work and the tasks that did.
CREATE FUNCTION orcastra.release_children(p_parents bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM orcastra.steps
    WHERE id IN (SELECT child_id FROM orcastra.step_edges WHERE parent_id = ANY (p_parents))
    ORDER BY id FOR UPDATE;

    WITH finished_parents AS (
        SELECT e.child_id, count(*)::int AS n
        FROM orcastra.step_edges e WHERE e.parent_id = ANY (p_parents)
        GROUP BY e.child_id
    ), released AS (
        UPDATE orcastra.steps c
        SET pending_parents = c.pending_parents - f.n,
            state = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN 'enqueued' ELSE c.state END,
            state_reason = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN 'parents complete' ELSE c.state_reason END,
            enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 THEN now() ELSE c.enqueued_at END
        FROM finished_parents f
        WHERE c.id = f.child_id
        RETURNING c.namespace, c.task_id, c.state
    )
    SELECT coalesce(array_agg(DISTINCT namespace) FILTER (WHERE state = 'enqueued'), '{}'),
           coalesce(array_agg(DISTINCT task_id) FILTER (WHERE state = 'enqueued'), '{}')
    INTO namespaces, tasks
    FROM released;
END
$$;

-- Moves each task in `p_tasks` that has no live step left to its final state: complete when every
-- step completed (or was resolved by hand), error when a step is in error. A task with a step
-- waiting for its retry and nothing running goes to waiting_for_retry. Returns the tasks changed.
CREATE FUNCTION orcastra.settle_tasks(p_tasks uuid[])
RETURNS TABLE (task_id uuid, state text)
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_tasks) = 0 THEN RETURN; END IF;
    -- Serialize with every other settler of these tasks; the counts below then see their commits.
    PERFORM 1 FROM orcastra.tasks t WHERE t.id = ANY (p_tasks) ORDER BY t.id FOR UPDATE;
    RETURN QUERY
    WITH counts AS (
        SELECT s.task_id,
               count(*) FILTER (WHERE s.state IN ('enqueued', 'in_progress')) AS running,
               count(*) FILTER (WHERE s.state = 'waiting_for_retry') AS waiting,
               count(*) FILTER (WHERE s.state = 'error') AS failed,
               count(*) FILTER (WHERE s.state NOT IN ('complete', 'resolved_manually')) AS unfinished
        FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks)
        GROUP BY s.task_id
    ), decided AS (
        SELECT c.task_id,
               CASE WHEN c.running > 0 THEN 'in_progress'
                    WHEN c.waiting > 0 THEN 'waiting_for_retry'
                    WHEN c.unfinished = 0 THEN 'complete'
                    ELSE 'error' END AS next_state,
               c.failed
        FROM counts c
    )
    UPDATE orcastra.tasks t
    SET state = d.next_state,
        state_reason = CASE d.next_state
            WHEN 'complete' THEN 'all steps complete'
            WHEN 'error' THEN d.failed || ' step(s) failed; nothing else can run'
            WHEN 'waiting_for_retry' THEN 'waiting for a step''s retry'
            ELSE 'steps running' END,
        finished_at = CASE WHEN d.next_state IN ('complete', 'error') THEN now() END,
        error = CASE WHEN d.next_state = 'error'
                     THEN (SELECT string_agg(s.name || ': ' || coalesce(s.last_error, 'failed'), '; ' ORDER BY s.id)
                           FROM orcastra.steps s WHERE s.task_id = t.id AND s.state = 'error')
                END
    FROM decided d
    WHERE t.id = d.task_id
      AND t.state IN ('in_progress', 'waiting_for_retry', 'error')
      AND t.state <> d.next_state
    RETURNING t.id, t.state;
END
$$;

-- Claim -------------------------------------------------------------------------------------------

-- PL/pgSQL rather than SQL: a SQL function's statement is planned generically, without the real
-- limit, and under load that plan hash-joined all of steps and tasks (hundreds of ms per claim);
-- PL/pgSQL plans with the actual values.
CREATE FUNCTION orcastra.claim_steps(p_namespace text, p_worker text, p_limit integer, p_lease_ms integer)
RETURNS TABLE (step_id bigint, task_id uuid, step_name text, attempt integer, max_attempts integer,
               lease_token uuid, lease_expires_at timestamptz, template_id bigint, context jsonb, parents jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH picked AS (
        SELECT s.id FROM orcastra.steps s
        WHERE s.namespace = p_namespace AND s.state = 'enqueued'
        ORDER BY s.priority DESC, s.enqueued_at, s.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE orcastra.steps s
        SET state = 'in_progress', state_reason = 'claimed', attempts = s.attempts + 1,
            lease_token = gen_random_uuid(), lease_owner = p_worker,
            lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond',
            started_at = now()
        FROM picked WHERE s.id = picked.id
        RETURNING s.id, s.task_id, s.name, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at
    )
    SELECT c.id, c.task_id, c.name, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at,
           t.template_id, t.context,
           coalesce((SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                     FROM orcastra.step_edges e
                     JOIN orcastra.steps p ON p.id = e.parent_id
                     LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                     WHERE e.child_id = c.id), '{}'::jsonb)
    FROM claimed c JOIN orcastra.tasks t ON t.id = c.task_id;
END
$$;

-- Heartbeat ---------------------------------------------------------------------------------------

-- Extends the leases the caller still holds. A step whose task was cancelled is cancelled here
-- (its outcome will be ignored) and reported with alive = false, as is a step whose lease was lost.
CREATE FUNCTION orcastra.heartbeat_steps(p_ids bigint[], p_tokens uuid[], p_lease_ms integer)
RETURNS TABLE (step_id bigint, alive boolean)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orcastra.steps s
    SET state = 'cancelled', state_reason = 'task cancelled while running', finished_at = now(), lease_token = NULL
    FROM unnest(p_ids, p_tokens) AS i(id, token), orcastra.tasks t
    WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
      AND t.id = s.task_id AND t.state = 'cancelled';

    RETURN QUERY
    WITH extended AS (
        UPDATE orcastra.steps s
        SET lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond'
        FROM unnest(p_ids, p_tokens) AS i(id, token)
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
        RETURNING s.id
    )
    SELECT i.id, EXISTS (SELECT 1 FROM extended x WHERE x.id = i.id)
    FROM unnest(p_ids) AS i(id);
END
$$;

-- Complete ----------------------------------------------------------------------------------------

-- Steps in `p_ids` (with matching tokens) whose task was cancelled while they ran: they are
-- cancelled and whatever their worker reports is ignored. Returns their ids.
CREATE FUNCTION orcastra.cancel_orphaned(p_ids bigint[], p_tokens uuid[]) RETURNS bigint[]
LANGUAGE sql AS $$
    WITH cancelled AS (
        UPDATE orcastra.steps s
        SET state = 'cancelled', state_reason = 'task cancelled while running', finished_at = now(), lease_token = NULL
        FROM unnest(p_ids, p_tokens) AS i(id, token), orcastra.tasks t
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
          AND t.id = s.task_id AND t.state = 'cancelled'
        RETURNING s.id
    )
    SELECT coalesce(array_agg(id), '{}') FROM cancelled;
$$;

-- Records results. Outcome per step: 'completed', 'ignored' (its task was cancelled meanwhile) or
-- 'lease_lost' (the token no longer matches: another worker owns the step, or it finished).
-- task_state is set for tasks that changed state because of these completions (e.g. complete).
CREATE FUNCTION orcastra.complete_steps(p_ids bigint[], p_tokens uuid[], p_results jsonb[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE plpgsql AS $$
DECLARE
    v_ignored bigint[];
    v_done bigint[];
    v_tasks uuid[];
    v_released record;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.id = ANY (p_ids) ORDER BY s.id FOR UPDATE;
    v_ignored := orcastra.cancel_orphaned(p_ids, p_tokens);

    WITH input AS (
        SELECT * FROM unnest(p_ids, p_tokens, p_results) AS i(id, token, result)
    ), done AS (
        UPDATE orcastra.steps s
        SET state = 'complete', state_reason = 'completed', finished_at = now(), lease_token = NULL,
            lease_expires_at = NULL, last_error = NULL
        FROM input i
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
        RETURNING s.id, s.task_id
    ), stored AS (
        INSERT INTO orcastra.step_results (step_id, result)
        SELECT d.id, i.result FROM done d JOIN input i ON i.id = d.id
    )
    SELECT coalesce(array_agg(d.id), '{}'), coalesce(array_agg(DISTINCT d.task_id), '{}') INTO v_done, v_tasks FROM done d;

    SELECT * INTO v_released FROM orcastra.release_children(v_done);
    PERFORM orcastra.notify_namespaces(v_released.namespaces);

    RETURN QUERY
    WITH settled AS (
        -- Only a task where these completions released nothing can have finished.
        SELECT * FROM orcastra.settle_tasks(ARRAY(SELECT unnest(v_tasks) EXCEPT SELECT unnest(v_released.tasks)))
    )
    SELECT i.id,
           CASE WHEN i.id = ANY (v_done) THEN 'completed' WHEN i.id = ANY (v_ignored) THEN 'ignored' ELSE 'lease_lost' END,
           s.task_id,
           (SELECT x.state FROM settled x WHERE x.task_id = s.task_id)
    FROM unnest(p_ids) AS i(id) JOIN orcastra.steps s ON s.id = i.id;
END
$$;

-- Fail --------------------------------------------------------------------------------------------

-- Records failed attempts. p_retry_after_ms is the backoff the worker computed from the step's
-- retry policy, or NULL for a permanent failure. A step with attempts left waits for its retry
-- (an orchestrator enqueues it when due); otherwise it is in error, its descendants never run,
-- and the task fails once nothing else can run. Outcome per step: 'waiting_for_retry', 'error',
-- 'ignored' or 'lease_lost'.
CREATE FUNCTION orcastra.fail_steps(p_ids bigint[], p_tokens uuid[], p_errors text[], p_retry_after_ms integer[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE plpgsql AS $$
DECLARE
    v_ignored bigint[];
    v_failed bigint[];
    v_tasks uuid[];
    v_retrying boolean;
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.id = ANY (p_ids) ORDER BY s.id FOR UPDATE;
    v_ignored := orcastra.cancel_orphaned(p_ids, p_tokens);

    WITH input AS (
        SELECT * FROM unnest(p_ids, p_tokens, p_errors, p_retry_after_ms) AS i(id, token, error, retry_after_ms)
    ), failed AS (
        UPDATE orcastra.steps s
        SET state = CASE WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN 'waiting_for_retry' ELSE 'error' END,
            state_reason = CASE
                WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN 'attempt ' || s.attempts || ' failed; retrying'
                WHEN i.retry_after_ms IS NULL THEN 'permanent failure'
                ELSE 'attempts exhausted (' || s.attempts || ' of ' || s.max_attempts || ')' END,
            visible_at = CASE WHEN i.retry_after_ms IS NOT NULL THEN now() + i.retry_after_ms * interval '1 millisecond' ELSE s.visible_at END,
            finished_at = CASE WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN NULL ELSE now() END,
            last_error = left(i.error, 65536), lease_token = NULL, lease_expires_at = NULL
        FROM input i
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
        RETURNING s.id, s.task_id, s.state
    )
    SELECT coalesce(array_agg(f.id), '{}'), coalesce(array_agg(DISTINCT f.task_id), '{}'),
           coalesce(bool_or(f.state = 'waiting_for_retry'), false)
    INTO v_failed, v_tasks, v_retrying FROM failed f;

    -- Orchestrators sleep until the next due retry; tell them there is a new one.
    IF v_retrying THEN PERFORM pg_notify('orcastra_orchestrator', 'retry'); END IF;

    RETURN QUERY
    WITH settled AS (SELECT * FROM orcastra.settle_tasks(v_tasks))
    SELECT i.id,
           CASE WHEN i.id = ANY (v_failed) THEN s.state WHEN i.id = ANY (v_ignored) THEN 'ignored' ELSE 'lease_lost' END,
           s.task_id,
           (SELECT x.state FROM settled x WHERE x.task_id = s.task_id)
    FROM unnest(p_ids) AS i(id) JOIN orcastra.steps s ON s.id = i.id;
END
$$;

-- Hand back -----------------------------------------------------------------------------------------

-- A worker shutting down returns steps it could not finish: they go back in line at once, and the
-- unfinished attempt does not count against the step's retries.
CREATE FUNCTION orcastra.release_steps(p_ids bigint[], p_tokens uuid[])
RETURNS TABLE (step_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_namespaces text[];
BEGIN
    RETURN QUERY
    WITH released AS (
        UPDATE orcastra.steps s
        SET state = 'enqueued', state_reason = 'handed back by a worker shutting down', attempts = s.attempts - 1,
            lease_token = NULL, lease_expires_at = NULL, enqueued_at = now()
        FROM unnest(p_ids, p_tokens) AS i(id, token)
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
        RETURNING s.id, s.namespace
    ), woken AS (
        SELECT orcastra.notify_namespaces(array_agg(namespace)) FROM released
    )
    SELECT r.id FROM released r, woken;
END
$$;

-- Orchestrator chores --------------------------------------------------------------------------------
-- Each takes up to p_limit rows it can lock (SKIP LOCKED), so any number of orchestrators can run
-- them at once without doing the same work twice, and returns how many it handled.

-- Scheduled tasks whose time has come: start them and enqueue their root steps.
CREATE FUNCTION orcastra.start_due_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_tasks uuid[];
    v_namespaces text[];
BEGIN
    WITH due AS (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.state = 'pending' AND t.run_at <= now()
        ORDER BY t.run_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), started AS (
        UPDATE orcastra.tasks t SET state = 'in_progress', state_reason = 'start time reached', started_at = now()
        FROM due WHERE t.id = due.id
        RETURNING t.id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_tasks FROM started;
    IF cardinality(v_tasks) = 0 THEN RETURN 0; END IF;

    WITH roots AS (
        UPDATE orcastra.steps s SET state = 'enqueued', state_reason = 'task started', enqueued_at = now()
        WHERE s.task_id = ANY (v_tasks) AND s.state = 'pending' AND s.pending_parents = 0
        RETURNING s.namespace
    )
    SELECT array_agg(namespace) INTO v_namespaces FROM roots;
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN cardinality(v_tasks);
END
$$;

-- Failed steps whose backoff has elapsed go back in line.
CREATE FUNCTION orcastra.enqueue_due_retries(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_namespaces text[];
    v_tasks uuid[];
BEGIN
    WITH due AS (
        SELECT s.id FROM orcastra.steps s
        WHERE s.state = 'waiting_for_retry' AND s.visible_at <= now()
        ORDER BY s.visible_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    ), retried AS (
        UPDATE orcastra.steps s SET state = 'enqueued', state_reason = 'retry due', enqueued_at = now()
        FROM due WHERE s.id = due.id
        RETURNING s.namespace, s.task_id
    )
    SELECT array_agg(namespace), coalesce(array_agg(DISTINCT task_id), '{}') INTO v_namespaces, v_tasks FROM retried;
    IF cardinality(v_tasks) = 0 THEN RETURN 0; END IF;
    PERFORM orcastra.settle_tasks(v_tasks);
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN cardinality(v_namespaces);
END
$$;

-- Steps whose worker stopped heartbeating (it died, or lost the database): the lost attempt is
-- recorded, and the step goes back in line, or into error if that was its last attempt — or is
-- cancelled if its task was cancelled meanwhile (it must not run again).
CREATE FUNCTION orcastra.recover_expired_leases(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_namespaces text[];
    v_tasks uuid[];
    v_count integer;
BEGIN
    WITH expired AS (
        SELECT s.id, t.state = 'cancelled' AS task_cancelled
        FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
        WHERE s.state = 'in_progress' AND s.lease_expires_at < clock_timestamp()
        ORDER BY s.lease_expires_at LIMIT p_limit FOR UPDATE OF s SKIP LOCKED
    ), recovered AS (
        UPDATE orcastra.steps s
        SET state = CASE WHEN expired.task_cancelled THEN 'cancelled'
                         WHEN s.attempts < s.max_attempts THEN 'enqueued' ELSE 'error' END,
            state_reason = CASE WHEN expired.task_cancelled
                                THEN 'lease expired after its task was cancelled (worker ' || coalesce(s.lease_owner, '?') || ')'
                                ELSE 'lease expired: attempt ' || s.attempts || ' lost (worker ' || coalesce(s.lease_owner, '?') || ')' END,
            last_error = 'attempt ' || s.attempts || ' lost: the worker ' || coalesce(s.lease_owner, '?') || ' stopped heartbeating',
            enqueued_at = now(), lease_token = NULL, lease_expires_at = NULL,
            finished_at = CASE WHEN expired.task_cancelled OR s.attempts >= s.max_attempts THEN now() END
        FROM expired WHERE s.id = expired.id
        RETURNING s.namespace, s.task_id, s.state
    )
    SELECT array_agg(namespace) FILTER (WHERE state = 'enqueued'), coalesce(array_agg(DISTINCT task_id), '{}'), count(*)
    INTO v_namespaces, v_tasks, v_count FROM recovered;
    IF v_count = 0 THEN RETURN 0; END IF;
    PERFORM orcastra.settle_tasks(v_tasks);
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN v_count;
END
$$;

-- A safety net: live tasks with nothing live left are settled (normally the last completion does it).
CREATE FUNCTION orcastra.settle_stalled_tasks(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_tasks uuid[];
BEGIN
    SELECT coalesce(array_agg(t.id), '{}') INTO v_tasks FROM (
        SELECT t.id FROM orcastra.tasks t
        WHERE t.state IN ('in_progress', 'waiting_for_retry')
          AND NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.task_id = t.id AND s.state IN ('enqueued', 'in_progress'))
        LIMIT p_limit FOR UPDATE SKIP LOCKED
    ) t;
    RETURN (SELECT count(*) FROM orcastra.settle_tasks(v_tasks));
END
$$;

-- When the next chore falls due: the earliest retry, lease expiry or scheduled start.
CREATE FUNCTION orcastra.next_due() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT least(
        (SELECT min(visible_at) FROM orcastra.steps WHERE state = 'waiting_for_retry'),
        (SELECT min(lease_expires_at) FROM orcastra.steps WHERE state = 'in_progress'),
        (SELECT min(run_at) FROM orcastra.tasks WHERE state = 'pending'));
$$;

-- Operator actions ------------------------------------------------------------------------------------

-- Cancels a task: steps not yet running are cancelled now; running ones when their worker next
-- heartbeats or reports (their outcome is then ignored). Returns the task's state afterwards, or
-- NULL when there is no such task.
CREATE FUNCTION orcastra.cancel_task(p_task uuid, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
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
    RETURN 'cancelled';
END
$$;

-- Gives a step in error its retry budget again and puts it back in line; its task resumes.
-- Returns the step's state afterwards, or NULL when there is no such step.
CREATE FUNCTION orcastra.retry_step(p_step bigint, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_step record;
BEGIN
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state <> 'error' THEN
        RAISE EXCEPTION 'step % is %, not error: only a failed step can be retried', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    IF EXISTS (SELECT 1 FROM orcastra.tasks t WHERE t.id = v_step.task_id AND t.state = 'cancelled') THEN
        RAISE EXCEPTION 'step % belongs to a cancelled task', p_step USING ERRCODE = 'OR002';
    END IF;
    UPDATE orcastra.steps s
    SET state = 'enqueued', state_reason = p_reason, enqueued_at = now(), finished_at = NULL,
        max_attempts = s.attempts + s.max_attempts
    WHERE s.id = p_step;
    PERFORM orcastra.settle_tasks(ARRAY[v_step.task_id]);
    PERFORM orcastra.notify_namespaces(ARRAY[v_step.namespace]);
    RETURN 'enqueued';
END
$$;

-- Resolves a step by hand with the given result: its children run as if it had completed.
CREATE FUNCTION orcastra.resolve_step(p_step bigint, p_result jsonb, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_step record;
    v_released record;
BEGIN
    SELECT s.* INTO v_step FROM orcastra.steps s WHERE s.id = p_step FOR UPDATE;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF v_step.state NOT IN ('error', 'pending', 'waiting_for_retry') THEN
        RAISE EXCEPTION 'step % is %: only a failed, waiting or pending step can be resolved by hand', p_step, v_step.state
            USING ERRCODE = 'OR002';
    END IF;
    UPDATE orcastra.steps s SET state = 'resolved_manually', state_reason = p_reason, finished_at = now()
    WHERE s.id = p_step;
    INSERT INTO orcastra.step_results (step_id, result) VALUES (p_step, p_result)
    ON CONFLICT (step_id) DO UPDATE SET result = EXCLUDED.result, written_at = now();
    SELECT * INTO v_released FROM orcastra.release_children(ARRAY[p_step]);
    PERFORM orcastra.settle_tasks(ARRAY[v_step.task_id]);
    PERFORM orcastra.notify_namespaces(v_released.namespaces);
    RETURN 'resolved_manually';
END
$$;

-- Plans ---------------------------------------------------------------------------------------------
-- claim_steps' LIMIT is a parameter: a generic plan guesses it at 10% of the table, and under load
-- that plan hash-joined all of steps and tasks (hundreds of ms per claim). Planning each claim with
-- its real limit keeps it on the partial index whatever the history holds. The other functions
-- take small arrays of ids, for which the generic plans already use the primary keys; planning
-- them on every call cost about a millisecond per step on the 4-step latency, so they keep the
-- default.
ALTER FUNCTION orcastra.claim_steps(text, text, integer, integer) SET plan_cache_mode = force_custom_plan;
