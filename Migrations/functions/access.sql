-- Who may do what (docs/security.md). `orcastra roles setup` creates five cluster-wide group roles
-- and makes orcastra_admin the owner of the schema and of everything in it; from then on:
--
--   orcastra_admin         owns everything: migrate, register templates, operator actions
--   orcastra_worker        EXECUTE on the worker-protocol functions only, one namespace per grant
--                          (orcastra.namespace_grants, `orcastra roles grant-worker`)
--   orcastra_submitter     create, read and cancel tasks (and everything orcastra_reader may)
--   orcastra_reader        SELECT on the tables and views the read-only commands show
--   orcastra_orchestrator  EXECUTE on the time-driven chores, and the schedules they fire
--
-- Every function a non-admin role may call and that touches a table is SECURITY DEFINER (it runs
-- as its owner, orcastra_admin) with `SET search_path = pg_catalog, orcastra, pg_temp`, the safe
-- pattern of PostgreSQL's documentation: a caller's own search_path (or a schema it made) cannot
-- put an object or operator in front of the ones these functions mean, and pg_temp comes last.
-- No function is executable by PUBLIC: apply_grants revokes that default after every migrate.
--
-- The caller of a SECURITY DEFINER function is session_user: inside it current_user is the owner.
-- session_user is the login role, whatever `SET ROLE` it did since; as it could SET ROLE only to
-- roles it belongs to, it never has less than the role it switched to, so nothing is gained by
-- switching.

-- Whether the calling login role may do anything: a superuser, or a member of the schema's owner
-- (orcastra_admin once roles are set up; before that, whoever migrated). pg_has_role is true for
-- superusers.
--
-- This and may_work are PL/pgSQL, not SQL: a SQL function with a subquery is never inlined and is
-- planned anew at every call (0.6 ms, twice a whole claim), where PL/pgSQL keeps its plans for the
-- session (docs/security.md, "Cost").
CREATE OR REPLACE FUNCTION orcastra.caller_is_admin() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(pg_catalog.pg_has_role(session_user,
                    (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'orcastra'), 'MEMBER'), false);
END
$$;

