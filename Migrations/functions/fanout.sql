-- Fan-out over data: `for_each:` and `max_parallel:` (docs/templates.md, "Fan-out").
--
-- A fan-out step (the group) is decided like any step (decide_steps in settle.sql: trigger, when).
-- When it may run, fan_out evaluates its for_each over its input document and makes its
-- instances, in that transaction; it never runs itself. Each instance is a step row named
-- `<group>[<index>]` whose fanout_of is the group: a link instance → group (orcastra.step_links,
-- migration 0019; no step_edges row), so the group's pending_parents counts its unfinished
-- instances and release_children counts their completions down on it. When the count
-- reaches 0, advance_fanouts completes the group with the list of the instances' results in index
-- order. With max_parallel, only that many instances are enqueued at first; the rest wait as
-- pending (held), and each completion enqueues the next held one: a cap enforced by what is
-- claimable, so no worker ever polls for a free slot.
--
-- A group's step `concurrency: N` (its limit_scope, functions/claim.sql) is copied onto its
-- instances: at most N instances of that step run at once, across tasks (the group itself never
-- runs, so it never holds a slot).
--
-- Callers hold the group's row lock. Instances are inserted (new rows, locked by their insert);
-- held instances are locked when topped up, after the group (only their group's completions touch
-- them, and those serialize on the group's row).

-- The most instances one fan-out may make: the setting orcastra.for_each_limit (e.g. ALTER
-- DATABASE … SET orcastra.for_each_limit = 500000), else 100,000.
CREATE OR REPLACE FUNCTION orcastra.for_each_limit() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('orcastra.for_each_limit', true), '')::integer, 100000)
$$;

