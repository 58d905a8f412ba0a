-- What follows a step's outcome: children released, tasks settled.
--
-- Lock order, everywhere (docs/worker-protocol.md): steps by ascending id, then tasks by ascending
-- id. Callers of these functions already hold the locks on every step they touch, so that the
-- order holds for the whole transaction, including the multi-statement pipelines of workers.

-- Counts the completion of parents `p_parents` down on their children and enqueues the children
-- that have no unfinished parent left. The caller holds the children's row locks. Returns the
-- namespaces that got work and the tasks that did.
--
-- A plain child (no `when:`, default trigger, no skipped parent) is enqueued by the one UPDATE
-- below, as before conditions existed. Any other child that may have become ready goes to
-- decide_steps, which evaluates its trigger and condition and enqueues or skips it (and skips on
-- down the graph). A child with trigger one_success may run from its first completed parent; one
-- with all_done is looked at on every release (decide_steps checks that every parent finished).
CREATE OR REPLACE FUNCTION orcastra.release_children(p_parents bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_undecided bigint[];
    v_idle_groups bigint[];
    v_decided record;
BEGIN
    -- Children by step_links (0019): a fan-out instance's child is its group.
    WITH finished_parents AS (
        SELECT e.child_id, count(*)::int AS n
        FROM orcastra.step_links e WHERE e.parent_id = ANY (p_parents)
        GROUP BY e.child_id
    ), released AS (
        UPDATE orcastra.steps c
        SET pending_parents = c.pending_parents - f.n,
            state = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL
                              AND c.when_condition IS NULL AND c.skipped_parents = 0 AND c.for_each IS NULL AND c.workflow IS NULL THEN 'enqueued' ELSE c.state END,
            state_reason = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL
                                     AND c.when_condition IS NULL AND c.skipped_parents = 0 AND c.for_each IS NULL AND c.workflow IS NULL THEN 'parents complete' ELSE c.state_reason END,
            enqueued_at = CASE WHEN c.state = 'pending' AND c.pending_parents - f.n = 0 AND c.trigger_rule IS NULL
                                    AND c.when_condition IS NULL AND c.skipped_parents = 0 AND c.for_each IS NULL AND c.workflow IS NULL THEN now() ELSE c.enqueued_at END
        FROM finished_parents f
        WHERE c.id = f.child_id
        RETURNING c.id, c.namespace, c.task_id, c.state, c.instances, c.pending_parents,
                  c.state = 'pending' AND (c.pending_parents = 0 OR c.trigger_rule IN ('one_success', 'all_done')
                                           OR c.max_parallel IS NOT NULL) AS undecided,
                  -- A fan-out step still waiting for an instance that is queued or running: its
                  -- task is busy, so the caller need not settle it (settling counts every step of
                  -- the task: with 10,000 instances, once per report, that was most of the time).
                  -- Asked of the live tables (0012), which hold only queued and running steps: read
                  -- through steps, the search walked the group's finished instances first, in
                  -- index order, so each report of a fan-out of N visited up to N rows.
                  CASE WHEN c.instances IS NOT NULL AND c.state = 'pending' AND c.pending_parents > 0
                       THEN EXISTS (SELECT 1 FROM orcastra.step_queue q WHERE q.fanout_of = c.id)
                            OR EXISTS (SELECT 1 FROM orcastra.step_leases l WHERE l.fanout_of = c.id)
                       ELSE false END AS busy_group
    )
    SELECT coalesce(array_agg(DISTINCT namespace) FILTER (WHERE state = 'enqueued'), '{}'),
           coalesce(array_agg(DISTINCT task_id) FILTER (WHERE state = 'enqueued' OR busy_group), '{}'),
           array_agg(id ORDER BY id) FILTER (WHERE undecided),
           -- A fan-out with an unfinished instance but none queued or running: maybe every other
           -- instance finished and one failed for good (fail_fanouts, after any top-up below).
           array_agg(id ORDER BY id) FILTER (WHERE instances IS NOT NULL AND state = 'pending' AND pending_parents > 0 AND NOT busy_group)
    INTO namespaces, tasks, v_undecided, v_idle_groups
    FROM released;
    IF v_undecided IS NOT NULL THEN
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_undecided);
        namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_decided.namespaces));
        tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_decided.tasks));
    END IF;
    IF v_idle_groups IS NOT NULL THEN
        v_idle_groups := orcastra.fail_fanouts(v_idle_groups);
        IF cardinality(v_idle_groups) > 0 THEN
            SELECT * INTO v_decided FROM orcastra.release_after_failures(v_idle_groups);
            namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_decided.namespaces));
            tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_decided.tasks));
        END IF;
    END IF;