-- Whether the calling login role may work `p_namespace`: an admin may work any; anyone else only
-- a namespace granted to it (or to a group role it belongs to). The namespace is only ever
-- compared, never put into a statement's text.
-- claim_steps (claim.sql) holds a copy of this test in its pick: change both.
CREATE OR REPLACE FUNCTION orcastra.may_work(p_namespace text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(pg_catalog.pg_has_role(session_user,
                    (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'orcastra'), 'MEMBER'), false)
        OR EXISTS (SELECT 1 FROM orcastra.namespace_grants g
                   WHERE g.namespace = p_namespace
                     AND coalesce(pg_catalog.pg_has_role(session_user, g.role::oid, 'MEMBER'), false));
END
$$;

-- Refuses (SQLSTATE OR007) a namespace the calling login role may not work.
CREATE OR REPLACE FUNCTION orcastra.require_namespace(p_namespace text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT orcastra.may_work(p_namespace) THEN
        RAISE EXCEPTION 'role % may not work namespace %', pg_catalog.quote_ident(session_user), pg_catalog.quote_literal(p_namespace)
            USING ERRCODE = 'OR007',
                  HINT = 'An administrator grants it with `orcastra roles grant-worker ROLE --namespace NAMESPACE`.';
    END IF;
END
$$;

-- Makes the privileges of the roles exact; run by `orcastra roles setup` and after every
-- `orcastra migrate` (so a function or view added or re-created later is covered too).
--   Always: no function of the schema is executable by PUBLIC.
--   When roles are set up in this database (orcastra_admin owns the schema): every table, view and
--   function belongs to orcastra_admin (objects created since by a superuser or a member), and
--   each role has exactly its privileges below (revoked first, then granted).
-- Returns what it did, one line each.
CREATE OR REPLACE FUNCTION orcastra.apply_grants() RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_schema oid := (SELECT n.oid FROM pg_namespace n WHERE n.nspname = 'orcastra');
    v_owner oid := (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'orcastra');
    v_admin oid := (SELECT r.oid FROM pg_roles r WHERE r.rolname = 'orcastra_admin');
    v_object record;
    v_role text;
    v_grant record;
BEGIN
    EXECUTE 'REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orcastra FROM PUBLIC';
    IF v_admin IS NULL OR v_owner IS DISTINCT FROM v_admin THEN
        RETURN NEXT 'roles not set up in this database: only EXECUTE for PUBLIC revoked';
        RETURN;
    END IF;

    FOR v_object IN
        SELECT format('TABLE %s', c.oid::regclass) AS target FROM pg_class c
        WHERE c.relnamespace = v_schema AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relowner <> v_admin
        UNION ALL
        SELECT format('FUNCTION %s', p.oid::regprocedure) FROM pg_proc p
        WHERE p.pronamespace = v_schema AND p.proowner <> v_admin
    LOOP
        EXECUTE format('ALTER %s OWNER TO orcastra_admin', v_object.target);
        RETURN NEXT format('%s now belongs to orcastra_admin', v_object.target);
    END LOOP;

    FOREACH v_role IN ARRAY ARRAY['orcastra_worker', 'orcastra_submitter', 'orcastra_reader', 'orcastra_orchestrator'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = v_role);
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orcastra FROM %I', v_role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA orcastra FROM %I', v_role);
        EXECUTE format('GRANT USAGE ON SCHEMA orcastra TO %I', v_role);
    END LOOP;

    FOR v_grant IN
        SELECT g.role, g.privilege, g.object FROM (VALUES
            -- The worker protocol (docs/worker-protocol.md), and nothing else.
            ('orcastra_worker', 'EXECUTE', 'claim_steps'), ('orcastra_worker', 'EXECUTE', 'heartbeat_steps'),
            ('orcastra_worker', 'EXECUTE', 'report_steps'), ('orcastra_worker', 'EXECUTE', 'report_steps_then_claim'), ('orcastra_worker', 'EXECUTE', 'take_notifications'), ('orcastra_worker', 'EXECUTE', 'send_notifications'), ('orcastra_worker', 'EXECUTE', 'complete_steps'),
            ('orcastra_worker', 'EXECUTE', 'fail_steps'), ('orcastra_worker', 'EXECUTE', 'release_steps'),
            ('orcastra_worker', 'EXECUTE', 'register_worker'), ('orcastra_worker', 'EXECUTE', 'heartbeat_worker'),
            ('orcastra_worker', 'EXECUTE', 'deregister_worker'), ('orcastra_worker', 'EXECUTE', 'namespace_channel'),
            ('orcastra_worker', 'EXECUTE', 'step_namespaces'), ('orcastra_worker', 'EXECUTE', 'template_definition'),
            ('orcastra_worker', 'EXECUTE', 'worker_stale_after'), ('orcastra_worker', 'EXECUTE', 'complete_step_in_transaction'),
            -- Reading: every table and view (contexts and results included: docs/security.md), and
            -- the pure helpers views and the read-only commands call.
            ('orcastra_reader', 'SELECT', '*'),
            ('orcastra_reader', 'EXECUTE', 'worker_stale_after'), ('orcastra_reader', 'EXECUTE', 'namespace_channel'),
            ('orcastra_reader', 'EXECUTE', 'semver_key'), ('orcastra_reader', 'EXECUTE', 'resolve_template'),
            ('orcastra_reader', 'EXECUTE', 'schedule_instant_text'), ('orcastra_reader', 'EXECUTE', 'step_namespaces'),
            ('orcastra_reader', 'EXECUTE', 'next_due'),
            -- Submitting (a member of orcastra_reader too: roles setup grants it).
            ('orcastra_submitter', 'EXECUTE', 'create_task'), ('orcastra_submitter', 'EXECUTE', 'create_tasks'),
            ('orcastra_submitter', 'EXECUTE', 'create_task_by_name'), ('orcastra_submitter', 'EXECUTE', 'cancel_task'),
            ('orcastra_submitter', 'EXECUTE', 'create_task_batch'),
            ('orcastra_submitter', 'EXECUTE', 'take_notifications'), ('orcastra_submitter', 'EXECUTE', 'send_notifications'),
            -- The orchestrator's chores and schedules (ScheduleFirer locks due schedules FOR UPDATE).
            ('orcastra_orchestrator', 'EXECUTE', 'start_due_tasks'), ('orcastra_orchestrator', 'EXECUTE', 'enqueue_due_retries'),
            ('orcastra_orchestrator', 'EXECUTE', 'recover_expired_leases'), ('orcastra_orchestrator', 'EXECUTE', 'settle_stalled_tasks'),
            ('orcastra_orchestrator', 'EXECUTE', 'next_due'), ('orcastra_orchestrator', 'EXECUTE', 'prune_workers'),
            ('orcastra_orchestrator', 'EXECUTE', 'fail_overdue_tasks'),
            ('orcastra_orchestrator', 'EXECUTE', 'advance_subworkflows'), ('orcastra_orchestrator', 'EXECUTE', 'cancel_orphaned_subworkflows'),
            ('orcastra_orchestrator', 'EXECUTE', 'fire_schedules'), ('orcastra_orchestrator', 'EXECUTE', 'resolve_template'),
            ('orcastra_orchestrator', 'EXECUTE', 'semver_key'), ('orcastra_orchestrator', 'EXECUTE', 'schedule_instant_text'),
            ('orcastra_orchestrator', 'EXECUTE', 'prune_expired_tasks'), ('orcastra_orchestrator', 'EXECUTE', 'maintain_history_partitions'),
            ('orcastra_orchestrator', 'SELECT', 'templates'), ('orcastra_orchestrator', 'SELECT', 'template_defaults'),
            ('orcastra_orchestrator', 'SELECT', 'schedules'), ('orcastra_orchestrator', 'UPDATE', 'schedules')
        ) AS g(role, privilege, object)
        WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = g.role)
    LOOP
        IF v_grant.privilege = 'EXECUTE' THEN
            FOR v_object IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                            WHERE p.pronamespace = v_schema AND p.proname = v_grant.object LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_object.f, v_grant.role);
            END LOOP;
        ELSIF v_grant.object = '*' THEN
            EXECUTE format('GRANT %s ON ALL TABLES IN SCHEMA orcastra TO %I', v_grant.privilege, v_grant.role);
        ELSIF to_regclass('orcastra.' || v_grant.object) IS NOT NULL THEN
            EXECUTE format('GRANT %s ON TABLE orcastra.%I TO %I', v_grant.privilege, v_grant.object, v_grant.role);
        END IF;
    END LOOP;
    RETURN NEXT 'privileges of orcastra_worker, orcastra_submitter, orcastra_reader and orcastra_orchestrator applied';
END
$$;
