-- Task creation: any language submits a task through SQL alone (docs/worker-protocol.md,
-- "Submitting tasks"). The Swift client calls the same function.
--
-- What stays in the client: checking the context against the template's input_schema and the
-- 1 MiB context limit (docs/limits.md). A caller that uses these functions directly skips both.

-- A sort key with semver precedence (semver.org §11), so SQL can pick "the latest version":
-- MAJOR, MINOR, PATCH, then 1 for a release or 0 for a prerelease (a prerelease sorts first),
-- then each prerelease identifier as [0, number] when it is digits only or [1, ASCII codes…, -1]
-- otherwise (numbers before text, text in ASCII order), and a longer list sorts after its prefix —
-- exactly how numeric[] compares. Expects a version the registry accepted (SemanticVersion).
CREATE OR REPLACE FUNCTION orcastra.semver_key(p_version text) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v_dash integer := position('-' IN p_version);
    v_core text := CASE WHEN v_dash = 0 THEN p_version ELSE left(p_version, v_dash - 1) END;
    v_key numeric[] := string_to_array(v_core, '.')::numeric[];
    v_identifier text;
    v_character text;
BEGIN
    IF v_dash = 0 THEN RETURN v_key || 1::numeric; END IF;
    v_key := v_key || 0::numeric;
    FOREACH v_identifier IN ARRAY string_to_array(substr(p_version, v_dash + 1), '.') LOOP
        IF v_identifier ~ '^[0-9]+$' THEN
            v_key := v_key || ARRAY[0, v_identifier::numeric];
        ELSE
            v_key := v_key || 1::numeric;
            FOREACH v_character IN ARRAY regexp_split_to_array(v_identifier, '') LOOP
                v_key := v_key || ascii(v_character)::numeric;
            END LOOP;
            v_key := v_key || (-1)::numeric;
        END IF;
    END LOOP;
    RETURN v_key;
END
$$;

-- Signatures that changed (a parameter and result columns added): dropped so that the new
-- functions replace them rather than sit beside them as overloads. Calls written for the old
-- ones keep working: the new parameters come last and have defaults.
DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz);
DROP FUNCTION IF EXISTS orcastra.create_task_by_name(text, text, text, jsonb, text, integer, timestamptz);
DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz, boolean);
DROP FUNCTION IF EXISTS orcastra.create_task_by_name(text, text, text, jsonb, text, integer, timestamptz, boolean);
DROP FUNCTION IF EXISTS orcastra.create_tasks(bigint[], jsonb[], text[], integer[]);
DROP FUNCTION IF EXISTS orcastra.create_task(bigint, jsonb, text, integer, timestamptz, boolean, text);

-- Creates a task from a registered template (orcastra.templates.id) in one transaction: the task,
-- every step of the stored definition, the edges between them and the "created" audit rows.
--   p_context          the task's context (NULL means {})
--   p_idempotency_key  when a task of the same template (namespace/name, any version) has this key
--                      already, it is returned (created = false) and nothing is written; NULL never
--                      matches. The same key under another template makes a task of its own.
--   p_priority         higher runs first when workers are busy (copied to every step)
--   p_run_at           start no earlier than this; NULL or a time not in the future starts now
--   p_allow_deprecated a deprecated version is refused (OR004) unless this is true
--   p_traceparent      the W3C trace context the task's step attempts become spans of
--                      (docs/tracing.md); NULL starts a new trace; a malformed one raises OR025
--   p_parent_step      the workflow step this task is the sub-workflow of (functions/
--                      subworkflows.sql passes it; a step that is not a workflow step waiting to
--                      start raises OR018); NULL for a task of its own
-- Returns the task, whether it was made now, its state, and its real template (id and version:
-- for a key that matched, the version the earlier task runs). context_differs is true when a key
-- matched a task whose context is not equal (as jsonb) to p_context: that context was not used.
-- A task that starts now is 'in_progress' at once: its root steps are enqueued and their
-- namespaces notified at commit, so a worker can start without an orchestrator. A later start
-- leaves the task and its steps 'pending' until orcastra.start_due_tasks starts it.
-- Raises OR003 when there is no such template, OR004 when it is deprecated and not allowed (a
-- key that matched still returns its task: only new tasks are refused), OR017 when a `workflow:`
-- step of the template names a template that is not registered.
-- Lock order: this only inserts rows; the only row it may wait on is a concurrent insert of the
-- same idempotency key (then it returns that task once it commits).
CREATE OR REPLACE FUNCTION orcastra.create_task(p_template_id bigint, p_context jsonb DEFAULT '{}',
                                               p_idempotency_key text DEFAULT NULL, p_priority integer DEFAULT 0,
                                               p_run_at timestamptz DEFAULT NULL, p_allow_deprecated boolean DEFAULT false,
                                               p_traceparent text DEFAULT NULL, p_parent_step bigint DEFAULT NULL)
