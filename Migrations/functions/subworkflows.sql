-- Sub-workflows: `workflow: ns/name@version` steps (docs/templates.md, "Sub-workflows").
--
-- A workflow step is decided like any step (decide_steps in settle.sql: trigger, when). When it may
-- run, start_subworkflows creates its child task — a task of the referenced template whose context
-- is the step's input document ({"context": …, "parents": {…}}, what a handler would receive) — in
-- that same transaction, and the step goes pending → in_progress with no lease and no worker:
-- claim_steps never sees it (it is never enqueued), lease recovery never touches it (it has no
-- lease_expires_at). The child carries parent_step_id, parent_task_id and workflow_depth; the step
-- carries child_task_id.
--
-- When the child finishes, the step follows it: complete with the child's result (an object of the
-- results of the child's leaf steps — those no other step depends on — keyed by step name), or
-- error naming the child task (the child failed, or was cancelled on its own). That happens in a
-- transaction of its own, advance_subworkflows, run by the orchestrator's chores and woken at once by
-- a NOTIFY from the child's last state change: the transaction that finishes a child holds the
-- child's steps and task, and locking the parent's step (a lower id) or task there would break the
-- one lock order (steps by ascending id, then tasks by ascending id).
--
-- Cancelling a task cancels its live descendants in the same transaction (cancel_task,
-- operator.sql). A parent that stops waiting for its child any other way (its task timed out) has
-- the child cancelled by advance_subworkflows too.

-- The deepest a chain of workflow: steps may nest: the setting orcastra.workflow_depth_limit
-- (e.g. ALTER DATABASE … SET orcastra.workflow_depth_limit = 20), else 10.
CREATE OR REPLACE FUNCTION orcastra.workflow_depth_limit() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('orcastra.workflow_depth_limit', true), '')::integer, 10)
$$;

