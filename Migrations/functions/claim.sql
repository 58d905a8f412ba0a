-- Claiming: a worker takes a batch of enqueued steps of its namespace, each leased to it.
--
-- Three statements, each with a plan that stays on an index whatever the limit and the history:
-- the pick walks step_queue_claim in its own order (SKIP LOCKED on the steps it joins by primary
-- key), the update and the final select go by primary key. (One statement joining the pick with
-- tasks and results was planned badly with a generic plan, and planning it anew for every claim
-- cost about half a millisecond.)
--
-- SKIP LOCKED never waits, so a claim cannot take part in a deadlock, also when it runs in the
-- same transaction as a report that holds step and task locks.
--
-- Plans. Every protocol function (claims, reports, heartbeats, task creation, chores, operator
-- actions) runs with
--   SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
--   SET enable_hashjoin = off SET enable_mergejoin = off
-- Each statement inside touches a handful of rows found by index, so one plan per connection
-- serves every call: left to choose, PL/pgSQL planned four of the report's and claim's statements
-- anew on every call (about 0.8 ms of a step's 2 ms). And no plan may scan or hash a whole table:
-- plans made while the tables were nearly empty (a new deployment, before autovacuum's ANALYZE)
-- otherwise scanned every step once the tables grew — 30–100 ms per statement at 400,000 steps
-- (PlanStabilityTests; docs/benchmarks.md, "Plans"). The settings hold for the functions these
-- call too (release_children, settle_tasks, the audit triggers).
-- For an instance of a fan-out (docs/templates.md, "Fan-out"), `item` and `item_index` are its
-- item and index (NULL for other steps), `context` and `parents` the task's context and its
-- group's parents' results only when its step's `instance_input` lists them (else NULL), and
-- `step_name` its own name (`charge[3]`): its definition is its group's (the name before the '[').
-- The result gained `traceparent` (the task's W3C trace context, docs/tracing.md) and, with
-- issue 19, `item` and `item_index`: a new row type, so the old function goes first. Callers that
-- name their columns are unaffected.
-- queue_wait_seconds (enqueued → claimed) and task_age_seconds (the task's creation → this claim)
-- feed the worker's metrics (docs/metrics.md) by the database's clock, at no extra query.
DROP FUNCTION IF EXISTS orcastra.claim_steps(text, text, integer, integer);
CREATE OR REPLACE FUNCTION orcastra.claim_steps(p_namespace text, p_worker text, p_limit integer, p_lease_ms integer)
RETURNS TABLE (step_id bigint, task_id uuid, step_name text, attempt integer, max_attempts integer,
               lease_token uuid, lease_expires_at timestamptz, template_id bigint, context jsonb, parents jsonb,
               traceparent text, item jsonb, item_index integer,
               queue_wait_seconds double precision, task_age_seconds double precision)
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_ids bigint[];
    v_limited boolean;
    v_full boolean;
BEGIN
    -- Step concurrency (a step's `concurrency: N`): a limited step whose scope has no free slot
    -- now is passed over, not picked, so it never holds back other work. For a step without a
    -- limit the OR stops at its first operand: nothing is called, and the pick costs what it cost
    -- before limits existed. (A function, not inline subqueries: those would open step_limits
    -- and an index of steps at every claim, measurably slower — docs/benchmarks.md.)
    -- The queue (step_queue, 0012) in its index's order; the step rows are locked, not the queue's:
    -- the state-change trigger deletes a claimed step's queue row, and every other writer of a step
    -- (a cancel, a recovery) locks the step first, so no two transactions lock in opposite orders.
    -- A queue row whose step another transaction holds, or has just moved on, is passed over.
    -- Only a namespace granted to the calling login role: the test of access.sql's may_work, copied
    -- here as the pick's one-time filter (two init plans run once per claim; calling may_work was a
    -- statement of its own in every claim). Keep the two alike. A claim that picks nothing asks
    -- may_work below, and is refused there (OR007) when the role may not work the namespace.
    SELECT array_agg(picked.id), bool_or(picked.limit_scope IS NOT NULL) INTO v_ids, v_limited FROM (
        SELECT s.id, q.limit_scope FROM orcastra.step_queue q JOIN orcastra.steps s ON s.id = q.step_id
        WHERE (coalesce(pg_catalog.pg_has_role(session_user,
                        (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'orcastra'), 'MEMBER'), false)
               OR EXISTS (SELECT 1 FROM orcastra.namespace_grants g
                          WHERE g.namespace = p_namespace AND coalesce(pg_catalog.pg_has_role(session_user, g.role::oid, 'MEMBER'), false)))
          AND q.namespace = p_namespace AND s.state = 'enqueued'
          AND (q.limit_scope IS NULL OR orcastra.step_scope_has_room(q.limit_scope))
        ORDER BY q.priority DESC, q.enqueued_at, q.step_id
        LIMIT p_limit
        FOR UPDATE OF s SKIP LOCKED
    ) AS picked;
    IF v_ids IS NULL THEN
        IF NOT orcastra.may_work(p_namespace) THEN PERFORM orcastra.require_namespace(p_namespace); END IF;
        IF current_setting('orcastra.deferred_wakeups', true) <> '' THEN PERFORM orcastra.send_deferred_wakeups(p_namespace, p_limit <= 0); END IF;
        RETURN;
    END IF;
    v_full := cardinality(v_ids) >= p_limit;
    -- The pick counted without a lock: the claim takes only as many as are free (claim.sql).
    IF v_limited THEN v_ids := orcastra.limit_claimed_steps(v_ids, p_namespace); END IF;
    IF cardinality(v_ids) = 0 THEN
        IF current_setting('orcastra.deferred_wakeups', true) <> '' THEN PERFORM orcastra.send_deferred_wakeups(p_namespace, v_full); END IF;
        RETURN;
    END IF;

    RETURN QUERY
    WITH claimed AS (
        UPDATE orcastra.steps s
        SET state = 'in_progress', state_reason = 'claimed', attempts = s.attempts + 1,
            lease_token = gen_random_uuid(), lease_owner = p_worker,
            lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond',
            started_at = now()
        WHERE s.id = ANY (v_ids)
        RETURNING s.id, s.task_id, s.name, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.fanout_of, s.item_index, s.enqueued_at
    ), instance_steps AS MATERIALIZED (
        -- The template step of each fan-out group among the claimed instances (the name before
        -- the '['): what its instances' input carries. Read once per group, and not at all when no
        -- instance was claimed: unnesting the template's steps for every step claimed made a claim
        -- of 500 steps of a 10,000-step template visit 5 million rows (3.4 s; BigDAGTests).
        SELECT n.template_id, n.group_name,
               coalesce(d.step -> 'instance_input' ? 'context', false) AS wants_context,
               coalesce(d.step -> 'instance_input' ? 'parents', false) AS wants_parents,
               d.step -> 'depends_on' AS depends_on
        FROM (SELECT DISTINCT t.template_id, left(c.name, strpos(c.name, '[') - 1) AS group_name
              FROM claimed c JOIN orcastra.tasks t ON t.id = c.task_id
              WHERE c.fanout_of IS NOT NULL) AS n
        JOIN orcastra.templates tm ON tm.id = n.template_id
        CROSS JOIN LATERAL jsonb_array_elements(tm.definition -> 'steps') AS d(step)
        WHERE d.step ->> 'name' = n.group_name
    )
    SELECT c.id, c.task_id, c.name, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at,
           t.template_id,
           -- A fan-out instance gets the task's context and its group's parents only when its
           -- template step lists them in `instance_input` (docs/templates.md, "Fan-out"): the list
           -- it fans out over is usually in one of them, and shipping (and decoding) it with each
           -- of N instances made a fan-out cost O(N²).
           CASE WHEN c.fanout_of IS NULL OR g.wants_context THEN t.context END,
           -- A step's parents by its edges. A fan-out instance's are its group's, found by the
           -- group's `depends_on` in the template: the group's links also come from every
           -- instance (the fan-in; as edge rows in fan-outs made before migration 0019, which the
           -- `p.fanout_of IS NULL` below leaves out), and reading those for each instance claimed
           -- made a fan-out of N items cost N² row visits.
           CASE WHEN c.fanout_of IS NULL
                THEN coalesce((SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                               FROM orcastra.step_edges e
                               JOIN orcastra.steps p ON p.id = e.parent_id
                               LEFT JOIN orcastra.step_results r ON r.step_id = p.id
                               WHERE e.child_id = c.id AND p.fanout_of IS NULL), '{}'::jsonb)
                WHEN g.wants_parents
                THEN coalesce((SELECT jsonb_object_agg(p.name, coalesce(r.result, 'null'::jsonb))
                               FROM jsonb_array_elements_text(g.depends_on) AS dep(name)
                               JOIN orcastra.steps p ON p.task_id = c.task_id AND p.name = dep.name
                               LEFT JOIN orcastra.step_results r ON r.step_id = p.id), '{}'::jsonb) END,
           t.traceparent,
           CASE WHEN c.fanout_of IS NOT NULL THEN (SELECT i.item FROM orcastra.step_items i WHERE i.step_id = c.id) END,
           c.item_index,
           extract(epoch FROM now() - c.enqueued_at)::double precision,
           extract(epoch FROM now() - t.created_at)::double precision
    FROM claimed c JOIN orcastra.tasks t ON t.id = c.task_id
    LEFT JOIN instance_steps g
      ON c.fanout_of IS NOT NULL AND g.template_id = t.template_id AND g.group_name = left(c.name, strpos(c.name, '[') - 1)
    ORDER BY c.id;
    -- Wake-ups a report in this transaction left to this claim (report_steps_then_claim): sent
    -- now, for what is still queued once this claim took its steps (channels.sql).
    IF current_setting('orcastra.deferred_wakeups', true) <> '' THEN PERFORM orcastra.send_deferred_wakeups(p_namespace, v_full); END IF;
END
$$;

-- Whether a limited step's scope has a free slot now (counted without a lock: a hint for the pick,
-- which limit_claimed_steps then makes exact).
CREATE OR REPLACE FUNCTION orcastra.step_scope_has_room(p_scope text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT count(*) FROM orcastra.step_leases r WHERE r.limit_scope = p_scope)
           < (SELECT l.max_running FROM orcastra.step_limits l WHERE l.scope = p_scope);
END
$$;

-- Of the steps a claim picked (in its order), those it may take: for each scope of a limited step
-- (ascending), as many as the scope has free slots, counted under a transaction-scoped advisory
-- lock on the scope so that two claims cannot both take the last slot. The lock is only tried:
-- a claim never waits for another, so it cannot deadlock; a scope whose lock is busy is passed
-- over this time, and the namespace is notified at commit so that its workers look again once
-- the other claim has committed (no polling). Steps passed over stay enqueued.
CREATE OR REPLACE FUNCTION orcastra.limit_claimed_steps(p_ids bigint[], p_namespace text) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_scope record;
    v_free integer;
    v_drop bigint[] := '{}';
    v_contended boolean := false;
BEGIN
    FOR v_scope IN
        SELECT s.limit_scope AS scope, array_agg(s.id ORDER BY p.n) AS ids
        FROM unnest(p_ids) WITH ORDINALITY AS p(id, n) JOIN orcastra.steps s ON s.id = p.id
        WHERE s.limit_scope IS NOT NULL GROUP BY s.limit_scope ORDER BY s.limit_scope
    LOOP
        IF pg_try_advisory_xact_lock(hashtextextended('step ' || v_scope.scope, 19)) THEN
            SELECT l.max_running - (SELECT count(*) FROM orcastra.step_leases r WHERE r.limit_scope = l.scope)
            INTO v_free FROM orcastra.step_limits l WHERE l.scope = v_scope.scope;
            v_drop := v_drop || v_scope.ids[greatest(coalesce(v_free, 0), 0) + 1:];
        ELSE
            v_drop := v_drop || v_scope.ids;
            v_contended := true;
        END IF;
    END LOOP;
    IF v_contended THEN PERFORM orcastra.notify_namespaces(ARRAY[p_namespace]); END IF;
    RETURN ARRAY(SELECT p.id FROM unnest(p_ids) WITH ORDINALITY AS p(id, n) WHERE p.id <> ALL (v_drop) ORDER BY p.n);
END
$$;

-- Extends the leases the caller still holds. A step whose task was cancelled is cancelled here
-- (its outcome will be ignored) and reported with alive = false, as is a step whose lease was lost.
-- Locks the steps in ascending id order first, like every other writer of steps.
CREATE OR REPLACE FUNCTION orcastra.heartbeat_steps(p_ids bigint[], p_tokens uuid[], p_lease_ms integer)
RETURNS TABLE (step_id bigint, alive boolean)
LANGUAGE plpgsql -- generic plans on indexes only: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
BEGIN
    PERFORM 1 FROM orcastra.steps s WHERE s.id = ANY (p_ids) ORDER BY s.id FOR UPDATE;

    UPDATE orcastra.steps s
    SET state = 'cancelled', state_reason = 'task cancelled while running', finished_at = now(), lease_token = NULL,
        lease_expires_at = NULL
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

-- The normalized definition of a template with a step in `p_namespace`, for a worker of that
-- namespace (what to run, timeouts, retry policy). Workers read templates only through this: a
-- worker role has no SELECT on any table. Refuses (OR007) a namespace the caller may not work;
-- NULL when the template does not exist or has no step in the namespace.
CREATE OR REPLACE FUNCTION orcastra.template_definition(p_template_id bigint, p_namespace text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
BEGIN
    PERFORM orcastra.require_namespace(p_namespace);
    RETURN (SELECT t.definition FROM orcastra.templates t
            WHERE t.id = p_template_id
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(t.definition -> 'steps') AS s(step)
                          WHERE s.step ->> 'namespace' = p_namespace));
END
$$;