RETURNS TABLE (task_id uuid, created boolean, state text, template_id bigint, template_version text, context_differs boolean)
LANGUAGE plpgsql -- generic plans on indexes; hash joins of the template's own steps stay allowed: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_template record;
    v_parent_task uuid;
    v_depth integer := 0;
    v_missing text;
    v_scope text;
    v_task uuid;
    v_state text := CASE WHEN coalesce(p_run_at, now()) <= now() THEN 'in_progress' ELSE 'pending' END;
    -- A task that starts later says so: `task show` and `task events` read "scheduled".
    v_reason text := CASE WHEN coalesce(p_run_at, now()) <= now() THEN 'created' ELSE 'scheduled' END;
    v_namespaces text[];
    v_concurrency_scope text;
    v_concurrency_key text;
    v_waiting boolean := false;
    v_traceparent text := orcastra.task_traceparent(p_traceparent);
    v_conditional_roots bigint[];
    v_decided record;
BEGIN
    SELECT t.definition, t.namespace, t.name, t.version, t.deprecated_at, t.deprecation_reason INTO v_template
    FROM orcastra.templates t WHERE t.id = p_template_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template with id % is registered', p_template_id
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    v_scope := CASE WHEN p_idempotency_key IS NOT NULL THEN v_template.namespace || '/' || v_template.name END;

    IF v_template.deprecated_at IS NOT NULL AND NOT coalesce(p_allow_deprecated, false) THEN
        -- A submission repeated with its key still gets its task: only a new task is refused.
        RETURN QUERY
        SELECT t.id, false, t.state, t.template_id, tp.version, t.context IS DISTINCT FROM coalesce(p_context, '{}')
        FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
        WHERE t.idempotency_scope = v_scope AND t.idempotency_key = p_idempotency_key;
        IF FOUND THEN RETURN; END IF;
        RAISE EXCEPTION '%/%@% is deprecated (since %): new tasks are refused', v_template.namespace, v_template.name,
                        v_template.version, to_char(v_template.deprecated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                                            || coalesce(': ' || v_template.deprecation_reason, '')
            USING ERRCODE = 'OR004',
                  HINT = 'Submit without a version to take the current one, or pass p_allow_deprecated => true to run this version anyway.';
    END IF;

    -- Every template its `workflow:` steps call must exist now (which version an unpinned one
    -- takes is decided when the step starts: functions/subworkflows.sql).
    IF jsonb_path_exists(v_template.definition, '$.steps[*].workflow') THEN
        SELECT string_agg(format('step %s calls %s', d.step->>'name', d.step->>'workflow'), ', ') INTO v_missing
        FROM jsonb_array_elements(v_template.definition->'steps') AS d(step)
        WHERE d.step ? 'workflow' AND orcastra.workflow_template(d.step->>'workflow') IS NULL;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION '%/%@% cannot run: % — no such template is registered', v_template.namespace, v_template.name,
                            v_template.version, v_missing
                USING ERRCODE = 'OR017',
                      HINT = 'Register the templates its workflow: steps call first (`orcastra template register FILE`); a reference without a version needs a release that is not deprecated.';
        END IF;
    END IF;
    IF p_parent_step IS NOT NULL THEN
        SELECT s.task_id, t.workflow_depth + 1 INTO v_parent_task, v_depth
        FROM orcastra.steps s JOIN orcastra.tasks t ON t.id = s.task_id
        WHERE s.id = p_parent_step AND s.workflow IS NOT NULL AND s.state IN ('pending', 'error');
        IF NOT FOUND THEN
            RAISE EXCEPTION 'step % is not a workflow step waiting to start its sub-workflow', p_parent_step
                USING ERRCODE = 'OR018', HINT = 'Leave p_parent_step NULL: only the database starts sub-workflows.';
        END IF;
    END IF;

    -- A concurrency limit (functions/limits.sql): the key is evaluated now, once; a task that would
    -- start now waits as pending when its key has no free slot or older tasks wait for one.
    IF v_template.definition ? 'concurrency' THEN
        v_concurrency_scope := v_template.namespace || '/' || v_template.name;
        v_concurrency_key := orcastra.concurrency_key_of(v_template.definition->'concurrency'->>'key', coalesce(p_context, '{}'));
        IF v_state = 'in_progress' AND NOT orcastra.concurrency_slot_free(v_concurrency_scope, v_concurrency_key,
                                                                         (v_template.definition->'concurrency'->>'limit')::integer) THEN
            v_state := 'pending';
            v_reason := 'waiting for a concurrency slot (key ' || v_concurrency_key || ')';
            v_waiting := true;
        END IF;
    END IF;

    LOOP
        INSERT INTO orcastra.tasks AS t (template_id, state, state_reason, priority, idempotency_key, idempotency_scope,
                                         context, run_at, started_at, timeout_ms, concurrency_scope, concurrency_key,
                                         concurrency_limit, waiting_for_slot, waiting_since, traceparent,
                                         parent_step_id, parent_task_id, workflow_depth)
        VALUES (p_template_id, v_state, v_reason, coalesce(p_priority, 0), p_idempotency_key, v_scope, coalesce(p_context, '{}'),
                coalesce(p_run_at, now()), CASE WHEN v_state = 'in_progress' THEN now() END,
                (v_template.definition->>'timeout_ms')::bigint, v_concurrency_scope, v_concurrency_key,
                (v_template.definition->'concurrency'->>'limit')::integer, v_waiting, CASE WHEN v_waiting THEN clock_timestamp() END, v_traceparent,
                p_parent_step, v_parent_task, v_depth)
        ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING t.id INTO v_task;
        EXIT WHEN v_task IS NOT NULL;
        -- Only an idempotency-key conflict inserts nothing: return the task that holds the key.
        RETURN QUERY
        SELECT t.id, false, t.state, t.template_id, tp.version, t.context IS DISTINCT FROM coalesce(p_context, '{}')
        FROM orcastra.tasks t JOIN orcastra.templates tp ON tp.id = t.template_id
        WHERE t.idempotency_scope = v_scope AND t.idempotency_key = p_idempotency_key;
        IF FOUND THEN RETURN; END IF;
        -- It was deleted between the conflict and the look-up (retention): try again.
    END LOOP;

    INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason) VALUES (v_task, NULL, v_state, v_reason);

    WITH definition AS (
        SELECT d.n, d.step->>'name' AS name, d.step->>'namespace' AS namespace,
               (d.step->'retry'->>'max_attempts')::integer AS max_attempts,
               coalesce(jsonb_array_length(d.step->'depends_on'), 0) AS parents, d.step->'depends_on' AS depends_on,
               (d.step->>'concurrency')::integer AS step_limit,
               nullif(d.step->>'trigger', 'all_success') AS trigger_rule, (d.step->>'when')::jsonpath AS when_condition,
               (d.step->>'for_each')::jsonpath AS for_each, (d.step->>'max_parallel')::integer AS max_parallel,
               d.step->>'workflow' AS workflow
        FROM jsonb_array_elements(v_template.definition->'steps') WITH ORDINALITY AS d(step, n)
    ), limits AS (
        -- A step's `concurrency` (functions/claim.sql): its scope's limit, written once.
        INSERT INTO orcastra.step_limits (scope, namespace, max_running)
        SELECT p_template_id || ':' || d.name, d.namespace, d.step_limit FROM definition d WHERE d.step_limit IS NOT NULL
        ON CONFLICT (scope) DO NOTHING
    ), new_steps AS (
        -- Ids in the template's order. A root step with a `when:` stays pending: decided below.
        INSERT INTO orcastra.steps AS s (task_id, name, namespace, state, state_reason, priority, max_attempts, pending_parents, enqueued_at,
                                         limit_scope, trigger_rule, when_condition, for_each, max_parallel, workflow)
        SELECT v_task, d.name, d.namespace, ready.state, v_reason, coalesce(p_priority, 0), d.max_attempts, d.parents,
               CASE WHEN ready.state = 'enqueued' THEN now() END,
               CASE WHEN d.step_limit IS NOT NULL THEN p_template_id || ':' || d.name END,
               d.trigger_rule, d.when_condition, d.for_each, d.max_parallel, d.workflow
        FROM definition d
        CROSS JOIN LATERAL (SELECT CASE WHEN v_state = 'in_progress' AND d.parents = 0 AND d.when_condition IS NULL AND d.for_each IS NULL
                                             AND d.workflow IS NULL
                                        THEN 'enqueued' ELSE 'pending' END AS state) AS ready
        ORDER BY d.n
        RETURNING s.id, s.name, s.namespace, s.state, s.pending_parents, s.when_condition, s.for_each, s.workflow
    ), step_audit AS (
        INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason)
        SELECT n.id, v_task, NULL, n.state, 0, v_reason FROM new_steps n
    ), edges AS (
        INSERT INTO orcastra.step_edges (parent_id, child_id)
        SELECT parent.id, child.id
        FROM definition d
        CROSS JOIN jsonb_array_elements_text(d.depends_on) AS e(parent)
        JOIN new_steps AS child ON child.name = d.name
        JOIN new_steps AS parent ON parent.name = e.parent
    )
    SELECT array_agg(DISTINCT n.namespace) FILTER (WHERE n.state = 'enqueued'),
           array_agg(n.id ORDER BY n.id) FILTER (WHERE n.pending_parents = 0 AND (n.when_condition IS NOT NULL OR n.for_each IS NOT NULL
                                                                                  OR n.workflow IS NOT NULL))
    INTO v_namespaces, v_conditional_roots FROM new_steps n;

    -- Root steps with a `when:` in a task that starts now: enqueued or skipped now (a skip travels
    -- down); if that leaves nothing to run, the task is settled (complete) at once. A task with a
    -- step enqueued is running: settling it would only count its steps (10,000 instances of a
    -- fan-out root: 7–10 ms).
    IF v_conditional_roots IS NOT NULL AND v_state = 'in_progress' THEN
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_conditional_roots);
        v_namespaces := v_namespaces || v_decided.namespaces;
        IF coalesce(cardinality(v_namespaces), 0) = 0 THEN
            SELECT coalesce((SELECT x.state FROM orcastra.settle_tasks(ARRAY[v_task]) AS x), v_state) INTO v_state;
        END IF;
    END IF;

    -- Delivered at commit: the workers of each namespace with a root step wake once.
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN QUERY SELECT v_task, true, v_state, p_template_id, v_template.version::text, false;
END
$$;

