-- The references steps.task_id → tasks and step_results.step_id → steps, kept by statement-level
-- triggers instead of row-by-row foreign keys (migration 0018 says why; step_references.sql does
-- the same for step_edges and step_items, and this file reuses its check_step_references).
--
-- What the foreign keys did, per statement instead of per row:
-- - Inserted steps (results) must name existing tasks (steps), which are locked FOR KEY SHARE
--   until commit, in ascending id, in one query (except those whose current version the
--   transaction wrote itself: no one else can delete those meanwhile); a missing one raises 23503
--   (foreign_key_violation) naming it. A task or step being deleted concurrently holds its row
--   FOR UPDATE, so the check waits for it and then finds the row gone.
-- - A statement deleting tasks deletes their steps (and so, below, their results, edges and
--   items) in one statement; one deleting steps deletes their results. orcastra.delete_owned
--   (retention.sql) deletes the children itself first and says so for the rest of its call with
--   the transaction-local setting orcastra.deleting_owned = 'on', which these cascades (and
--   delete_step_references) skip: they would only find nothing, one index probe per row.
-- - A key is never changed: an UPDATE that changes tasks.id, steps.task_id or step_results.step_id
--   is refused (23503; no code does so). The triggers fire only for statements that name the
--   column, so the hot path's updates pay nothing.
-- - TRUNCATE of tasks (steps) is refused when steps (results) are left, unless they were truncated
--   in the same statement: `TRUNCATE orcastra.tasks, orcastra.steps, orcastra.step_results, …`.
-- The invariant checker's `owned-rows-have-owners` reports any orphan (docs/reliability.md).

CREATE OR REPLACE FUNCTION orcastra.check_task_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_wanted uuid[];
    v_me xid;
    v_own integer;
    v_others uuid[];
    v_locked integer;
    v_missing uuid;
BEGIN
    SELECT array_agg(DISTINCT r.task_id) INTO v_wanted FROM new_rows r;
    IF v_wanted IS NULL THEN RETURN NULL; END IF;
    -- A task this transaction created (or updated) is counted, not locked: see check_step_references.
    v_me := pg_current_xact_id_if_assigned()::xid;
    SELECT count(*) FILTER (WHERE t.xmin IS NOT DISTINCT FROM v_me), array_agg(t.id ORDER BY t.id) FILTER (WHERE t.xmin IS DISTINCT FROM v_me)
    INTO v_own, v_others
    FROM orcastra.tasks t WHERE t.id = ANY (v_wanted);
    SELECT v_own + count(*) INTO v_locked FROM (
        SELECT t.id FROM orcastra.tasks t WHERE t.id = ANY (v_others) ORDER BY t.id FOR KEY SHARE
    ) l;
    IF v_locked < cardinality(v_wanted) THEN
        SELECT w.id INTO v_missing FROM unnest(v_wanted) AS w(id)
        WHERE NOT EXISTS (SELECT 1 FROM orcastra.tasks t WHERE t.id = w.id) ORDER BY w.id LIMIT 1;
        RAISE EXCEPTION 'insert on table "%" refers to task %, which does not exist', TG_TABLE_NAME, v_missing
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER steps_refer_to_tasks_on_insert AFTER INSERT ON orcastra.steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_task_references();
CREATE OR REPLACE TRIGGER step_results_refer_to_steps_on_insert AFTER INSERT ON orcastra.step_results
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_step_references();

CREATE OR REPLACE FUNCTION orcastra.refuse_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'update of table "%" may not change % (rows of other tables refer to it; delete and insert instead)',
        TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA, COLUMN = TG_ARGV[0];
END
$$;
CREATE OR REPLACE TRIGGER tasks_id_unchanged BEFORE UPDATE OF id ON orcastra.tasks
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orcastra.refuse_key_change('id');
CREATE OR REPLACE TRIGGER steps_task_id_unchanged BEFORE UPDATE OF task_id ON orcastra.steps
    FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id) EXECUTE FUNCTION orcastra.refuse_key_change('task_id');
CREATE OR REPLACE TRIGGER step_results_step_id_unchanged BEFORE UPDATE OF step_id ON orcastra.step_results
    FOR EACH ROW WHEN (OLD.step_id IS DISTINCT FROM NEW.step_id) EXECUTE FUNCTION orcastra.refuse_key_change('step_id');

CREATE OR REPLACE FUNCTION orcastra.delete_task_steps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('orcastra.deleting_owned', true) = 'on' THEN RETURN NULL; END IF;
    DELETE FROM orcastra.steps s WHERE s.task_id IN (SELECT o.id FROM old_tasks o);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER tasks_delete_steps AFTER DELETE ON orcastra.tasks
    REFERENCING OLD TABLE AS old_tasks FOR EACH STATEMENT EXECUTE FUNCTION orcastra.delete_task_steps();

CREATE OR REPLACE FUNCTION orcastra.delete_step_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('orcastra.deleting_owned', true) = 'on' THEN RETURN NULL; END IF;
    DELETE FROM orcastra.step_results r WHERE r.step_id IN (SELECT o.id FROM old_steps o);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER steps_delete_results AFTER DELETE ON orcastra.steps
    REFERENCING OLD TABLE AS old_steps FOR EACH STATEMENT EXECUTE FUNCTION orcastra.delete_step_results();

-- After the statement, so a TRUNCATE naming the owned tables too passes.
CREATE OR REPLACE FUNCTION orcastra.refuse_orphaning_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tasks' AND EXISTS (SELECT 1 FROM orcastra.steps) THEN
        RAISE EXCEPTION 'truncate of table "tasks" would leave its steps without a task'
            USING ERRCODE = 'foreign_key_violation', HINT = 'TRUNCATE orcastra.tasks, orcastra.steps, orcastra.step_results, orcastra.step_edges, orcastra.step_items together.';
    ELSIF TG_TABLE_NAME = 'steps' AND (EXISTS (SELECT 1 FROM orcastra.step_results) OR EXISTS (SELECT 1 FROM orcastra.step_edges)
                                       OR EXISTS (SELECT 1 FROM orcastra.step_items)) THEN
        RAISE EXCEPTION 'truncate of table "steps" would leave results, edges or items without their step'
            USING ERRCODE = 'foreign_key_violation', HINT = 'TRUNCATE orcastra.steps, orcastra.step_results, orcastra.step_edges, orcastra.step_items together.';
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER tasks_truncate_owned AFTER TRUNCATE ON orcastra.tasks
    FOR EACH STATEMENT EXECUTE FUNCTION orcastra.refuse_orphaning_truncate();
CREATE OR REPLACE TRIGGER steps_truncate_owned AFTER TRUNCATE ON orcastra.steps
    FOR EACH STATEMENT EXECUTE FUNCTION orcastra.refuse_orphaning_truncate();