END
$$;

-- Counts skipped parents `p_parents` down on their children (pending_parents, skipped_parents) and
-- decides the children that may have become ready. Locks the children by ascending id first (see
-- decide_steps on lock order). Returns what release_children returns.
CREATE OR REPLACE FUNCTION orcastra.skip_children(p_parents bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_undecided bigint[];
    v_decided record;
BEGIN
    namespaces := '{}'; tasks := '{}';
    PERFORM 1 FROM orcastra.steps s
    WHERE s.id IN (SELECT e.child_id FROM orcastra.step_links e WHERE e.parent_id = ANY (p_parents))
    ORDER BY s.id FOR UPDATE;
    WITH skipped_parents AS (
        SELECT e.child_id, count(*)::int AS n
        FROM orcastra.step_links e WHERE e.parent_id = ANY (p_parents)
        GROUP BY e.child_id
    ), counted AS (
        UPDATE orcastra.steps c
        SET pending_parents = c.pending_parents - f.n, skipped_parents = c.skipped_parents + f.n
        FROM skipped_parents f
        WHERE c.id = f.child_id
        RETURNING c.id, c.state = 'pending' AND (c.pending_parents = 0 OR c.trigger_rule = 'all_done' OR c.max_parallel IS NOT NULL) AS undecided
    )
    SELECT array_agg(id ORDER BY id) FILTER (WHERE undecided) INTO v_undecided FROM counted;
    IF v_undecided IS NOT NULL THEN
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_undecided);
        namespaces := v_decided.namespaces;
        tasks := v_decided.tasks;
    END IF;
END
$$;

