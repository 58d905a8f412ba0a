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

-- Creates a task from a registered template (orcastra.templates.id) in one transaction: the task,
-- every step of the stored definition, the edges between them and the "created" audit rows.
--   p_context          the task's context (NULL means {})
--   p_idempotency_key  when a task with this key exists already, it is returned (created = false)
--                      and nothing is written; NULL never matches
--   p_priority         higher runs first when workers are busy (copied to every step)
--   p_run_at           start no earlier than this; NULL or a time not in the future starts now
-- A task that starts now is 'in_progress' at once: its root steps are enqueued and their
-- namespaces notified at commit, so a worker can start without an orchestrator. A later start
-- leaves the task and its steps 'pending' until orcastra.start_due_tasks starts it.
-- Raises OR003 when there is no such template.
-- Lock order: this only inserts rows; the only row it may wait on is a concurrent insert of the
-- same idempotency key (then it returns that task once it commits).
CREATE OR REPLACE FUNCTION orcastra.create_task(p_template_id bigint, p_context jsonb DEFAULT '{}',
                                               p_idempotency_key text DEFAULT NULL, p_priority integer DEFAULT 0,
                                               p_run_at timestamptz DEFAULT NULL)
RETURNS TABLE (task_id uuid, created boolean, state text)
LANGUAGE plpgsql -- generic plans on indexes; hash joins of the template's own steps stay allowed: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_definition jsonb;
    v_task uuid;
    v_state text := CASE WHEN coalesce(p_run_at, now()) <= now() THEN 'in_progress' ELSE 'pending' END;
    -- A task that starts later says so: `task show` and `task events` read "scheduled".
    v_reason text := CASE WHEN coalesce(p_run_at, now()) <= now() THEN 'created' ELSE 'scheduled' END;
    v_namespaces text[];
BEGIN
    SELECT t.definition INTO v_definition FROM orcastra.templates t WHERE t.id = p_template_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template with id % is registered', p_template_id
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    LOOP
        INSERT INTO orcastra.tasks AS t (template_id, state, state_reason, priority, idempotency_key, context, run_at, started_at)
        VALUES (p_template_id, v_state, v_reason, coalesce(p_priority, 0), p_idempotency_key, coalesce(p_context, '{}'),
                coalesce(p_run_at, now()), CASE WHEN v_state = 'in_progress' THEN now() END)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING t.id INTO v_task;
        EXIT WHEN v_task IS NOT NULL;
        -- Only an idempotency-key conflict inserts nothing: return the task that holds the key.
        RETURN QUERY SELECT t.id, false, t.state FROM orcastra.tasks t WHERE t.idempotency_key = p_idempotency_key;
        IF FOUND THEN RETURN; END IF;
        -- It was deleted between the conflict and the look-up (retention): try again.
    END LOOP;

    INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason) VALUES (v_task, NULL, v_state, v_reason);

    WITH definition AS (
        SELECT d.n, d.step->>'name' AS name, d.step->>'namespace' AS namespace,
               (d.step->'retry'->>'max_attempts')::integer AS max_attempts,
               coalesce(jsonb_array_length(d.step->'depends_on'), 0) AS parents, d.step->'depends_on' AS depends_on
        FROM jsonb_array_elements(v_definition->'steps') WITH ORDINALITY AS d(step, n)
    ), new_steps AS (
        -- Ids in the template's order.
        INSERT INTO orcastra.steps AS s (task_id, name, namespace, state, state_reason, priority, max_attempts, pending_parents, enqueued_at)
        SELECT v_task, d.name, d.namespace, ready.state, v_reason, coalesce(p_priority, 0), d.max_attempts, d.parents,
               CASE WHEN ready.state = 'enqueued' THEN now() END
        FROM definition d
        CROSS JOIN LATERAL (SELECT CASE WHEN v_state = 'in_progress' AND d.parents = 0
                                        THEN 'enqueued' ELSE 'pending' END AS state) AS ready
        ORDER BY d.n
        RETURNING s.id, s.name, s.namespace, s.state
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
    SELECT array_agg(DISTINCT n.namespace) FILTER (WHERE n.state = 'enqueued') INTO v_namespaces FROM new_steps n;

    -- Delivered at commit: the workers of each namespace with a root step wake once.
    PERFORM orcastra.notify_namespaces(v_namespaces);
    RETURN QUERY SELECT v_task, true, v_state;
END
$$;

-- The same by reference, for callers that know a template by name: p_version NULL takes the
-- highest release by semver precedence, never a prerelease (as `orcastra submit namespace/name` does).
-- Raises OR003 when nothing matches.
-- A name of its own, not an overload of create_task: drivers that send parameters untyped (as
-- node-postgres does) would make PostgreSQL pick between the two by guessing, or refuse (42725).
CREATE OR REPLACE FUNCTION orcastra.create_task_by_name(p_namespace text, p_name text, p_version text DEFAULT NULL,
                                                       p_context jsonb DEFAULT '{}', p_idempotency_key text DEFAULT NULL,
                                                       p_priority integer DEFAULT 0, p_run_at timestamptz DEFAULT NULL)
RETURNS TABLE (task_id uuid, created boolean, state text)
LANGUAGE plpgsql -- generic plans on indexes; hash joins of the template's own steps stay allowed: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
DECLARE
    v_template bigint;
BEGIN
    -- Without a version: the highest release. A prerelease runs only when named.
    SELECT t.id INTO v_template FROM orcastra.templates t
    WHERE t.namespace = p_namespace AND t.name = p_name
      AND (t.version = p_version OR (p_version IS NULL AND position('-' IN t.version) = 0))
    ORDER BY orcastra.semver_key(t.version) DESC
    LIMIT 1;
    IF NOT FOUND AND p_version IS NULL AND EXISTS (SELECT 1 FROM orcastra.templates t WHERE t.namespace = p_namespace AND t.name = p_name) THEN
        RAISE EXCEPTION '% has prerelease versions only; without a version the highest release is taken', p_namespace || '/' || p_name
            USING ERRCODE = 'OR003', HINT = 'Pass the version to run (p_version), e.g. the one `orcastra template list` shows.';
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template % is registered', p_namespace || '/' || p_name || coalesce('@' || p_version, '')
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    RETURN QUERY SELECT * FROM orcastra.create_task(v_template, p_context, p_idempotency_key, p_priority, p_run_at);
END
$$;