-- Many tasks that start now, in one statement per kind of row: what create_task does for one,
-- set-based (measured: 1,000 one-step tasks in one call cost a fraction of 1,000 calls). For
-- callers that create tasks in bulk — the orchestrator's schedule firing — from templates they
-- checked: no deprecation check (a deprecated template is the caller's to refuse), no run_at.
--   p_templates, p_contexts, p_keys, p_priorities   one entry per task (a NULL context is {},
--                                                    a NULL key never matches, a NULL priority 0)
--   p_traceparents                                  one W3C traceparent per task, as create_task's
--                                                    p_traceparent (NULL, or a NULL entry: a new trace)
-- Returns one row per entry, n = its 1-based position: the task, and whether it was made now
-- (false: its key matched an existing task of that template, which is returned). Locks nothing
-- but the rows it inserts; notifies each namespace that got a root step once, at commit.
CREATE OR REPLACE FUNCTION orcastra.create_tasks(p_templates bigint[], p_contexts jsonb[], p_keys text[], p_priorities integer[],
                                                p_traceparents text[] DEFAULT NULL)
RETURNS TABLE (n integer, task_id uuid, created boolean)
LANGUAGE plpgsql -- generic plans on indexes; hash joins of the templates' own steps stay allowed: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_created integer[];
    v_ids uuid[];
    v_namespaces text[];
    v_conditional_roots bigint[];
    v_decided record;
    v_missing text;
BEGIN
    IF coalesce(cardinality(p_templates), 0) = 0 THEN RETURN; END IF;

    -- Every template the `workflow:` steps call must exist now, as create_task checks: the whole
    -- call is refused (OR017, nothing written), naming each template that cannot run; the
    -- schedule firer then fires its schedules one by one and records the error on the schedule
    -- concerned (ScheduleFirer.swift).
    SELECT string_agg(x.problem, '; ' ORDER BY x.problem) INTO v_missing FROM (
        SELECT format('%s/%s@%s cannot run: %s — no such template is registered', t.namespace, t.name, t.version,
                      string_agg(format('step %s calls %s', d.step->>'name', d.step->>'workflow'), ', ' ORDER BY d.n)) AS problem
        FROM orcastra.templates t CROSS JOIN LATERAL jsonb_array_elements(t.definition->'steps') WITH ORDINALITY AS d(step, n)
        WHERE t.id IN (SELECT DISTINCT unnest(p_templates)) AND jsonb_path_exists(t.definition, '$.steps[*].workflow')
          AND d.step ? 'workflow' AND orcastra.workflow_template(d.step->>'workflow') IS NULL
        GROUP BY t.id, t.namespace, t.name, t.version
    ) x;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION '%', v_missing
            USING ERRCODE = 'OR017',
                  HINT = 'Register the templates its workflow: steps call first (`orcastra template register FILE`); a reference without a version needs a release that is not deprecated.';
    END IF;

    -- Entries of a template with a concurrency limit take create_task's way, one by one (each
    -- decides under its key's lock whether it may start); the rest are made below, set-based.
    RETURN QUERY
    SELECT i.n::integer, c.task_id, c.created
    FROM unnest(p_templates, p_contexts, p_keys, p_priorities, coalesce(p_traceparents, '{}'))
         WITH ORDINALITY AS i(template_id, context, key, priority, traceparent, n)
    JOIN orcastra.templates t ON t.id = i.template_id AND t.definition ? 'concurrency'
    CROSS JOIN LATERAL orcastra.create_task(i.template_id, i.context, i.key, i.priority, NULL, true, i.traceparent) AS c
    ORDER BY i.n;

    -- One statement: every row of every new task (ids made here, so each is known by its entry).
    WITH input AS (
        SELECT i.n::integer AS n, gen_random_uuid() AS id, i.template_id, coalesce(i.context, '{}') AS context, i.key,
               coalesce(i.priority, 0) AS priority, t.definition,
               CASE WHEN i.key IS NOT NULL THEN t.namespace || '/' || t.name END AS scope,
               orcastra.task_traceparent(i.traceparent) AS traceparent
        FROM unnest(p_templates, p_contexts, p_keys, p_priorities, coalesce(p_traceparents, '{}'))
             WITH ORDINALITY AS i(template_id, context, key, priority, traceparent, n)
        JOIN orcastra.templates t ON t.id = i.template_id AND NOT t.definition ? 'concurrency'
    ), inserted AS (
        INSERT INTO orcastra.tasks AS t (id, template_id, state, state_reason, priority, idempotency_key, idempotency_scope,
                                         context, run_at, started_at, timeout_ms, traceparent)
        SELECT i.id, i.template_id, 'in_progress', 'created', i.priority, i.key, i.scope, i.context, now(), now(),
               (i.definition->>'timeout_ms')::bigint, i.traceparent
        FROM input i ORDER BY i.n
        ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING t.id
    ), made AS (
        SELECT i.* FROM input i JOIN inserted USING (id)
    ), task_audit AS (
        INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason)
        SELECT m.id, NULL, 'in_progress', 'created' FROM made m
    ), definition AS (
        SELECT m.id AS task_id, m.priority, d.n, d.step->>'name' AS name, d.step->>'namespace' AS namespace,
               (d.step->'retry'->>'max_attempts')::integer AS max_attempts,
               coalesce(jsonb_array_length(d.step->'depends_on'), 0) AS parents, d.step->'depends_on' AS depends_on,
               (d.step->>'concurrency')::integer AS step_limit, m.template_id,
               nullif(d.step->>'trigger', 'all_success') AS trigger_rule, (d.step->>'when')::jsonpath AS when_condition,
               (d.step->>'for_each')::jsonpath AS for_each, (d.step->>'max_parallel')::integer AS max_parallel,
               d.step->>'workflow' AS workflow
        FROM made m CROSS JOIN LATERAL jsonb_array_elements(m.definition->'steps') WITH ORDINALITY AS d(step, n)
    ), limits AS (
        INSERT INTO orcastra.step_limits (scope, namespace, max_running)
        SELECT DISTINCT ON (d.template_id, d.name) d.template_id || ':' || d.name, d.namespace, d.step_limit
        FROM definition d WHERE d.step_limit IS NOT NULL
        ON CONFLICT (scope) DO NOTHING
    ), new_steps AS (
        INSERT INTO orcastra.steps AS s (task_id, name, namespace, state, state_reason, priority, max_attempts, pending_parents, enqueued_at,
                                         limit_scope, trigger_rule, when_condition, for_each, max_parallel, workflow)
        SELECT d.task_id, d.name, d.namespace,
               CASE WHEN d.parents = 0 AND d.when_condition IS NULL AND d.for_each IS NULL AND d.workflow IS NULL THEN 'enqueued' ELSE 'pending' END, 'created',
               d.priority, d.max_attempts, d.parents,
               CASE WHEN d.parents = 0 AND d.when_condition IS NULL AND d.for_each IS NULL AND d.workflow IS NULL THEN now() END,
               CASE WHEN d.step_limit IS NOT NULL THEN d.template_id || ':' || d.name END,
               d.trigger_rule, d.when_condition, d.for_each, d.max_parallel, d.workflow
        FROM definition d
        ORDER BY d.task_id, d.n
        RETURNING s.id, s.task_id, s.name, s.namespace, s.state, s.pending_parents, s.when_condition, s.for_each, s.workflow
    ), step_audit AS (
        INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason)
        SELECT s.id, s.task_id, NULL, s.state, 0, 'created' FROM new_steps s
    ), edges AS (
        INSERT INTO orcastra.step_edges (parent_id, child_id)
        SELECT parent.id, child.id
        FROM definition d
        CROSS JOIN jsonb_array_elements_text(d.depends_on) AS e(parent)
        JOIN new_steps AS child ON child.task_id = d.task_id AND child.name = d.name
        JOIN new_steps AS parent ON parent.task_id = d.task_id AND parent.name = e.parent
    )
    SELECT array_agg(m.n ORDER BY m.n), array_agg(m.id ORDER BY m.n),
           (SELECT array_agg(DISTINCT s.namespace) FILTER (WHERE s.state = 'enqueued') FROM new_steps s),
           (SELECT array_agg(s.id ORDER BY s.id) FILTER (WHERE s.pending_parents = 0 AND (s.when_condition IS NOT NULL OR s.for_each IS NOT NULL
                                                                                          OR s.workflow IS NOT NULL)) FROM new_steps s)
    INTO v_created, v_ids, v_namespaces, v_conditional_roots
    FROM made m;
    -- Root steps with a `when:`: enqueued or skipped now, as create_task does.
    IF v_conditional_roots IS NOT NULL THEN
        SELECT * INTO v_decided FROM orcastra.decide_steps(v_conditional_roots);
        v_namespaces := v_namespaces || v_decided.namespaces;
        PERFORM orcastra.settle_tasks(ARRAY(SELECT s.task_id FROM orcastra.steps s WHERE s.id = ANY (v_conditional_roots)));
    END IF;

    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN QUERY
    SELECT c.n, c.id, true FROM unnest(coalesce(v_created, '{}'), coalesce(v_ids, '{}')) AS c(n, id)
    UNION ALL
    -- Entries whose key matched an existing task: that task (keys are unique per template).
    SELECT i.n::integer, t.id, false
    FROM unnest(p_templates, p_keys) WITH ORDINALITY AS i(template_id, key, n)
    JOIN orcastra.templates tp ON tp.id = i.template_id
    JOIN orcastra.tasks t ON t.idempotency_scope = tp.namespace || '/' || tp.name AND t.idempotency_key = i.key
    WHERE i.key IS NOT NULL AND NOT i.n = ANY (coalesce(v_created, '{}'))
      AND NOT tp.definition ? 'concurrency';