-- Fans out the groups `p_ids` (pending, decided to run, not yet fanned out). Per group: its
-- for_each over {"context": …, "parents": {…}} must yield one JSON array (the first item the path
-- yields); an empty one completes the group with [] at once (its children are released), one
-- beyond the cap or anything that is not an array puts the group in error with a sentence that
-- says so (the task then settles in error). Otherwise one statement inserts every instance, its
-- item and its creation audit row. Returns the namespaces and tasks that got work.
CREATE OR REPLACE FUNCTION orcastra.fan_out(p_ids bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_group record;
    v_list jsonb;
    v_count integer;
    v_limit integer := orcastra.for_each_limit();
    v_released record;
BEGIN
    namespaces := '{}'; tasks := '{}';
    FOR v_group IN
        SELECT s.id, s.task_id, s.name, s.namespace, s.priority, s.max_attempts, s.max_parallel, s.for_each, s.limit_scope,
               jsonb_build_object('context', t.context, 'parents', coalesce(
                   (SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                    FROM orcastra.step_edges e JOIN orcastra.steps p ON p.id = e.parent_id
                    LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                    WHERE e.child_id = s.id), '{}'::jsonb)) AS document
        FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
        WHERE s.id = ANY (p_ids) AND s.state = 'pending' AND s.instances IS NULL AND s.for_each IS NOT NULL
        ORDER BY s.id
    LOOP
        v_list := jsonb_path_query_first(v_group.document, v_group.for_each, '{}'::jsonb, true);
        IF v_list IS NULL OR jsonb_typeof(v_list) <> 'array' THEN
            UPDATE orcastra.steps s
            SET state = 'error', state_reason = 'for_each did not yield a list', finished_at = now(),
                last_error = format('for_each %s yielded %s, not a JSON array', v_group.for_each,
                                    coalesce(left(v_list::text, 200), 'nothing'))
            WHERE s.id = v_group.id;
            CONTINUE;
        END IF;
        v_count := jsonb_array_length(v_list);
        IF v_count > v_limit THEN
            UPDATE orcastra.steps s
            SET state = 'error', state_reason = 'for_each list over the cap', finished_at = now(),
                last_error = format('for_each yielded %s items; a fan-out makes at most %s instances (setting orcastra.for_each_limit): split the list or raise the limit', v_count, v_limit)
            WHERE s.id = v_group.id;
            CONTINUE;
        END IF;
        IF v_count = 0 THEN
            UPDATE orcastra.steps s SET state = 'complete', state_reason = 'for_each yielded an empty list', finished_at = now(), instances = 0
            WHERE s.id = v_group.id;
            INSERT INTO orcastra.step_results (step_id, result) VALUES (v_group.id, '[]'::jsonb);
            SELECT * INTO v_released FROM orcastra.release_children(ARRAY[v_group.id]);
            namespaces := namespaces || v_released.namespaces;
            tasks := tasks || v_released.tasks;
            CONTINUE;
        END IF;

        -- One statement: every instance, its item and its audit row. Its link to the group is its
        -- fanout_of (step_links): an edge row each was a sixth of the time (docs/benchmarks.md).
        -- (No join between the instances and the list: the callers' plans forbid hash and merge
        -- joins, and a nested loop over 10,000 × 10,000 took 20 s. Each item is read by its index.)
        WITH items AS (
            SELECT i AS idx FROM generate_series(0, v_count - 1) AS g(i)
        ), new_steps AS (
            INSERT INTO orcastra.steps AS s (task_id, name, namespace, state, state_reason, priority, max_attempts,
                                             pending_parents, enqueued_at, fanout_of, item_index, limit_scope)
            SELECT v_group.task_id, v_group.name || '[' || i.idx || ']', v_group.namespace,
                   CASE WHEN v_group.max_parallel IS NULL OR i.idx < v_group.max_parallel THEN 'enqueued' ELSE 'pending' END,
                   'fanned out', v_group.priority, v_group.max_attempts, 0,
                   CASE WHEN v_group.max_parallel IS NULL OR i.idx < v_group.max_parallel THEN now() END,
                   v_group.id, i.idx, v_group.limit_scope
            FROM items i ORDER BY i.idx
            RETURNING s.id, s.state, s.item_index
        ), audit AS (
            INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, task_created_at)
            SELECT n.id, v_group.task_id, NULL, n.state, 0, 'fanned out',
                   (SELECT t.created_at FROM orcastra.tasks t WHERE t.id = v_group.task_id) -- the partition key (0014)
            FROM new_steps n
        ), stored AS (
            INSERT INTO orcastra.step_items (step_id, item)
            SELECT n.id, v_list -> n.item_index FROM new_steps n
        )
        SELECT count(*) INTO v_count FROM new_steps;
        UPDATE orcastra.steps s
        SET pending_parents = s.pending_parents + v_count, instances = v_count,
            state_reason = 'fanned out into ' || v_count || CASE WHEN v_count = 1 THEN ' instance' ELSE ' instances' END
        WHERE s.id = v_group.id;
        namespaces := namespaces || v_group.namespace;
        tasks := tasks || v_group.task_id;
    END LOOP;
END
$$;