-- Decides the pending steps `p_ids` (the caller holds their row locks) that may be ready:
--   ready when, by trigger_rule:
--     all_success (NULL), none_failed   no parent unfinished (pending_parents = 0)
--     one_success                       a parent complete or resolved, or no parent unfinished
--     all_done                          every parent complete, resolved, skipped or in error
--   a ready step is skipped when
--     all_success and a parent was skipped (skipping propagates down by default);
--     one_success and no parent completed (every parent skipped);
--     its `when:` is not true: jsonb_path_match over {"context": …, "parents": {name: result}} —
--     the document its handler would receive (a skipped parent's result is null); a path that
--     yields no single boolean (a missing field, a type error) counts as not true;
--   otherwise it is enqueued. A step not ready stays pending.
-- Skipped steps count down on their own children (skip_children), so a skip travels down the
-- graph in this transaction. Those children are locked (ascending id) after the steps the caller
-- locked: a cascade may take locks out of the global order. PostgreSQL detects the deadlock this
-- could cause between two cascades into the same steps and aborts one transaction, which its caller
-- retries; plain DAGs never cascade. Returns the namespaces that got work and the tasks that did.
CREATE OR REPLACE FUNCTION orcastra.decide_steps(p_ids bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_skipped bigint[];
    v_fan_out bigint[];
    v_groups bigint[];
    v_workflows bigint[];
    v_failed bigint[];
    v_more record;
BEGIN
    namespaces := '{}'; tasks := '{}';
    -- Fan-out steps already fanned out: completed, or topped up under max_parallel (fanout.sql).
    SELECT array_agg(s.id ORDER BY s.id) INTO v_groups FROM orcastra.steps s
    WHERE s.id = ANY (p_ids) AND s.state = 'pending' AND s.instances IS NOT NULL;
    IF v_groups IS NOT NULL THEN
        SELECT * INTO v_more FROM orcastra.advance_fanouts(v_groups);
        namespaces := v_more.namespaces; tasks := v_more.tasks;
    END IF;

    WITH candidates AS (
        SELECT s.id, s.trigger_rule, s.when_condition, s.skipped_parents, s.task_id, s.for_each, s.workflow,
               CASE WHEN s.trigger_rule IN ('one_success', 'all_done') THEN
                   (SELECT count(*) FILTER (WHERE p.state IN ('complete', 'resolved_manually'))
                    FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id WHERE e.child_id = s.id) END AS succeeded,
               CASE WHEN s.trigger_rule = 'all_done' THEN
                   (SELECT count(*) FILTER (WHERE p.state NOT IN ('complete', 'resolved_manually', 'skipped', 'error'))
                    FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id WHERE e.child_id = s.id)
                    ELSE s.pending_parents END AS open
        FROM orcastra.steps s
        WHERE s.id = ANY (p_ids) AND s.state = 'pending' AND s.instances IS NULL
    ), ready AS (
        SELECT c.*
        FROM candidates c
        WHERE c.open = 0 OR (c.trigger_rule = 'one_success' AND c.succeeded > 0)
    ), verdicts AS (
        SELECT r.id,
               CASE WHEN r.trigger_rule IS NULL AND r.skipped_parents > 0
                        THEN 'skipped: a parent was skipped (trigger all_success)'
                    WHEN r.trigger_rule = 'one_success' AND r.succeeded = 0
                        THEN 'skipped: no parent succeeded (trigger one_success)'
                    WHEN r.when_condition IS NOT NULL AND NOT coalesce(jsonb_path_match(
                            jsonb_build_object('context', t.context, 'parents', coalesce(
                                (SELECT jsonb_object_agg(p.name, coalesce(res.result, 'null'::jsonb))
                                 FROM orcastra.step_edges e
                                 JOIN orcastra.steps p ON p.id = e.parent_id
                                 LEFT JOIN orcastra.step_results res ON res.step_id = p.id
                                 WHERE e.child_id = r.id), '{}'::jsonb)),
                            r.when_condition, '{}'::jsonb, true), false)
                        THEN 'skipped: when is not true'
               END AS skip_reason,
               CASE WHEN r.for_each IS NOT NULL THEN 'fanning out'
                    WHEN r.workflow IS NOT NULL THEN 'starting its sub-workflow'
                    WHEN r.when_condition IS NOT NULL THEN 'when is true'
                    WHEN r.trigger_rule IS NOT NULL THEN 'parents done (trigger ' || r.trigger_rule || ')'
                    ELSE 'parents complete' END AS run_reason
        FROM ready r JOIN orcastra.tasks t ON t.id = r.task_id
    ), decided AS (
        UPDATE orcastra.steps s
        -- A fan-out step that may run stays pending: fan_out makes its instances; so does a
        -- workflow step: start_subworkflows makes its child task.
        SET state = CASE WHEN v.skip_reason IS NOT NULL THEN 'skipped'
                         WHEN s.for_each IS NOT NULL OR s.workflow IS NOT NULL THEN 'pending' ELSE 'enqueued' END,
            state_reason = coalesce(v.skip_reason, v.run_reason),
            enqueued_at = CASE WHEN v.skip_reason IS NULL AND s.for_each IS NULL AND s.workflow IS NULL THEN now() ELSE s.enqueued_at END,
            finished_at = CASE WHEN v.skip_reason IS NULL THEN s.finished_at ELSE now() END
        FROM verdicts v
        WHERE s.id = v.id
        RETURNING s.id, s.namespace, s.task_id, s.state, s.workflow IS NOT NULL AS is_workflow
    )
    SELECT ARRAY(SELECT unnest(namespaces) UNION SELECT d.namespace FROM decided d WHERE d.state = 'enqueued'),
           ARRAY(SELECT unnest(tasks) UNION SELECT d.task_id FROM decided d WHERE d.state = 'enqueued'),
           array_agg(d.id ORDER BY d.id) FILTER (WHERE d.state = 'skipped'),
           array_agg(d.id ORDER BY d.id) FILTER (WHERE d.state = 'pending' AND NOT d.is_workflow),
           array_agg(d.id ORDER BY d.id) FILTER (WHERE d.state = 'pending' AND d.is_workflow)
    INTO namespaces, tasks, v_skipped, v_fan_out, v_workflows
    FROM decided d;
    -- Workflow steps start their child task now; one that started runs (its task is busy), one
    -- that could not is in error (its task settles like after a failure).
    IF v_workflows IS NOT NULL THEN
        tasks := ARRAY(SELECT unnest(tasks) UNION
                       SELECT s.task_id FROM orcastra.start_subworkflows(v_workflows) AS x JOIN orcastra.steps s ON s.id = x.step_id
                       WHERE x.error IS NULL);
    END IF;
    IF v_fan_out IS NOT NULL THEN
        SELECT * INTO v_more FROM orcastra.fan_out(v_fan_out);
        namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_more.namespaces));
        tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_more.tasks));
    END IF;
    -- A workflow step whose child could not start, a fan-out whose for_each yielded no list or too
    -- many items: failed here, so their all_done children may run.
    IF v_workflows IS NOT NULL OR v_fan_out IS NOT NULL THEN
        SELECT array_agg(s.id ORDER BY s.id) INTO v_failed FROM orcastra.steps s
        WHERE s.id IN (SELECT unnest(v_workflows) UNION SELECT unnest(v_fan_out)) AND s.state = 'error';
        IF v_failed IS NOT NULL THEN
            SELECT * INTO v_more FROM orcastra.release_after_failures(v_failed);
            namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_more.namespaces));
            tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_more.tasks));
        END IF;
    END IF;
    IF v_skipped IS NOT NULL THEN
        SELECT * INTO v_more FROM orcastra.skip_children(v_skipped);
        namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_more.namespaces));
        tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_more.tasks));
    END IF;
