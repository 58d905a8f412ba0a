-- A template's lifecycle (`orcastra template default|deprecate`): which version a reference
-- without a version takes, and which versions new tasks may no longer use. Metadata only: a
-- version's definition never changes. Which version create_task_by_name picks is decided in
-- create_task.sql; deprecation is enforced by create_task.
--
-- A default is never a deprecated version. Both functions take the version's row lock before
-- they look at the other side, so that also holds when both run at once: set_default_version
-- holds a share lock on the version while it writes the default, deprecate_template updates the
-- version and then reads the default. Refusals are SQLSTATE OR002, unknown templates OR003.

-- Sets (p_version) or clears (NULL) the default version of p_namespace/p_name. Returns the
-- previous default, NULL when there was none. Setting the current default again changes nothing.
-- Raises OR003 when the version (or, to clear, the template) is not registered, OR002 when the
-- version is deprecated.
CREATE OR REPLACE FUNCTION orcastra.set_default_version(p_namespace text, p_name text, p_version text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_previous text;
    v_deprecated_at timestamptz;
BEGIN
    SELECT d.version INTO v_previous FROM orcastra.template_defaults d
    WHERE d.namespace = p_namespace AND d.name = p_name FOR UPDATE;
    IF p_version IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM orcastra.templates t WHERE t.namespace = p_namespace AND t.name = p_name) THEN
            RAISE EXCEPTION 'no template % is registered', p_namespace || '/' || p_name
                USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
        END IF;
        DELETE FROM orcastra.template_defaults d WHERE d.namespace = p_namespace AND d.name = p_name;
        RETURN v_previous;
    END IF;
    -- A share lock: a concurrent deprecate_template of this version waits, then sees the default.
    SELECT t.deprecated_at INTO v_deprecated_at FROM orcastra.templates t
    WHERE t.namespace = p_namespace AND t.name = p_name AND t.version = p_version FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template %/%@% is registered', p_namespace, p_name, p_version
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    IF v_deprecated_at IS NOT NULL THEN
        RAISE EXCEPTION '%/%@% is deprecated, and a deprecated version cannot be the default', p_namespace, p_name, p_version
            USING ERRCODE = 'OR002', HINT = 'Lift the deprecation first (`orcastra template deprecate --undo`), or choose another version.';
    END IF;
    INSERT INTO orcastra.template_defaults AS d (namespace, name, version) VALUES (p_namespace, p_name, p_version)
    ON CONFLICT (namespace, name) DO UPDATE SET version = EXCLUDED.version, set_at = now()
    WHERE d.version IS DISTINCT FROM EXCLUDED.version;
    RETURN v_previous;
END
$$;

-- Deprecates p_namespace/p_name@p_version: tasks made from it go on, new tasks are refused
-- unless they pin it with p_allow_deprecated. Deprecating it again keeps the first time and
-- replaces the reason when one is given. Returns the deprecation and whether this call made it.
-- Raises OR003 for an unknown version, OR002 when it is the default version (set another default
-- or clear it first).
CREATE OR REPLACE FUNCTION orcastra.deprecate_template(p_namespace text, p_name text, p_version text, p_reason text DEFAULT NULL)
RETURNS TABLE (deprecated_at timestamptz, deprecation_reason text, changed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_was_live boolean;
    v_row record;
BEGIN
    SELECT t.id, t.deprecated_at IS NULL INTO v_id, v_was_live FROM orcastra.templates t
    WHERE t.namespace = p_namespace AND t.name = p_name AND t.version = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template %/%@% is registered', p_namespace, p_name, p_version
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    UPDATE orcastra.templates t
    SET deprecated_at = coalesce(t.deprecated_at, now()), deprecation_reason = coalesce(p_reason, t.deprecation_reason)
    WHERE t.id = v_id
    RETURNING t.deprecated_at, t.deprecation_reason INTO v_row;
    IF EXISTS (SELECT 1 FROM orcastra.template_defaults d
               WHERE d.namespace = p_namespace AND d.name = p_name AND d.version = p_version) THEN
        RAISE EXCEPTION '%/%@% is the default version, and a default cannot be deprecated', p_namespace, p_name, p_version
            USING ERRCODE = 'OR002', HINT = 'Set another default (`orcastra template default`) or clear it (`--clear`) first.';
    END IF;
    RETURN QUERY SELECT v_row.deprecated_at, v_row.deprecation_reason, v_was_live;
END
$$;

-- Lifts the deprecation of p_namespace/p_name@p_version: new tasks may use it again. Returns
-- whether it was deprecated. Raises OR003 for an unknown version.
CREATE OR REPLACE FUNCTION orcastra.undeprecate_template(p_namespace text, p_name text, p_version text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_was_deprecated boolean;
BEGIN
    SELECT t.id, t.deprecated_at IS NOT NULL INTO v_id, v_was_deprecated FROM orcastra.templates t
    WHERE t.namespace = p_namespace AND t.name = p_name AND t.version = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no template %/%@% is registered', p_namespace, p_name, p_version
            USING ERRCODE = 'OR003', HINT = 'Register it first with `orcastra template register FILE`.';
    END IF;
    UPDATE orcastra.templates t SET deprecated_at = NULL, deprecation_reason = NULL WHERE t.id = v_id AND v_was_deprecated;
    RETURN v_was_deprecated;
END
$$;
