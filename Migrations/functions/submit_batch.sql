-- Group commit for submissions (docs/api.md, "Submissions arriving together"): the HTTP API sends
-- the POST /v1/tasks requests that are waiting at the same moment as one call, so they share one
-- transaction and one commit. Each entry is orcastra.create_task's own call with its own
-- parameters, so each keeps create_task's exact semantics (run_at, deprecation, idempotency keys,
-- concurrency limits, sub-workflow checks); each runs in a subtransaction of its own, so an entry
-- that create_task refuses (an Orcastra SQLSTATE, OR…) comes back as that entry's error while the
-- others are made. Any other error (a deadlock, a lost connection) fails the whole call, which
-- then made nothing: the caller sends those entries again one by one.
--   p_templates … p_traceparents   one entry per task, as create_task's parameters of the same names
-- Returns one row per entry, n = its 1-based position: create_task's row, or error_code and
-- error_message (SQLSTATE and message of create_task's refusal; the other columns NULL).
-- Two entries with one idempotency key (of one template) get the same task: the later one finds
-- the earlier one's row (created = false).
-- Lock order: entries run in the order of the locks they may wait for — concurrency keys, then
-- idempotency keys (scope, key) — so two calls at once wait for each other rather than deadlock.
-- At most 64 entries a call: each is a subtransaction, and PostgreSQL tracks 64 per transaction
-- cheaply (more overflow every other session's snapshots).
CREATE OR REPLACE FUNCTION orcastra.create_task_batch(p_templates bigint[], p_contexts jsonb[], p_keys text[], p_priorities integer[],
                                                      p_run_ats timestamptz[], p_allow_deprecated boolean[], p_traceparents text[])
RETURNS TABLE (n integer, task_id uuid, created boolean, state text, template_version text, context_differs boolean,
               error_code text, error_message text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
#variable_conflict use_column
DECLARE
    v_entry record;
    v_made record;
BEGIN
    IF cardinality(p_templates) > 64 THEN
        RAISE EXCEPTION 'create_task_batch takes at most 64 entries, not %', cardinality(p_templates)
            USING ERRCODE = '54000', HINT = 'Split the entries into calls of 64 or fewer.';
    END IF;
    FOR v_entry IN
        SELECT i.*
        FROM unnest(p_templates, p_contexts, p_keys, p_priorities, p_run_ats, p_allow_deprecated, p_traceparents)
             WITH ORDINALITY AS i(template_id, context, key, priority, run_at, allow_deprecated, traceparent, n)
        LEFT JOIN orcastra.templates t ON t.id = i.template_id
        ORDER BY CASE WHEN t.definition ? 'concurrency' THEN t.namespace || '/' || t.name END NULLS LAST,
                 CASE WHEN t.definition ? 'concurrency'
                      THEN jsonb_path_query_first(jsonb_build_object('context', i.context),
                                                  (t.definition->'concurrency'->>'key')::jsonpath) #>> '{}' END NULLS LAST,
                 CASE WHEN i.key IS NOT NULL THEN t.namespace || '/' || t.name END NULLS LAST, i.key NULLS LAST, i.n
    LOOP
        BEGIN
            SELECT c.task_id, c.created, c.state, c.template_version, c.context_differs INTO STRICT v_made
            FROM orcastra.create_task(v_entry.template_id, v_entry.context, v_entry.key, v_entry.priority, v_entry.run_at,
                                      v_entry.allow_deprecated, v_entry.traceparent) AS c;
            RETURN QUERY SELECT v_entry.n::integer, v_made.task_id, v_made.created, v_made.state, v_made.template_version,
                                v_made.context_differs, NULL::text, NULL::text;
        EXCEPTION WHEN OTHERS THEN
            -- Only create_task's own refusals belong to the entry; anything else fails the call.
            IF SQLSTATE NOT LIKE 'OR%' THEN RAISE; END IF;
            RETURN QUERY SELECT v_entry.n::integer, NULL::uuid, NULL::boolean, NULL::text, NULL::text, NULL::boolean,
                                SQLSTATE::text, SQLERRM::text;
        END;
    END LOOP;
END
$$;
