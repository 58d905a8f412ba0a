-- Retention: deleting finished tasks with everything they own (steps, edges, fan-out items and
-- results; their task and step transitions go with their week's history partition:
-- history_partitions.sql), by the orchestrators' chore (prune_expired_tasks) and by `orcastra prune`
-- (prunable_tasks → lock_tasks_for_pruning → archive_tasks → delete_tasks, in one transaction).
--
-- A task is deleted only when it is in a final state (complete, error, cancelled,
-- resolved_manually), finished when its candidate was chosen (so a task retried or resolved since
-- is left alone), and none of its steps is enqueued or running (a step of a cancelled task can run
-- until its worker next reports). Locks follow the house order: the candidates' steps by ascending
-- id, then the tasks by ascending id, both SKIP LOCKED, so a prune never waits for a worker, an
-- operator or another orchestrator, and they never wait for it longer than one batch.

-- How long tasks of a template in a final state are kept, in milliseconds (NULL: forever): the
-- template's own `retention` when it names the state, else the default given (jsonb
-- {"complete_ms": …, "error_ms": …, "cancelled_ms": …, "resolved_manually_ms": …}; a missing
-- or null key keeps such tasks forever).
CREATE OR REPLACE FUNCTION orcastra.retention_ms(p_definition jsonb, p_state text, p_defaults jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, orcastra, pg_temp
AS $$
    SELECT CASE WHEN p_definition->'retention' ? (p_state || '_ms')
                THEN (p_definition->'retention'->>(p_state || '_ms'))::bigint
                ELSE (p_defaults->>(p_state || '_ms'))::bigint END;
$$;

-- Finished tasks to prune, oldest first, at most p_limit: finished longer ago than p_older_than,
-- or, when it is NULL, longer ago than their retention (retention_ms with p_defaults); only those
-- in p_states and of template p_namespace/p_name where these are given. One range scan of
-- tasks_finished per template and final state, so the cost follows what is found, not the
-- history kept.
CREATE OR REPLACE FUNCTION orcastra.prunable_tasks(p_older_than interval, p_defaults jsonb, p_states text[],
                                                   p_namespace text, p_name text, p_limit integer)
RETURNS TABLE (task_id uuid, finished_at timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
-- Index range scans whatever share of the tasks has expired (a seq scan of history is what must never
-- happen); no JIT, which the huge cost of a disabled seq scan would start (800 ms for a 1 ms query).
SET jit = off SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
    WITH policy AS MATERIALIZED (
        SELECT p.template_id, p.state,
               CASE WHEN p_older_than IS NOT NULL THEN now() - p_older_than
                    ELSE now() - p.keep_ms * interval '1 millisecond' END AS cutoff
        FROM (SELECT tp.id AS template_id, st.state, orcastra.retention_ms(tp.definition, st.state, p_defaults) AS keep_ms
              FROM orcastra.templates tp
              CROSS JOIN unnest(ARRAY['complete', 'error', 'cancelled', 'resolved_manually']) AS st(state)
              WHERE (p_namespace IS NULL OR tp.namespace = p_namespace) AND (p_name IS NULL OR tp.name = p_name)
                AND (p_states IS NULL OR st.state = ANY (p_states))) p
        WHERE p_older_than IS NOT NULL OR p.keep_ms IS NOT NULL
    )
    SELECT x.id, x.finished_at
    FROM policy p
    CROSS JOIN LATERAL (
        SELECT t.id, t.finished_at FROM orcastra.tasks t
        WHERE t.template_id = p.template_id AND t.state = p.state AND t.finished_at < p.cutoff
          AND t.state IN ('complete', 'error', 'cancelled', 'resolved_manually')
        ORDER BY t.finished_at LIMIT p_limit
    ) x
    ORDER BY x.finished_at LIMIT p_limit;
$$;

-- Locks what it can of the candidates (each with the finished_at it was chosen with) and returns
-- the tasks it may delete, oldest first, within p_max_rows rows deleted in all (the task, its
-- steps, edges, items and results; at least one task, however large), with the rows each owns
-- and the ids of their steps (for delete_owned: the prune does not look them up twice). Their
-- transitions are not counted: they are not deleted row by row but dropped with their week's
-- partition. A task whose row or any of whose steps another transaction holds is skipped (taken
-- next time). Set-based throughout (issue 20: 50,000 tasks/s): one scan locks the steps, one
-- counts them (a skipped step shows as a task with fewer locked than it has), one locks the tasks,
-- one counts each task's rows in the three owned tables; no join of the candidates against
-- themselves.
CREATE OR REPLACE FUNCTION orcastra.lock_pruning_batch(p_tasks uuid[], p_finished_at timestamptz[], p_max_rows integer,
                                                       OUT tasks uuid[], OUT owned_rows bigint[], OUT steps bigint[])
LANGUAGE plpgsql
SET search_path = pg_catalog, orcastra, pg_temp -- internal (the caller's rights): take_pruning_batch, lock_tasks_for_pruning
SET jit = off SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_step_ids bigint[];
    v_step_tasks uuid[];
    v_bad uuid[];
    v_all bigint;
    v_locked uuid[];
    v_lo bigint;
    v_hi bigint;
    v_count_tasks uuid[];
    v_counts bigint[];
BEGIN
    tasks := '{}'; owned_rows := '{}'; steps := '{}';
    IF cardinality(p_tasks) = 0 THEN RETURN; END IF;
    -- Their steps, in ascending id (the house lock order), skipping those another transaction
    -- holds; a task with a live step is not taken (a step of a cancelled task runs until its
    -- worker reports).
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}'), coalesce(array_agg(l.task_id ORDER BY l.id), '{}'),
           coalesce(array_agg(DISTINCT l.task_id) FILTER (WHERE l.state IN ('enqueued', 'in_progress')), '{}')
    INTO v_step_ids, v_step_tasks, v_bad
    FROM (SELECT s.id, s.task_id, s.state FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks)
          ORDER BY s.id FOR UPDATE SKIP LOCKED) l;
    -- The tasks, still finished as chosen, in ascending id.
    SELECT coalesce(array_agg(t.id), '{}') INTO v_locked FROM (
        SELECT t.id FROM unnest(p_tasks, p_finished_at) AS c(id, finished_at)
        JOIN orcastra.tasks t ON t.id = c.id
        WHERE NOT (c.id = ANY (v_bad))
          AND t.state IN ('complete', 'error', 'cancelled', 'resolved_manually')
          AND t.finished_at IS NOT DISTINCT FROM c.finished_at
        ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
    ) t;
    -- A step skipped, or added since the steps were locked: counted after the tasks are locked (a
    -- step inserted now waits for the task's lock, then finds it gone), so every step of a task
    -- taken is locked and deleted with it. Only on a difference, find whose (counted per task
    -- without a join: tasks whose steps number other than their locked ones); those are not taken.
    SELECT count(*) INTO v_all FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks);
    IF v_all <> cardinality(v_step_ids) THEN
        v_bad := ARRAY(
            SELECT x.task_id FROM (SELECT s.task_id, 1 AS n FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks)
                                   UNION ALL SELECT u.task_id, -1 FROM unnest(v_step_tasks) AS u(task_id)) x
            GROUP BY x.task_id HAVING sum(x.n) <> 0);
        v_locked := ARRAY(SELECT l.id FROM unnest(v_locked) WITH ORDINALITY AS l(id, n)
                          WHERE NOT (l.id = ANY (v_bad)) ORDER BY l.n);
    END IF;
    -- Rows each owns (the task, its steps, their results, items and edges from them), oldest
    -- first, cut at p_max_rows. Steps of tasks not taken are counted too (they are few) and
    -- dropped by the join. A task's steps have neighbouring ids (create_task inserts them
    -- together), so the batch's steps mostly fill the range of their ids: then the owned tables are
    -- read by one range scan each, hashed against the steps (an index descent per step costs
    -- more); otherwise (steps scattered: the range over four times their number) by descents.
    v_lo := v_step_ids[1];
    v_hi := v_step_ids[cardinality(v_step_ids)];
    PERFORM set_config('enable_hashjoin', 'on', true);
    IF v_hi - v_lo + 1 <= 4 * cardinality(v_step_ids) THEN
        SELECT coalesce(array_agg(o.task_id), '{}'), coalesce(array_agg(o.n), '{}') INTO v_count_tasks, v_counts FROM (
            SELECT st.task_id, count(*) AS n FROM (
                SELECT r.step_id AS id FROM orcastra.step_results r WHERE r.step_id BETWEEN v_lo AND v_hi
                UNION ALL SELECT i.step_id FROM orcastra.step_items i WHERE i.step_id BETWEEN v_lo AND v_hi
                UNION ALL SELECT e.parent_id FROM orcastra.step_edges e WHERE e.parent_id BETWEEN v_lo AND v_hi
            ) x JOIN unnest(v_step_ids, v_step_tasks) AS st(id, task_id) ON st.id = x.id
            GROUP BY st.task_id) o;
    ELSE
        SELECT coalesce(array_agg(o.task_id), '{}'), coalesce(array_agg(o.n), '{}') INTO v_count_tasks, v_counts FROM (
            SELECT st.task_id, count(*) AS n FROM (
                SELECT r.step_id AS id FROM orcastra.step_results r WHERE r.step_id = ANY (v_step_ids)
                UNION ALL SELECT i.step_id FROM orcastra.step_items i WHERE i.step_id = ANY (v_step_ids)
                UNION ALL SELECT e.parent_id FROM orcastra.step_edges e WHERE e.parent_id = ANY (v_step_ids)
            ) x JOIN unnest(v_step_ids, v_step_tasks) AS st(id, task_id) ON st.id = x.id
            GROUP BY st.task_id) o;
    END IF;
    WITH owned AS (
        SELECT x.task_id, sum(x.n)::bigint AS n FROM (
            SELECT u.task_id, 1::bigint AS n, false AS taken FROM unnest(v_step_tasks) AS u(task_id)
            UNION ALL SELECT c.task_id, c.n, false FROM unnest(v_count_tasks, v_counts) AS c(task_id, n)
            UNION ALL SELECT l.id, 1, true FROM unnest(v_locked) AS l(id)
        ) x GROUP BY x.task_id HAVING bool_or(x.taken)
    ), running AS (
        SELECT c.id, o.n, sum(o.n) OVER (ORDER BY c.position) AS total, row_number() OVER (ORDER BY c.position) AS position
        FROM unnest(p_tasks) WITH ORDINALITY AS c(id, position)
        JOIN owned o ON o.task_id = c.id
    )
    SELECT coalesce(array_agg(r.id ORDER BY r.total), '{}'), coalesce(array_agg(r.n ORDER BY r.total), '{}')
    INTO tasks, owned_rows
    FROM running r WHERE r.total <= p_max_rows OR r.position = 1;
    -- The taken tasks' steps (hashed: both sides run to thousands).
    SELECT coalesce(array_agg(st.id ORDER BY st.id), '{}') INTO steps
    FROM unnest(v_step_ids, v_step_tasks) AS st(id, task_id) JOIN unnest(tasks) AS t(id) ON t.id = st.task_id;
