-- The worker registry (table in 0003_worker_registry.sql; docs/worker-protocol.md#the-worker-registry):
-- a worker registers at start, beats with its heartbeat round and deregisters at a clean exit;
-- operators read orcastra.worker_status (`orcastra worker list`); the orchestrator prunes.
--
-- Each call touches rows of orcastra.workers only, never steps or tasks, and no Orcastra function
-- locks a worker row together with steps or tasks: the registry cannot take part in a deadlock
-- with the lock order of the protocol (steps by id, then tasks by id).

-- How long after its last beat a worker counts as gone: three beats missed, and never less than
-- 30 seconds (a busy database or a long garbage-collection pause is not a death).
CREATE OR REPLACE FUNCTION orcastra.worker_stale_after(p_heartbeat_ms integer) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(3 * p_heartbeat_ms * interval '1 millisecond', interval '30 seconds');
$$;

-- Registers a worker at start (or again, when its beat found no row). An existing row with this id
-- is replaced: a restarted worker with the same name takes it over. `p_started_at` keeps the
-- first start when re-registering; NULL means now.
--
-- Returns the start time stored, and `displaced`: 'HOST pid PID' when the row replaced belonged
-- to another process that was still live — two running workers share a name (--worker-id),
-- which makes leases, logs and this registry ambiguous. NULL otherwise.
CREATE OR REPLACE FUNCTION orcastra.register_worker(p_id text, p_namespace text, p_host text, p_pid integer,
                                                    p_version text, p_concurrency integer, p_heartbeat_ms integer,
                                                    p_started_at timestamptz DEFAULT NULL)
RETURNS TABLE (started_at timestamptz, displaced text)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
#variable_conflict use_column
DECLARE
    v_previous orcastra.workers;
BEGIN
    PERFORM orcastra.require_namespace(p_namespace);
    SELECT * INTO v_previous FROM orcastra.workers w WHERE w.id = p_id FOR UPDATE;
    -- A worker name registered by another login role is not this caller's to take over.
    IF v_previous.login_role IS DISTINCT FROM session_user AND v_previous.id IS NOT NULL AND NOT orcastra.caller_is_admin() THEN
        RAISE EXCEPTION 'worker id % is registered by another role', quote_literal(p_id) USING ERRCODE = '42501',
            HINT = 'Give this worker another --worker-id.';
    END IF;
    INSERT INTO orcastra.workers AS w (id, namespace, host, pid, version, concurrency, running_steps, heartbeat_ms,
                                       started_at, last_seen_at, login_role)
    VALUES (p_id, p_namespace, p_host, p_pid, p_version, p_concurrency, 0, p_heartbeat_ms, coalesce(p_started_at, now()), now(),
            session_user)
    ON CONFLICT (id) DO UPDATE
    SET namespace = EXCLUDED.namespace, host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
        concurrency = EXCLUDED.concurrency, running_steps = 0, heartbeat_ms = EXCLUDED.heartbeat_ms,
        started_at = EXCLUDED.started_at, last_seen_at = EXCLUDED.last_seen_at, login_role = EXCLUDED.login_role
    RETURNING w.started_at INTO started_at;
    displaced := CASE WHEN v_previous.id IS NOT NULL
                           AND (v_previous.host, v_previous.pid) IS DISTINCT FROM (p_host, p_pid)
                           AND v_previous.last_seen_at >= now() - orcastra.worker_stale_after(v_previous.heartbeat_ms)
                      THEN v_previous.host || ' pid ' || v_previous.pid END;
    RETURN NEXT;
END
$$;

-- A worker's beat: it is alive and holds `p_running_steps` steps (claimed, outcome not yet
-- reported). Returns false when it has no row (pruned while the process was stopped, or deleted
-- by hand): the worker then registers again.
CREATE OR REPLACE FUNCTION orcastra.heartbeat_worker(p_id text, p_running_steps integer) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
BEGIN
    UPDATE orcastra.workers SET last_seen_at = now(), running_steps = greatest(p_running_steps, 0)
    WHERE id = p_id AND (login_role IS NOT DISTINCT FROM session_user OR orcastra.caller_is_admin());
    RETURN FOUND;
END
$$;

-- A clean exit: the worker's row goes. Returns whether there was one. Like the beat, it touches
-- only a row the calling login role registered (any row, for an admin).
CREATE OR REPLACE FUNCTION orcastra.deregister_worker(p_id text) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
BEGIN
    DELETE FROM orcastra.workers WHERE id = p_id AND (login_role IS NOT DISTINCT FROM session_user OR orcastra.caller_is_admin());
    RETURN FOUND;
END
$$;

-- An orchestrator chore: deletes the rows of workers not heard from for `p_stale_for` (never a
-- live one, whatever the argument). Safe from any number of orchestrators at once (SKIP LOCKED).
-- Returns how many it deleted.
CREATE OR REPLACE FUNCTION orcastra.prune_workers(p_stale_for interval DEFAULT interval '24 hours') RETURNS integer
LANGUAGE sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    WITH gone AS (
        DELETE FROM orcastra.workers w
        WHERE w.id IN (SELECT x.id FROM orcastra.workers x
                       WHERE x.last_seen_at < now() - greatest(p_stale_for, orcastra.worker_stale_after(x.heartbeat_ms))
                       FOR UPDATE SKIP LOCKED)
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone;
$$;

-- The namespaces the steps of registered templates use: what a worker checks its own against at
-- start (a namespace no template uses gets no work until one does). Reads every definition once.
CREATE OR REPLACE FUNCTION orcastra.step_namespaces() RETURNS SETOF text
LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
    SELECT DISTINCT step ->> 'namespace'
    FROM orcastra.templates t, jsonb_array_elements(t.definition -> 'steps') AS step
    WHERE step ->> 'namespace' IS NOT NULL
    ORDER BY 1;
$$;

-- Every registered worker with whether it is stale (killed, or cut off from the database).
DROP VIEW IF EXISTS orcastra.worker_status;
CREATE VIEW orcastra.worker_status AS
SELECT w.id, w.namespace, w.host, w.pid, w.version, w.concurrency, w.running_steps, w.heartbeat_ms,
       w.started_at, w.last_seen_at,
       w.last_seen_at < now() - orcastra.worker_stale_after(w.heartbeat_ms) AS stale
FROM orcastra.workers w;
