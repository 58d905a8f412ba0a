-- What follows a step's outcome: children released, tasks settled.
--
-- Lock order, everywhere (docs/worker-protocol.md): steps by ascending id, then tasks by ascending
-- id. Callers of these functions already hold the locks on every step they touch, so that the
-- order holds for the whole transaction, including the multi-statement pipelines of workers.

-- Counts the completion of parents `p_parents` down on their children and enqueues the children
-- that have no unfinished parent left. The caller holds the children's row locks. Returns the
-- namespaces that got work and the tasks that did.
CREATE OR REPLACE FUNCTION orcastra.release_children(p_parents bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
BEGIN
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
-- Locks the tasks in ascending id order; call it after every step lock of the transaction.
-- A task that finishes frees its concurrency slot: the next task of its key in line starts in this
-- same transaction (functions/limits.sql).
CREATE OR REPLACE FUNCTION orcastra.settle_tasks(p_tasks uuid[])
RETURNS TABLE (task_id uuid, state text)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    v_states text[];
    v_freed uuid[];
BEGIN
    IF cardinality(p_tasks) = 0 THEN RETURN; END IF;
    -- Serialize with every other settler of these tasks; the counts below then see their commits.
    PERFORM 1 FROM orcastra.tasks t WHERE t.id = ANY (p_tasks) ORDER BY t.id FOR UPDATE;
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
    , settled AS (
    UPDATE orcastra.tasks t
    SET state = d.next_state,
        state_reason = CASE d.next_state
            WHEN 'complete' THEN 'all steps complete'
            WHEN 'error' THEN d.failed || CASE WHEN d.failed = 1 THEN ' step failed' ELSE ' steps failed' END || '; nothing else can run'
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
    RETURNING t.id, t.state, t.concurrency_key
    )
    SELECT array_agg(u.id), array_agg(u.state),
           array_agg(u.id) FILTER (WHERE u.concurrency_key IS NOT NULL AND u.state IN ('complete', 'error'))
    INTO v_ids, v_states, v_freed FROM settled u;
    IF v_freed IS NOT NULL THEN PERFORM orcastra.admit_waiting_tasks(v_freed); END IF;
    RETURN QUERY SELECT * FROM unnest(coalesce(v_ids, '{}'), coalesce(v_states, '{}'));
END
$$;