END
$$;

-- Steps that just failed for good (`p_failed`, in error): their pending children with trigger
-- all_done may now be ready (every parent finished, whatever its outcome). A failed instance of a
-- fan-out frees its max_parallel slot (held instances are topped up, as after a completion), and
-- when it leaves its fan-out with no instance left to run, the fan-out fails (fail_fanouts) and
-- its own all_done children are looked at too. The caller holds the failed steps' children's row
-- locks (a failed instance's child is its group); a failed fan-out's children are locked here,
-- ascending, after them (as a fan-in's are when the fan-out completes). Returns what
-- release_children returns.
CREATE OR REPLACE FUNCTION orcastra.release_after_failures(p_failed bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_groups bigint[];
    v_failed_groups bigint[] := '{}';
    v_children bigint[];
    v_decided record;
BEGIN
    namespaces := '{}'; tasks := '{}';
    SELECT array_agg(DISTINCT i.fanout_of) INTO v_groups
    FROM orcastra.steps i WHERE i.id = ANY (p_failed) AND i.fanout_of IS NOT NULL;
    IF v_groups IS NOT NULL THEN
        SELECT * INTO v_decided FROM orcastra.advance_fanouts(v_groups);
        namespaces := v_decided.namespaces; tasks := v_decided.tasks;
        v_failed_groups := orcastra.fail_fanouts(v_groups);
    END IF;
    SELECT array_agg(DISTINCT c.id) INTO v_children
    FROM orcastra.step_links e JOIN orcastra.steps c ON c.id = e.child_id
    WHERE e.parent_id = ANY (p_failed || v_failed_groups) AND c.state = 'pending' AND c.trigger_rule = 'all_done';
    IF v_children IS NOT NULL THEN
        PERFORM 1 FROM orcastra.steps c WHERE c.id = ANY (v_children) ORDER BY c.id FOR UPDATE;
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_children);
        namespaces := ARRAY(SELECT unnest(namespaces) UNION SELECT unnest(v_decided.namespaces));
        tasks := ARRAY(SELECT unnest(tasks) UNION SELECT unnest(v_decided.tasks));
    END IF;
END
$$;

-- Moves each task in `p_tasks` that has no live step left to its final state: complete when every
-- step completed, was resolved by hand or was skipped, error when a step is in error. A task with a step
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
               count(*) FILTER (WHERE s.state NOT IN ('complete', 'resolved_manually', 'skipped')) AS unfinished
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