-- Groups `p_groups` (pending, fanned out) after some of their instances finished: a group with no
-- unfinished instance completes with the list of their results in index order (and its children
-- are released); one with max_parallel has its held instances enqueued, lowest index first, up to
-- max_parallel enqueued, running or waiting for a retry. Returns what release_children returns.
CREATE OR REPLACE FUNCTION orcastra.advance_fanouts(p_groups bigint[], OUT namespaces text[], OUT tasks uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_group record;
    v_free integer;
    v_released record;
BEGIN
    namespaces := '{}'; tasks := '{}';
    FOR v_group IN
        SELECT s.id, s.task_id, s.namespace, s.pending_parents, s.max_parallel, s.instances
        FROM orcastra.steps s
        WHERE s.id = ANY (p_groups) AND s.state = 'pending' AND s.instances IS NOT NULL
        ORDER BY s.id
    LOOP
        IF v_group.pending_parents = 0 THEN
            UPDATE orcastra.steps s
            SET state = 'complete', finished_at = now(),
                state_reason = 'all ' || v_group.instances || CASE WHEN v_group.instances = 1 THEN ' instance' ELSE ' instances' END || ' complete'
            WHERE s.id = v_group.id;
            INSERT INTO orcastra.step_results (step_id, result)
            SELECT v_group.id, coalesce(jsonb_agg(coalesce(r.result, 'null'::jsonb) ORDER BY i.item_index), '[]'::jsonb)
            FROM orcastra.steps i LEFT JOIN orcastra.step_results r ON r.step_id = i.id
            WHERE i.fanout_of = v_group.id;
            SELECT * INTO v_released FROM orcastra.release_children(ARRAY[v_group.id]);
            namespaces := namespaces || v_released.namespaces;
            tasks := tasks || v_released.tasks;
        ELSIF v_group.max_parallel IS NOT NULL THEN
            -- Live instances: those queued, running or waiting for a retry (0012's tables).
            SELECT v_group.max_parallel
                   - (SELECT count(*) FROM orcastra.step_queue q WHERE q.fanout_of = v_group.id)
                   - (SELECT count(*) FROM orcastra.step_leases l WHERE l.fanout_of = v_group.id)
                   - (SELECT count(*) FROM orcastra.step_retries r WHERE r.fanout_of = v_group.id)
            INTO v_free;
            IF v_free > 0 THEN
                WITH next AS (
                    SELECT i.id FROM orcastra.step_fanout_held h JOIN orcastra.steps i ON i.id = h.step_id
                    WHERE h.fanout_of = v_group.id AND i.state = 'pending'
                    ORDER BY h.item_index LIMIT v_free
                    FOR UPDATE OF i
                ), enqueued AS (
                    UPDATE orcastra.steps i SET state = 'enqueued', state_reason = 'a slot of max_parallel freed', enqueued_at = now()
                    FROM next WHERE i.id = next.id
                    RETURNING i.id
                )
                SELECT count(*) INTO v_free FROM enqueued;
                IF v_free > 0 THEN
                    namespaces := namespaces || v_group.namespace;
                    tasks := tasks || v_group.task_id;
                END IF;
            END IF;
        END IF;
    END LOOP;
END
$$;

-- Fan-outs `p_groups` (pending, fanned out; the caller holds their row locks) whose every instance
-- finished — none queued, running, waiting for a retry or held by max_parallel — and at least one
-- failed for good: the fan-out fails (error), naming how many failed and the first one's error, so
-- that its children with trigger all_done run (release_after_failures). A fan-out whose failed
-- instance an operator later retries or resolves is pending again (reopen_fanouts). Returns the
-- groups that failed, ascending.
CREATE OR REPLACE FUNCTION orcastra.fail_fanouts(p_groups bigint[]) RETURNS bigint[]
LANGUAGE sql AS $$
    WITH failed AS (
        UPDATE orcastra.steps g
        SET state = 'error', finished_at = now(), state_reason = 'instances failed',
            last_error = (SELECT format('%s of %s instances failed for good; the first, %s: %s', count(*), g.instances,
                                        (array_agg(i.name ORDER BY i.item_index))[1],
                                        left((array_agg(coalesce(i.last_error, 'failed') ORDER BY i.item_index))[1], 60000))
                          FROM orcastra.steps i WHERE i.fanout_of = g.id AND i.state = 'error')
        WHERE g.id = ANY (p_groups) AND g.state = 'pending' AND g.instances IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM orcastra.step_queue q WHERE q.fanout_of = g.id)
          AND NOT EXISTS (SELECT 1 FROM orcastra.step_leases l WHERE l.fanout_of = g.id)
          AND NOT EXISTS (SELECT 1 FROM orcastra.step_retries r WHERE r.fanout_of = g.id)
          AND NOT EXISTS (SELECT 1 FROM orcastra.step_fanout_held h WHERE h.fanout_of = g.id)
          AND EXISTS (SELECT 1 FROM orcastra.steps i WHERE i.fanout_of = g.id AND i.state = 'error')
        RETURNING g.id
    )
    SELECT coalesce(array_agg(f.id ORDER BY f.id), '{}') FROM failed f
$$;

-- An operator retried or resolved instances `p_instances`: their fan-outs that had failed
-- (fail_fanouts) are pending again and carry on. Locks those groups; callers lock them before the
-- instances (a group's id is below its instances').
CREATE OR REPLACE FUNCTION orcastra.reopen_fanouts(p_instances bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE orcastra.steps g
    SET state = 'pending', state_reason = 'an instance runs again', finished_at = NULL, last_error = NULL
    WHERE g.id IN (SELECT i.fanout_of FROM orcastra.steps i WHERE i.id = ANY (p_instances) AND i.fanout_of IS NOT NULL)
      AND g.state = 'error' AND g.instances IS NOT NULL
$$;