END
$$;


-- lock_pruning_batch as a table, for a caller that chose its own candidates: the tasks it may
-- delete, oldest first, with the rows each owns.
CREATE OR REPLACE FUNCTION orcastra.lock_tasks_for_pruning(p_tasks uuid[], p_finished_at timestamptz[], p_max_rows integer)
RETURNS TABLE (task_id uuid, owned_rows bigint)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT u.task_id, u.owned_rows
    FROM orcastra.lock_pruning_batch(p_tasks, p_finished_at, p_max_rows) b,
         unnest(b.tasks, b.owned_rows) WITH ORDINALITY AS u(task_id, owned_rows, position)
    ORDER BY u.position;
$$;

-- The next batch to prune, as the chore and `orcastra prune` both take it: candidates oldest
-- first (prunable_tasks, with the same selection), locked by lock_pruning_batch. Every pruner
-- starts from the oldest, so a full page of candidates all held is most likely another
-- orchestrator's (or the operator's) batch: the next page is tried then, up to 9 pages in all,
-- so that several prune a backlog side by side rather than in turns. `candidates`: how many it
-- looked at.
CREATE OR REPLACE FUNCTION orcastra.take_pruning_batch(p_older_than interval, p_defaults jsonb, p_states text[],
                                                       p_namespace text, p_name text, p_max_rows integer,
                                                       OUT tasks uuid[], OUT owned_rows bigint[], OUT steps bigint[],
                                                       OUT candidates integer)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET jit = off