END
$$;

-- The template a reference takes, or NULL when none. Which version:
--   p_version given     that version (deprecated or not: create_task decides whether it may run);
--   p_version NULL      the template's default version when one is set (`orcastra template
--                       default`), else its highest release that is not deprecated, by semver
--                       precedence — never a prerelease, never a deprecated version.
-- This is the one place SQL decides it; TemplateVersionRule (Sources/OrcastraStore) is the same
-- rule in Swift, and TemplateLifecycleTests checks that both pick the same version. Submissions by
-- name and schedules (at each firing) resolve with it.
CREATE OR REPLACE FUNCTION orcastra.resolve_template(p_namespace text, p_name text, p_version text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
DECLARE
    v_template bigint;
BEGIN
    IF p_version IS NOT NULL THEN
        SELECT t.id INTO v_template FROM orcastra.templates t
        WHERE t.namespace = p_namespace AND t.name = p_name AND t.version = p_version;
        RETURN v_template;
    END IF;
    SELECT t.id INTO v_template FROM orcastra.template_defaults d
    JOIN orcastra.templates t ON t.namespace = d.namespace AND t.name = d.name AND t.version = d.version
    WHERE d.namespace = p_namespace AND d.name = p_name;
    IF FOUND THEN RETURN v_template; END IF;
    SELECT t.id INTO v_template FROM orcastra.templates t
    WHERE t.namespace = p_namespace AND t.name = p_name
      AND position('-' IN t.version) = 0 AND t.deprecated_at IS NULL
    ORDER BY orcastra.semver_key(t.version) DESC
    LIMIT 1;
    RETURN v_template;
END
$$;

-- The same by reference, for callers that know a template by name; the version is
-- orcastra.resolve_template's. A pinned deprecated version runs only with p_allow_deprecated =>
-- true; for an unpinned reference p_allow_deprecated has no effect.
-- Raises OR003 when nothing matches (nothing registered, no such version, or no version an
-- unpinned reference can take), OR004 from create_task for a deprecated version not allowed.
-- A name of its own, not an overload of create_task: drivers that send parameters untyped (as
-- node-postgres does) would make PostgreSQL pick between the two by guessing, or refuse (42725).
CREATE OR REPLACE FUNCTION orcastra.create_task_by_name(p_namespace text, p_name text, p_version text DEFAULT NULL,
                                                       p_context jsonb DEFAULT '{}', p_idempotency_key text DEFAULT NULL,
                                                       p_priority integer DEFAULT 0, p_run_at timestamptz DEFAULT NULL,
                                                       p_allow_deprecated boolean DEFAULT false, p_traceparent text DEFAULT NULL)
RETURNS TABLE (task_id uuid, created boolean, state text, template_id bigint, template_version text, context_differs boolean)
LANGUAGE plpgsql -- generic plans on indexes; hash joins of the template's own steps stay allowed: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
DECLARE
    v_template bigint := orcastra.resolve_template(p_namespace, p_name, p_version);
    v_registered text;
BEGIN
    IF v_template IS NULL THEN
        SELECT string_agg(t.version || CASE WHEN t.deprecated_at IS NOT NULL THEN ' deprecated' ELSE '' END, ', '
                          ORDER BY orcastra.semver_key(t.version)) INTO v_registered
        FROM orcastra.templates t WHERE t.namespace = p_namespace AND t.name = p_name;
        IF p_version IS NULL AND v_registered IS NOT NULL THEN
            RAISE EXCEPTION '% has no version a reference without one can take (registered: %): it takes the default version, else the highest release that is not deprecated',
                            p_namespace || '/' || p_name, v_registered
                USING ERRCODE = 'OR003',
                      HINT = 'Pass the version to run (p_version; a deprecated one also needs p_allow_deprecated => true), or set a default with `orcastra template default`.';
        END IF;
        RAISE EXCEPTION 'no template % is registered', p_namespace || '/' || p_name || coalesce('@' || p_version, '')
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    RETURN QUERY SELECT * FROM orcastra.create_task(v_template, p_context, p_idempotency_key, p_priority, p_run_at,
                                                    p_version IS NOT NULL AND coalesce(p_allow_deprecated, false),
                                                    p_traceparent);
END
$$;
