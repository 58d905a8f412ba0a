-- The live-step tables (0012_live_step_tables.sql): step_queue (enqueued), step_leases (in_progress),
-- step_retries (waiting_for_retry) and step_fanout_held (pending instances of a fan-out). A state
-- change moves a step between them in the state-change trigger (audit.sql); this file keeps them
-- right when steps are inserted or deleted, and can rebuild them from steps.state, the truth.

-- Steps created live (a task's roots, a fan-out's instances): one call per INSERT statement.
CREATE OR REPLACE FUNCTION orcastra.live_steps_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orcastra.step_queue (step_id, namespace, priority, enqueued_at, limit_scope, fanout_of)
    SELECT n.id, n.namespace, n.priority, n.enqueued_at, n.limit_scope, n.fanout_of
    FROM new_steps n WHERE n.state = 'enqueued';
    INSERT INTO orcastra.step_fanout_held (fanout_of, item_index, step_id)
    SELECT n.fanout_of, n.item_index, n.id FROM new_steps n WHERE n.state = 'pending' AND n.fanout_of IS NOT NULL;
    -- Created running or waiting for a retry only by hand (tests, imports): kept right all the same.
    INSERT INTO orcastra.step_leases (step_id, namespace, limit_scope, fanout_of)
    SELECT n.id, n.namespace, n.limit_scope, n.fanout_of FROM new_steps n WHERE n.state = 'in_progress';
    INSERT INTO orcastra.step_retries (step_id, namespace, visible_at, fanout_of)
    SELECT n.id, n.namespace, n.visible_at, n.fanout_of FROM new_steps n WHERE n.state = 'waiting_for_retry';
    RETURN NULL;
END
$$;

-- Steps deleted (retention deletes finished ones only; a task deleted by hand takes its live steps).
CREATE OR REPLACE FUNCTION orcastra.live_steps_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_steps o WHERE o.state IN ('enqueued', 'in_progress', 'waiting_for_retry')
                                             OR (o.state = 'pending' AND o.fanout_of IS NOT NULL)) THEN
        DELETE FROM orcastra.step_queue q USING old_steps o
        WHERE o.state = 'enqueued' AND q.namespace = o.namespace AND q.priority = o.priority
          AND q.enqueued_at = o.enqueued_at AND q.step_id = o.id;
        DELETE FROM orcastra.step_leases l USING old_steps o WHERE o.state = 'in_progress' AND l.step_id = o.id;
        DELETE FROM orcastra.step_retries r USING old_steps o
        WHERE o.state = 'waiting_for_retry' AND r.visible_at = o.visible_at AND r.step_id = o.id;
        DELETE FROM orcastra.step_fanout_held h USING old_steps o
        WHERE o.state = 'pending' AND h.fanout_of = o.fanout_of AND h.item_index = o.item_index;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS steps_live_inserted ON orcastra.steps;
CREATE TRIGGER steps_live_inserted AFTER INSERT ON orcastra.steps
    REFERENCING NEW TABLE AS new_steps FOR EACH STATEMENT EXECUTE FUNCTION orcastra.live_steps_inserted();
DROP TRIGGER IF EXISTS steps_live_deleted ON orcastra.steps;
CREATE TRIGGER steps_live_deleted AFTER DELETE ON orcastra.steps
    REFERENCING OLD TABLE AS old_steps FOR EACH STATEMENT EXECUTE FUNCTION orcastra.live_steps_deleted();

-- Rebuilds the four tables from steps.state: rows of steps no longer in the table's state go, the
-- missing ones come. Returns how many rows it changed (0 when they were right). Run below by every
-- `orcastra migrate` that changes this file — 0012 creates the tables empty, and a step whose state
-- changed between that migration and this file (the old trigger in place) is caught here — under a
-- SHARE lock on steps: no step changes state while it runs, and every change after it commits goes
-- through the triggers above. Scans every live step once (the whole table without an index on
-- state): meant for upgrades and repairs, not for a loop.
CREATE OR REPLACE FUNCTION orcastra.sync_live_steps() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_changed bigint := 0;
    v_n bigint;
BEGIN
    LOCK TABLE orcastra.steps IN SHARE MODE;
    -- An enqueued step always has its enqueued_at (the state-change trigger sets it); older rows too.
    UPDATE orcastra.steps s SET enqueued_at = now() WHERE s.state = 'enqueued' AND s.enqueued_at IS NULL;

    DELETE FROM orcastra.step_queue q
    WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = q.step_id AND s.state = 'enqueued' AND s.namespace = q.namespace
                      AND s.priority = q.priority AND s.enqueued_at = q.enqueued_at);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;
    INSERT INTO orcastra.step_queue (step_id, namespace, priority, enqueued_at, limit_scope, fanout_of)
    SELECT s.id, s.namespace, s.priority, s.enqueued_at, s.limit_scope, s.fanout_of FROM orcastra.steps s
    WHERE s.state = 'enqueued' AND NOT EXISTS (SELECT 1 FROM orcastra.step_queue q WHERE q.step_id = s.id);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;

    DELETE FROM orcastra.step_leases l
    WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = l.step_id AND s.state = 'in_progress');
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;
    INSERT INTO orcastra.step_leases (step_id, namespace, limit_scope, fanout_of)
    SELECT s.id, s.namespace, s.limit_scope, s.fanout_of FROM orcastra.steps s
    WHERE s.state = 'in_progress' AND NOT EXISTS (SELECT 1 FROM orcastra.step_leases l WHERE l.step_id = s.id);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;

    DELETE FROM orcastra.step_retries r
    WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = r.step_id AND s.state = 'waiting_for_retry' AND s.visible_at = r.visible_at);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;
    INSERT INTO orcastra.step_retries (step_id, namespace, visible_at, fanout_of)
    SELECT s.id, s.namespace, s.visible_at, s.fanout_of FROM orcastra.steps s
    WHERE s.state = 'waiting_for_retry' AND NOT EXISTS (SELECT 1 FROM orcastra.step_retries r WHERE r.step_id = s.id);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;

    DELETE FROM orcastra.step_fanout_held h
    WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = h.step_id AND s.state = 'pending'
                      AND s.fanout_of = h.fanout_of AND s.item_index = h.item_index);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;
    INSERT INTO orcastra.step_fanout_held (fanout_of, item_index, step_id)
    SELECT s.fanout_of, s.item_index, s.id FROM orcastra.steps s
    WHERE s.state = 'pending' AND s.fanout_of IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM orcastra.step_fanout_held h WHERE h.fanout_of = s.fanout_of AND h.item_index = s.item_index);
    GET DIAGNOSTICS v_n = ROW_COUNT; v_changed := v_changed + v_n;

    -- Workers may have missed steps enqueued while the tables were out of date: wake them.
    IF v_changed > 0 THEN
        PERFORM orcastra.notify_namespaces(ARRAY(SELECT DISTINCT q.namespace FROM orcastra.step_queue q));
    END IF;
    RETURN v_changed;
END
$$;

SELECT orcastra.sync_live_steps();
