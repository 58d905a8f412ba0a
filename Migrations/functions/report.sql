-- Reporting outcomes: a worker records what its attempts did, with the lease token of each.
--
-- report_steps takes successes and failures together, so one call (one lock pass, one settle)
-- serves a whole batch: steps by ascending id first — the reported steps and every child a success
-- may release — then tasks by ascending id. complete_steps and fail_steps are the same call for
-- one kind of outcome, kept for workers in other languages (docs/worker-protocol.md).

-- 0002 declared the retry delay as integer milliseconds (at most 24.8 days); it is bigint now.
DROP FUNCTION IF EXISTS orcastra.fail_steps(bigint[], uuid[], text[], integer[]);
DROP FUNCTION IF EXISTS orcastra.cancel_orphaned(bigint[], uuid[]);

-- Records the outcome of each attempt (p_ids[i] with lease token p_tokens[i]):
--   p_errors[i] IS NULL      success; p_results[i] is the step's result (jsonb)
--   p_errors[i] IS NOT NULL  failure; p_retry_after_ms[i] is the backoff the worker computed from
--                            the step's retry policy, or NULL for a permanent failure
-- Outcome per step: 'completed', 'waiting_for_retry', 'error', 'ignored' (its task was cancelled
-- meanwhile) or 'lease_lost' (the token no longer matches: the step was recovered and may run
-- elsewhere, or it finished). task_state is set for tasks that changed state because of the batch.
-- A step listed twice counts once: the entry whose token is the step's current one (of several
-- such entries the last; a success before a failure). Error texts keep their last 65,536 characters.
CREATE OR REPLACE FUNCTION orcastra.report_steps(p_ids bigint[], p_tokens uuid[], p_results jsonb[],
                                                p_errors text[], p_retry_after_ms bigint[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
    v_ignored bigint[];
    v_done bigint[];
    v_done_tasks uuid[];
    v_failed bigint[];
    v_failed_tasks uuid[];
    v_retrying boolean;
    v_errored bigint[];
    v_after_failures record;
    v_released record;
    v_any_cancelled boolean;
    v_has_children boolean;
    v_has_successes boolean := cardinality(array_remove(p_errors, NULL)) < cardinality(p_ids);
    v_has_failures boolean := cardinality(array_remove(p_errors, NULL)) > 0;
    -- A claim follows in this transaction (report_steps_then_claim): the wake-ups for the steps
    -- this report enqueues are left to it (send_deferred_wakeups), which sends only those still
    -- needed once it has claimed.
    v_defer boolean := current_setting('orcastra.claim_follows', true) = 'on';
BEGIN
    -- Lock, and learn on the way whether a reported step's task was cancelled (rare: the check
    -- below runs only then). A union of ids, not `id = ANY (…) OR id IN (…)`: that form is
    -- planned as a sequential scan.
    -- And whether a success has a child at all: a task's last steps have none, and then
    -- release_children (two statements) is not called. An init plan, run once.
    -- Children by step_links (0019): a fan-out instance's child is its group. Asked by parent ids
    -- (= ANY), never joined: a join condition does not reach inside the view's second branch,
    -- which then read every fan-out instance.
    SELECT coalesce(bool_or(t.state = 'cancelled'), false),
           EXISTS (SELECT 1 FROM orcastra.step_links e
                   WHERE e.parent_id = ANY (CASE WHEN v_has_failures
                                                 THEN ARRAY(SELECT i.id FROM unnest(p_ids, p_errors) AS i(id, error) WHERE i.error IS NULL)
                                                 ELSE p_ids END))
    INTO v_any_cancelled, v_has_children
    FROM (SELECT s.id, s.task_id FROM orcastra.steps s
          WHERE s.id IN (SELECT unnest(p_ids)
                         UNION
                         -- A failure's children too: one with trigger all_done may become ready.
                         SELECT e.child_id FROM orcastra.step_links e WHERE e.parent_id = ANY (p_ids))
          ORDER BY s.id FOR UPDATE OF s) AS locked
    JOIN orcastra.tasks t ON t.id = locked.task_id;

    -- Attempts whose task was cancelled while they ran: cancelled, whatever they report.
    v_ignored := '{}';
    IF v_any_cancelled THEN
        WITH cancelled AS (
            UPDATE orcastra.steps s
            SET state = 'cancelled', state_reason = 'task cancelled while running', finished_at = now(),
                lease_token = NULL, lease_expires_at = NULL
            FROM unnest(p_ids, p_tokens) AS i(id, token), orcastra.tasks t
            WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
              AND t.id = s.task_id AND t.state = 'cancelled'
            RETURNING s.id
        )
        SELECT coalesce(array_agg(c.id), '{}') INTO v_ignored FROM cancelled c;
    END IF;

    v_done := '{}'; v_done_tasks := '{}';
    IF v_has_successes THEN
        WITH input AS (
            SELECT DISTINCT ON (i.id) i.id, coalesce(i.result, 'null'::jsonb) AS result
            FROM unnest(p_ids, p_tokens, p_results, p_errors) WITH ORDINALITY AS i(id, token, result, error, n)
            JOIN orcastra.steps s ON s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
            WHERE i.error IS NULL
            ORDER BY i.id, i.n DESC
        ), done AS (
            UPDATE orcastra.steps s
            SET state = 'complete', state_reason = 'completed', finished_at = now(), lease_token = NULL,
                lease_expires_at = NULL, last_error = NULL
            FROM input i
            WHERE s.id = i.id
            RETURNING s.id, s.task_id
        ), stored AS (
            -- No ON CONFLICT: a step that ran has no result row yet. Only a move into complete or
            -- resolved_manually writes one, both final, and a step got here from in_progress. (The
            -- speculative insertion of ON CONFLICT wrote one more WAL record per step.)
            INSERT INTO orcastra.step_results (step_id, result)
            SELECT d.id, i.result FROM done d JOIN input i ON i.id = d.id
        )
        SELECT coalesce(array_agg(d.id), '{}'), coalesce(array_agg(DISTINCT d.task_id), '{}')
        INTO v_done, v_done_tasks FROM done d;
    END IF;

    v_failed := '{}'; v_failed_tasks := '{}'; v_retrying := false;
    IF v_has_failures THEN
        WITH input AS (
            SELECT DISTINCT ON (i.id) i.id, i.error, i.retry_after_ms
            FROM unnest(p_ids, p_tokens, p_errors, p_retry_after_ms) WITH ORDINALITY AS i(id, token, error, retry_after_ms, n)
            JOIN orcastra.steps s ON s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress'
            WHERE i.error IS NOT NULL
            ORDER BY i.id, i.n DESC
        ), failed AS (
            UPDATE orcastra.steps s
            SET state = CASE WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN 'waiting_for_retry' ELSE 'error' END,
                state_reason = CASE
                    WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN 'attempt ' || s.attempts || ' failed; retrying'
                    WHEN i.retry_after_ms IS NULL THEN 'permanent failure'
                    ELSE 'attempts exhausted (' || s.attempts || ' of ' || s.max_attempts || ')' END,
                visible_at = CASE WHEN i.retry_after_ms IS NOT NULL
                                  THEN now() + greatest(i.retry_after_ms, 0) * interval '1 millisecond' ELSE s.visible_at END,
                finished_at = CASE WHEN i.retry_after_ms IS NOT NULL AND s.attempts < s.max_attempts THEN NULL ELSE now() END,
                last_error = right(i.error, 65536), lease_token = NULL, lease_expires_at = NULL
            FROM input i
            WHERE s.id = i.id
            RETURNING s.id, s.task_id, s.state
        )
        SELECT coalesce(array_agg(f.id), '{}'), coalesce(array_agg(DISTINCT f.task_id), '{}'),
               coalesce(bool_or(f.state = 'waiting_for_retry'), false),
               array_agg(f.id ORDER BY f.id) FILTER (WHERE f.state = 'error')
        INTO v_failed, v_failed_tasks, v_retrying, v_errored FROM failed f;
        -- Children with trigger all_done run once every parent finished, failed ones included.
        IF v_errored IS NOT NULL THEN
            SELECT * INTO v_after_failures FROM orcastra.release_after_failures(v_errored);
            IF cardinality(v_after_failures.namespaces) > 0 THEN
                IF v_defer THEN PERFORM orcastra.defer_wakeups(v_after_failures.namespaces);
                ELSE PERFORM orcastra.notify_namespaces(v_after_failures.namespaces); END IF;
            END IF;
        END IF;
    END IF;

    IF cardinality(v_done) > 0 AND v_has_children THEN
        SELECT * INTO v_released FROM orcastra.release_children(v_done);
        -- notify_namespaces' own statement, inline: one statement fewer per step that releases a
        -- child (release_children returns each namespace once).
        IF cardinality(v_released.namespaces) = 0 THEN
            NULL;
        ELSIF v_defer THEN
            PERFORM orcastra.defer_wakeups(v_released.namespaces);
        ELSE
            PERFORM orcastra.post_notification(orcastra.namespace_channel(n.namespace), '') FROM unnest(v_released.namespaces) AS n(namespace);
        END IF;
    ELSE
        SELECT '{}'::text[] AS namespaces, '{}'::uuid[] AS tasks INTO v_released;
    END IF;
    -- Orchestrators sleep until the next due retry; tell them there is a new one.
    IF v_retrying THEN PERFORM orcastra.post_notification('orcastra_orchestrator', 'retry'); END IF;

    RETURN QUERY
    WITH settled AS (
        -- A task where these completions released a child is still running; any other may have finished.
        SELECT * FROM orcastra.settle_tasks(ARRAY(
            (SELECT unnest(v_done_tasks) EXCEPT SELECT unnest(v_released.tasks)) UNION SELECT unnest(v_failed_tasks)))
    )
    SELECT i.id,
           CASE WHEN i.id = ANY (v_done) THEN 'completed'
                WHEN i.id = ANY (v_failed) THEN s.state
                WHEN i.id = ANY (v_ignored) THEN 'ignored'
                ELSE 'lease_lost' END,
           s.task_id,
           (SELECT x.state FROM settled x WHERE x.task_id = s.task_id)
    FROM (SELECT DISTINCT unnest(p_ids) AS id) AS i JOIN orcastra.steps s ON s.id = i.id
    ORDER BY i.id;
END
$$;

-- report_steps for a worker that claims with claim_steps next, in the same transaction (its
-- report-and-refill pipeline): the namespaces that got work are not notified here but left to that
-- claim (send_deferred_wakeups, claim.sql), which notifies a namespace only if work is still queued
-- there once it has claimed — a step this report enqueued and the same transaction claimed needs
-- no wake-up. Most reports of a busy worker then commit without a NOTIFY, and PostgreSQL
-- serializes the commits of transactions that notified (issue 12: the bound on latency under
-- load). Not for a report that no claim follows: its wake-ups would be lost.
-- The transaction's other notifications (task events, retries) are collected too
-- (orcastra.notify_after_commit, channels.sql): the caller's pipeline ends with
-- take_notifications(), and sends what it returns with send_notifications() once committed.
CREATE OR REPLACE FUNCTION orcastra.report_steps_then_claim(p_ids bigint[], p_tokens uuid[], p_results jsonb[],
                                                            p_errors text[], p_retry_after_ms bigint[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
BEGIN
    PERFORM set_config('orcastra.claim_follows', 'on', true);
    PERFORM set_config('orcastra.notify_after_commit', 'on', true);
    RETURN QUERY SELECT * FROM orcastra.report_steps(p_ids, p_tokens, p_results, p_errors, p_retry_after_ms);
    PERFORM set_config('orcastra.claim_follows', '', true);
END
$$;

-- Records results only: report_steps with every entry a success.
CREATE OR REPLACE FUNCTION orcastra.complete_steps(p_ids bigint[], p_tokens uuid[], p_results jsonb[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT * FROM orcastra.report_steps(p_ids, p_tokens, p_results,
                                        array_fill(NULL::text, ARRAY[cardinality(p_ids)]),
                                        array_fill(NULL::bigint, ARRAY[cardinality(p_ids)]));
$$;

-- Records failed attempts only: report_steps with every entry a failure. p_retry_after_ms[i] NULL
-- means permanent.
CREATE OR REPLACE FUNCTION orcastra.fail_steps(p_ids bigint[], p_tokens uuid[], p_errors text[], p_retry_after_ms bigint[])
RETURNS TABLE (step_id bigint, outcome text, task_id uuid, task_state text)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT * FROM orcastra.report_steps(p_ids, p_tokens, array_fill(NULL::jsonb, ARRAY[cardinality(p_ids)]),
                                        ARRAY(SELECT coalesce(e.error, 'failed') FROM unnest(p_errors) WITH ORDINALITY AS e(error, n) ORDER BY e.n),
                                        p_retry_after_ms);
$$;

-- A worker shutting down hands back steps it could not finish: they go back in line at once, and
-- the unfinished attempt does not count against the step's retries — unless their task was
-- cancelled meanwhile: then they are cancelled and never run again.
CREATE OR REPLACE FUNCTION orcastra.release_steps(p_ids bigint[], p_tokens uuid[])
RETURNS TABLE (step_id bigint)
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_namespaces text[];
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.id = ANY (p_ids) ORDER BY s.id FOR UPDATE;
    RETURN QUERY
    WITH released AS (
        UPDATE orcastra.steps s
        SET state = CASE WHEN t.state = 'cancelled' THEN 'cancelled' ELSE 'enqueued' END,
            state_reason = CASE WHEN t.state = 'cancelled' THEN 'handed back after its task was cancelled'
                                ELSE 'handed back by a worker shutting down' END,
            attempts = s.attempts - 1,
            finished_at = CASE WHEN t.state = 'cancelled' THEN now() END,
            lease_token = NULL, lease_expires_at = NULL, enqueued_at = now()
        FROM unnest(p_ids, p_tokens) AS i(id, token), orcastra.tasks t
        WHERE s.id = i.id AND s.lease_token = i.token AND s.state = 'in_progress' AND t.id = s.task_id
        RETURNING s.id, s.namespace, s.state
    ), woken AS (
        SELECT orcastra.notify_namespaces(array_agg(r.namespace) FILTER (WHERE r.state = 'enqueued')) FROM released r
    )
    SELECT r.id FROM released r, woken;
END
$$;

-- Completes one step inside the caller's own transaction — a handler's transaction that wrote
-- the step's effects (docs/transactions.md) — or makes that transaction fail: report_steps for
-- this step alone, and unless it answered 'completed', raises OR005 (DETAIL: that answer,
-- 'lease_lost' or 'ignored'). The caller's COMMIT then rolls back, so the handler's writes never
-- commit without the step's completion, whatever the caller does with the error. After an
-- 'ignored' the caller should report the step once more in a new transaction (any outcome; it
-- becomes 'cancelled'), or the step waits for a heartbeat or its lease's expiry to be cancelled.
-- Locks as report_steps does: the step and the children it may release by ascending id, then
-- tasks. Call it last in the transaction, right before COMMIT: it holds the step's row lock until
-- then, and the worker's heartbeats for the step wait for it.
CREATE OR REPLACE FUNCTION orcastra.complete_step_in_transaction(p_id bigint, p_token uuid, p_result jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
DECLARE
    v_outcome text;
BEGIN
    SELECT r.outcome INTO v_outcome
    FROM orcastra.report_steps(ARRAY[p_id], ARRAY[p_token], ARRAY[coalesce(p_result, 'null'::jsonb)],
                               ARRAY[NULL::text], ARRAY[NULL::bigint]) AS r;
    IF v_outcome IS DISTINCT FROM 'completed' THEN
        RAISE EXCEPTION 'step % was not completed (%): this transaction must roll back', p_id, coalesce(v_outcome, 'no such step')
            USING ERRCODE = 'OR005', DETAIL = coalesce(v_outcome, 'lease_lost'),
                  HINT = 'lease_lost: the step was recovered and may run elsewhere; ignored: its task was cancelled';
    END IF;
    RETURN v_outcome;
END
$$;