AS $$
DECLARE
    -- Candidates sized for tasks of ten rows or more; lock_pruning_batch cuts to the budget.
    v_page integer := greatest(1, p_max_rows / 10);
    v_ids uuid[];
    v_finished timestamptz[];
BEGIN
    candidates := 0;
    FOR v_n IN 0 .. 8 LOOP
        SELECT coalesce(array_agg(e.task_id ORDER BY e.finished_at), '{}'), coalesce(array_agg(e.finished_at ORDER BY e.finished_at), '{}')
        INTO v_ids, v_finished
        FROM (SELECT p.task_id, p.finished_at
              FROM orcastra.prunable_tasks(p_older_than, p_defaults, p_states, p_namespace, p_name, (v_n + 1) * v_page) p
              ORDER BY p.finished_at OFFSET v_n * v_page) e;
        candidates := candidates + cardinality(v_ids);
        SELECT b.tasks, b.owned_rows, b.steps INTO tasks, owned_rows, steps
        FROM orcastra.lock_pruning_batch(v_ids, v_finished, p_max_rows) b;
        EXIT WHEN cardinality(tasks) > 0 OR cardinality(v_ids) < v_page;
    END LOOP;
END
$$;

-- What `orcastra prune --archive` writes before deleting: one JSON object per task, with its
-- template, steps (with results, and a fan-out instance's item), edges and every transition.
CREATE OR REPLACE FUNCTION orcastra.archive_tasks(p_tasks uuid[]) RETURNS SETOF text
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT jsonb_build_object(
        'task', to_jsonb(t) || jsonb_build_object('template', tp.namespace || '/' || tp.name || '@' || tp.version),
        'steps', (SELECT coalesce(jsonb_agg(to_jsonb(s) || jsonb_build_object('result', r.result, 'result_written_at', r.written_at)
                                            || CASE WHEN i.step_id IS NOT NULL THEN jsonb_build_object('item', i.item) ELSE '{}'::jsonb END
                                            ORDER BY s.id), '[]')
                  FROM orcastra.steps s LEFT JOIN orcastra.step_results r ON r.step_id = s.id
                  LEFT JOIN orcastra.step_items i ON i.step_id = s.id WHERE s.task_id = t.id),
        'edges', (SELECT coalesce(jsonb_agg(jsonb_build_object('parent_id', e.parent_id, 'child_id', e.child_id)
                                            ORDER BY e.parent_id, e.child_id), '[]')
                  FROM orcastra.steps s JOIN orcastra.step_edges e ON e.parent_id = s.id WHERE s.task_id = t.id),
        -- task_created_at = t.created_at: the task's own partition only (migration 0014).
        'task_transitions', (SELECT coalesce(jsonb_agg(to_jsonb(tt) - 'task_id' - 'task_created_at' ORDER BY tt.id), '[]')
                             FROM orcastra.task_transitions tt WHERE tt.task_id = t.id AND tt.task_created_at = t.created_at),
        'step_transitions', (SELECT coalesce(jsonb_agg(to_jsonb(st) - 'task_id' - 'task_created_at' ORDER BY st.id), '[]')
                             FROM orcastra.step_transitions st WHERE st.task_id = t.id AND st.task_created_at = t.created_at)
    )::text
    FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
    WHERE t.id = ANY (p_tasks)
    ORDER BY t.finished_at, t.id;
$$;

-- Deletes the tasks (locked by lock_pruning_batch in this transaction) and everything they own
-- (p_steps: all their steps), children first, one statement per table; not their transitions,
-- which stay, owned by nobody and read by nobody, until maintain_history_partitions drops their
-- week whole (no vacuum). Returns the rows deleted and, when p_measure, the bytes of row data
-- they held (what vacuum makes reusable; their index entries besides), else NULL: measuring reads
-- each deleted row whole, a third of the deletes' time. The statement-level cascades of
-- task_references.sql and step_references.sql are told (orcastra.deleting_owned) that the
-- children are gone already.
-- Each table is read by an index descent per step (= ANY): on a batch of 4-step tasks whose steps
-- are neighbours, 15.5 µs a task against 22 for one range scan hashed against the steps
-- (docs/benchmarks.md, "Prune: leaner batches").
CREATE OR REPLACE FUNCTION orcastra.delete_owned(p_tasks uuid[], p_steps bigint[], p_measure boolean,
                                                 OUT deleted_rows bigint, OUT deleted_bytes bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, orcastra, pg_temp -- internal (the caller's rights): prune_expired_tasks, delete_tasks
SET jit = off SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_n bigint;
    v_b bigint;
BEGIN
    deleted_rows := 0;
    deleted_bytes := CASE WHEN p_measure THEN 0 END;
    IF cardinality(p_tasks) = 0 THEN RETURN; END IF;
    PERFORM set_config('orcastra.deleting_owned', 'on', true);
    IF p_measure THEN
        WITH d AS (DELETE FROM orcastra.step_results x WHERE x.step_id = ANY (p_steps) RETURNING pg_column_size(x.*) AS b)
        SELECT count(*), coalesce(sum(d.b), 0) INTO v_n, v_b FROM d;
        deleted_rows := deleted_rows + v_n; deleted_bytes := deleted_bytes + v_b;
        -- Every edge of a task joins two of its steps: by parent finds them all.
        WITH d AS (DELETE FROM orcastra.step_edges x WHERE x.parent_id = ANY (p_steps) RETURNING pg_column_size(x.*) AS b)
        SELECT count(*), coalesce(sum(d.b), 0) INTO v_n, v_b FROM d;
        deleted_rows := deleted_rows + v_n; deleted_bytes := deleted_bytes + v_b;
        -- A fan-out instance's item (migration 0011).
        WITH d AS (DELETE FROM orcastra.step_items x WHERE x.step_id = ANY (p_steps) RETURNING pg_column_size(x.*) AS b)
        SELECT count(*), coalesce(sum(d.b), 0) INTO v_n, v_b FROM d;
        deleted_rows := deleted_rows + v_n; deleted_bytes := deleted_bytes + v_b;
        WITH d AS (DELETE FROM orcastra.steps x WHERE x.id = ANY (p_steps) RETURNING pg_column_size(x.*) AS b)
        SELECT count(*), coalesce(sum(d.b), 0) INTO v_n, v_b FROM d;
        deleted_rows := deleted_rows + v_n; deleted_bytes := deleted_bytes + v_b;
        WITH d AS (DELETE FROM orcastra.tasks x WHERE x.id = ANY (p_tasks) RETURNING pg_column_size(x.*) AS b)
        SELECT count(*), coalesce(sum(d.b), 0) INTO v_n, v_b FROM d;
        deleted_rows := deleted_rows + v_n; deleted_bytes := deleted_bytes + v_b;
    ELSE
        DELETE FROM orcastra.step_results x WHERE x.step_id = ANY (p_steps);
        GET DIAGNOSTICS v_n = ROW_COUNT; deleted_rows := deleted_rows + v_n;
        DELETE FROM orcastra.step_edges x WHERE x.parent_id = ANY (p_steps);
        GET DIAGNOSTICS v_n = ROW_COUNT; deleted_rows := deleted_rows + v_n;
        DELETE FROM orcastra.step_items x WHERE x.step_id = ANY (p_steps);
        GET DIAGNOSTICS v_n = ROW_COUNT; deleted_rows := deleted_rows + v_n;
        DELETE FROM orcastra.steps x WHERE x.id = ANY (p_steps);
        GET DIAGNOSTICS v_n = ROW_COUNT; deleted_rows := deleted_rows + v_n;
        DELETE FROM orcastra.tasks x WHERE x.id = ANY (p_tasks);
        GET DIAGNOSTICS v_n = ROW_COUNT; deleted_rows := deleted_rows + v_n;
    END IF;
    PERFORM set_config('orcastra.deleting_owned', '', true);
END
$$;

-- What `orcastra prune` deletes a batch with (locked by take_pruning_batch in this transaction):
-- delete_owned, measuring the bytes freed.
CREATE OR REPLACE FUNCTION orcastra.delete_tasks(p_tasks uuid[], OUT deleted_rows bigint, OUT deleted_bytes bigint)
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET jit = off SET enable_seqscan = off
AS $$
    SELECT d.deleted_rows, d.deleted_bytes
    FROM orcastra.delete_owned(coalesce(p_tasks, '{}'),
                               ARRAY(SELECT s.id FROM orcastra.steps s WHERE s.task_id = ANY (p_tasks) ORDER BY s.id), true) d;
$$;

-- The orchestrators' chore: one batch of expired tasks (at most p_max_rows rows owned in all)
-- deleted in this transaction. Returns the tasks and rows deleted (deleted_bytes is NULL: not
-- measured, see delete_owned), and how many candidates it looked at (none deleted while some
-- were found: others hold them, or they have a live step; take them next time).
CREATE OR REPLACE FUNCTION orcastra.prune_expired_tasks(p_defaults jsonb, p_max_rows integer,
                                                        OUT tasks integer, OUT deleted_rows bigint, OUT deleted_bytes bigint,
                                                        OUT candidates integer)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET jit = off
AS $$
DECLARE
    v_locked uuid[];
    v_steps bigint[];
BEGIN
    SELECT b.tasks, b.steps, b.candidates INTO v_locked, v_steps, candidates
    FROM orcastra.take_pruning_batch(NULL, p_defaults, NULL, NULL, NULL, p_max_rows) b;
    tasks := cardinality(v_locked);
    -- Not measured here (deleted_bytes is NULL): `orcastra prune` reports it.
    SELECT d.deleted_rows, d.deleted_bytes INTO deleted_rows, deleted_bytes FROM orcastra.delete_owned(v_locked, v_steps, false) d;
END
$$;