-- The template a `workflow:` reference takes now (`ns/name@version`: that version; `ns/name`:
-- orcastra.resolve_template's rule), or NULL when none is registered.
CREATE OR REPLACE FUNCTION orcastra.workflow_template(p_reference text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT orcastra.resolve_template(split_part(split_part(p_reference, '@', 1), '/', 1),
                                     split_part(split_part(p_reference, '@', 1), '/', 2),
                                     nullif(split_part(p_reference, '@', 2), ''))
$$;

-- Recursion through templates, checked when a template is registered (TemplateRegistry, in the
-- registering transaction): follows the `workflow:` references of template `p_template` (each as
-- it resolves now) and returns, for the first chain that comes back to the same namespace/name,
-- the step of `p_template` it starts from and the chain (`a/b@1.0.0 → c/d@2.0.0 → a/b@1.0.0`);
-- no row when there is none. Chains are followed as deep as workflow_depth_limit(): deeper, a
-- task would fail at that depth anyway.
CREATE OR REPLACE FUNCTION orcastra.workflow_cycle(p_template bigint) RETURNS TABLE (step_name text, chain text)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE root AS (
        SELECT t.id, t.namespace, t.name, t.namespace || '/' || t.name || '@' || t.version AS label
        FROM orcastra.templates t WHERE t.id = p_template
    ), walk (template_id, first_step, chain, depth) AS (
        SELECT orcastra.workflow_template(d.step->>'workflow'), d.step->>'name', r.label, 1
        FROM root r JOIN orcastra.templates t ON t.id = r.id, jsonb_array_elements(t.definition->'steps') AS d(step)
        WHERE d.step ? 'workflow'
        UNION ALL
        SELECT orcastra.workflow_template(d.step->>'workflow'), w.first_step,
               w.chain || ' → ' || t.namespace || '/' || t.name || '@' || t.version, w.depth + 1
        FROM walk w JOIN orcastra.templates t ON t.id = w.template_id, jsonb_array_elements(t.definition->'steps') AS d(step)
        WHERE d.step ? 'workflow' AND w.depth < orcastra.workflow_depth_limit()
          AND NOT EXISTS (SELECT 1 FROM root r WHERE r.namespace = t.namespace AND r.name = t.name)
    )
    SELECT w.first_step, w.chain || ' → ' || t.namespace || '/' || t.name || '@' || t.version
    FROM walk w JOIN orcastra.templates t ON t.id = w.template_id JOIN root r ON r.namespace = t.namespace AND r.name = t.name
    ORDER BY w.depth
    LIMIT 1
$$;

-- The result a finished child gives its workflow step: {leaf step name: its result} over the
-- child's steps that no other step depends on (fan-out instances never count: their group does).
-- A leaf without a result (skipped, cancelled) gives null.
CREATE OR REPLACE FUNCTION orcastra.subworkflow_result(p_task uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(s.name, coalesce(r.result, 'null'::jsonb)), '{}'::jsonb)
    FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
    WHERE s.task_id = p_task AND s.fanout_of IS NULL
      AND NOT EXISTS (SELECT 1 FROM orcastra.step_edges e WHERE e.parent_id = s.id)
$$;

-- Starts the workflow steps `p_ids` (pending and decided to run, or in error and retried by an
-- operator; the caller holds their row locks): one child task each. Returns one row per step: the
-- child task, or the error that kept it from starting — then the step is in error with that
-- sentence (a pending step; a step already in error is left for the caller, which refuses the
-- retry): the reference names no registered template, the chain would nest deeper than
-- workflow_depth_limit(), or create_task refused (a deprecated version, a missing concurrency key).
-- The step's timeout (`timeout:`, default 5m) becomes the child's timeout when shorter than the
-- child template's own: past it the child fails (fail_overdue_tasks) and so does the step.
CREATE OR REPLACE FUNCTION orcastra.start_subworkflows(p_ids bigint[])
RETURNS TABLE (step_id bigint, child_task_id uuid, error text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_step record;
    v_template bigint;
    v_child uuid;
    v_error text;
    v_limit integer := orcastra.workflow_depth_limit();
BEGIN
    FOR v_step IN
        SELECT s.id, s.task_id, s.name, s.state, s.workflow, s.priority, t.workflow_depth, t.traceparent,
               (SELECT (d.step->>'timeout_ms')::bigint
                FROM orcastra.templates tp, jsonb_array_elements(tp.definition->'steps') AS d(step)
                WHERE tp.id = t.template_id AND d.step->>'name' = s.name) AS timeout_ms,
               jsonb_build_object('context', t.context, 'parents', coalesce(
                   (SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                    FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                    LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                    WHERE e.child_id = s.id), '{}'::jsonb)) AS document
        FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
        WHERE s.id = ANY (p_ids) AND s.state IN ('pending', 'error') AND s.workflow IS NOT NULL
        ORDER BY s.id
    LOOP
        v_child := NULL;
        v_error := NULL;
        v_template := orcastra.workflow_template(v_step.workflow);
        IF v_step.workflow_depth + 1 > v_limit THEN
            v_error := format('sub-workflow %s not started: it would nest %s levels deep, and tasks nest at most %s (setting orcastra.workflow_depth_limit); a chain of workflow: steps that calls itself never ends',
                              v_step.workflow, v_step.workflow_depth + 1, v_limit);
        ELSIF v_template IS NULL THEN
            v_error := format('sub-workflow %s not started: no such template is registered%s; register it with `orcastra template register FILE`, then retry this step',
                              v_step.workflow, CASE WHEN position('@' IN v_step.workflow) = 0
                                                    THEN ' (or none of its versions is a release that is not deprecated)' ELSE '' END);
        ELSE
            BEGIN
                -- A pinned version runs even when deprecated: the parent's template chose it.
                SELECT c.task_id INTO v_child
                FROM orcastra.create_task(v_template, v_step.document, NULL, v_step.priority, NULL,
                                          position('@' IN v_step.workflow) > 0, v_step.traceparent, v_step.id) AS c;
            EXCEPTION WHEN SQLSTATE 'OR003' OR SQLSTATE 'OR004' OR SQLSTATE 'OR010' OR SQLSTATE 'OR017' THEN
                GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
                v_error := format('sub-workflow %s not started: %s', v_step.workflow, v_error);
            END;
        END IF;

        IF v_child IS NOT NULL THEN
            UPDATE orcastra.tasks t
            SET timeout_ms = v_step.timeout_ms,
                deadline_at = CASE WHEN t.state = 'in_progress' THEN now() + v_step.timeout_ms * interval '1 millisecond' END
            WHERE t.id = v_child AND v_step.timeout_ms IS NOT NULL AND (t.timeout_ms IS NULL OR t.timeout_ms > v_step.timeout_ms);
            UPDATE orcastra.steps s
            SET state = 'in_progress', child_task_id = v_child, attempts = s.attempts + 1,
                state_reason = 'sub-workflow task ' || v_child || ' (' || v_step.workflow || ') started',
                started_at = now(), finished_at = NULL, last_error = NULL,
                lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL
            WHERE s.id = v_step.id;
        ELSIF v_step.state = 'pending' THEN
            UPDATE orcastra.steps s
            SET state = 'error', state_reason = 'sub-workflow not started', finished_at = now(), last_error = v_error
            WHERE s.id = v_step.id;
        END IF;
        RETURN QUERY SELECT v_step.id, v_child, v_error;
    END LOOP;
END
$$;

-- The orchestrator's chore for sub-workflows (its own transaction; safe from any number of
-- orchestrators at once). Takes up to p_limit workflow steps whose child task finished and moves
-- each as its child went:
--   complete, resolved_manually   the step completes with subworkflow_result(child); its children
--                                 are released
--   error                         the step fails: "sub-workflow task … failed: <the child's error>"
--   cancelled                     the step fails: "sub-workflow task … was cancelled"
-- then settles their tasks. Returns how many steps it moved.
-- Locks: the workflow steps and their children (ascending id), then their tasks (settle_tasks,
-- ascending id). The child tasks are not locked: a finished child stays finished (an operator may
-- only cancel a child, not retry or resolve it: operator.sql).
CREATE OR REPLACE FUNCTION orcastra.advance_subworkflows(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_candidates bigint[];
    v_done bigint[];
    v_failed bigint[];
    v_tasks uuid[];
    v_released record;
    v_after_failures record;
    v_namespaces text[] := '{}';
    v_count integer := 0;
BEGIN
    SELECT coalesce(array_agg(x.id), '{}') INTO v_candidates FROM (
        -- Running workflow steps are among the running steps (step_leases, 0012_live_step_tables.sql).
        SELECT s.id FROM orcastra.step_leases l JOIN orcastra.steps s ON s.id = l.step_id
        JOIN orcastra.tasks c ON c.id = s.child_task_id
        WHERE s.state = 'in_progress' AND s.workflow IS NOT NULL
          AND c.state IN ('complete', 'resolved_manually', 'error', 'cancelled')
        ORDER BY s.id LIMIT p_limit
    ) x;
    IF cardinality(v_candidates) > 0 THEN
        PERFORM 1 FROM orcastra.steps s
        WHERE s.id IN (SELECT unnest(v_candidates) UNION SELECT e.child_id FROM orcastra.step_edges e WHERE e.parent_id = ANY (v_candidates))
        ORDER BY s.id FOR UPDATE;
        WITH finished AS (
            -- Re-checked under the lock: another orchestrator may have moved it meanwhile.
            SELECT s.id, c.id AS child, c.state AS child_state, c.error AS child_error, c.state_reason AS child_reason
            FROM orcastra.steps s JOIN orcastra.tasks c ON c.id = s.child_task_id
            WHERE s.id = ANY (v_candidates) AND s.state = 'in_progress' AND s.workflow IS NOT NULL
              AND c.state IN ('complete', 'resolved_manually', 'error', 'cancelled')
        ), moved AS (
            UPDATE orcastra.steps s
            SET state = CASE WHEN f.child_state IN ('complete', 'resolved_manually') THEN 'complete' ELSE 'error' END,
                state_reason = CASE f.child_state WHEN 'complete' THEN 'sub-workflow task ' || f.child || ' complete'
                                                  WHEN 'resolved_manually' THEN 'sub-workflow task ' || f.child || ' resolved by hand'
                                                  WHEN 'error' THEN 'sub-workflow task ' || f.child || ' failed'
                                                  ELSE 'sub-workflow task ' || f.child || ' cancelled' END,
                last_error = CASE f.child_state
                    WHEN 'error' THEN right('sub-workflow task ' || f.child || ' (' || s.workflow || ') failed: '
                                            || coalesce(f.child_error, f.child_reason), 65536)
                    WHEN 'cancelled' THEN right('sub-workflow task ' || f.child || ' (' || s.workflow || ') was cancelled: '
                                                || f.child_reason, 65536) END,
                finished_at = now()
            FROM finished f
            WHERE s.id = f.id
            RETURNING s.id, s.task_id, s.state, f.child
        ), stored AS (
            INSERT INTO orcastra.step_results (step_id, result)
            SELECT m.id, orcastra.subworkflow_result(m.child) FROM moved m WHERE m.state = 'complete'
            ON CONFLICT (step_id) DO UPDATE SET result = EXCLUDED.result, written_at = now()
        )
        SELECT array_agg(m.id ORDER BY m.id) FILTER (WHERE m.state = 'complete'),
               array_agg(m.id ORDER BY m.id) FILTER (WHERE m.state = 'error'),
               coalesce(array_agg(DISTINCT m.task_id), '{}')
        INTO v_done, v_failed, v_tasks FROM moved m;
        IF v_done IS NOT NULL THEN
            SELECT * INTO v_released FROM orcastra.release_children(v_done);
            v_namespaces := v_namespaces || v_released.namespaces;
        END IF;
        IF v_failed IS NOT NULL THEN
            SELECT * INTO v_after_failures FROM orcastra.release_after_failures(v_failed);
            v_namespaces := v_namespaces || v_after_failures.namespaces;
        END IF;
        v_count := coalesce(cardinality(v_done), 0) + coalesce(cardinality(v_failed), 0);
        PERFORM orcastra.settle_tasks(v_tasks);
        PERFORM orcastra.notify_namespaces(v_namespaces);
    END IF;

    RETURN v_count;
END
$$;

-- The other half of the chore, in a transaction of its own (cancel_task locks each child's steps,
-- which must not come after the task locks advance_subworkflows takes): cancels up to p_limit
-- live child tasks whose workflow step stopped waiting for them — the parent task timed out
-- (fail_overdue_tasks cancels its steps), or the step was moved by an operator. Returns how many.
CREATE OR REPLACE FUNCTION orcastra.cancel_orphaned_subworkflows(p_limit integer) RETURNS integer
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_orphans uuid[];
    v_count integer := 0;
BEGIN
    -- Children nobody waits for any more: their step is not in_progress, or waits for another child.
    SELECT coalesce(array_agg(x.id), '{}') INTO v_orphans FROM (
        SELECT c.id
        FROM orcastra.tasks c JOIN orcastra.steps s ON s.id = c.parent_step_id
        WHERE c.parent_step_id IS NOT NULL AND c.state IN ('pending', 'in_progress', 'waiting_for_retry')
          AND (s.state <> 'in_progress' OR s.child_task_id IS DISTINCT FROM c.id)
        ORDER BY c.id LIMIT p_limit
    ) x;
    IF cardinality(v_orphans) = 0 THEN RETURN 0; END IF;
    SELECT count(*) INTO v_count FROM orcastra.cancel_task_trees(v_orphans, 'its workflow step no longer waits for it') AS c
    WHERE c.task_id = ANY (v_orphans);
    RETURN v_count;
END
$$;

-- A child task's last state change wakes the orchestrators: advance_subworkflows moves its
-- workflow step (functions/chores.sql has the other chores). Fires for child tasks only.
CREATE OR REPLACE FUNCTION orcastra.notify_subworkflow_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orcastra_orchestrator', 'subworkflow');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER tasks_subworkflow_finished AFTER UPDATE OF state ON orcastra.tasks
    FOR EACH ROW WHEN (NEW.parent_step_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
                       AND NEW.state IN ('complete', 'resolved_manually', 'error', 'cancelled'))
    EXECUTE FUNCTION orcastra.notify_subworkflow_finished();
