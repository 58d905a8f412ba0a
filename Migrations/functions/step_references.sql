-- The references of step_edges (parent_id, child_id) and step_items (step_id) to steps, kept by
-- statement-level triggers instead of row-by-row foreign keys (0013_sub_workflows.sql says why).
--
-- What a foreign key does, per statement: every step an inserted or updated row points at must
-- exist, and is locked FOR KEY SHARE until commit (so a concurrent delete waits, then takes the
-- new rows with it) — one query for the whole statement, locking in ascending id (the one lock
-- order); a missing one raises 23503 (foreign_key_violation) naming it. A statement that deletes
-- steps deletes their edges (either end) and items in three statements (ON DELETE CASCADE did it
-- row by row).

CREATE OR REPLACE FUNCTION orcastra.check_step_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_wanted bigint[];
    v_me xid;
    v_own integer;
    v_others bigint[];
    v_locked integer;
    v_missing bigint;
BEGIN
    -- Counted, not anti-joined: the callers' plans forbid hash and merge joins (see the top of
    -- claim.sql), and a nested loop of 10,000 × 10,000 takes seconds. The slow search for the
    -- missing id runs only when one is missing.
    IF TG_TABLE_NAME = 'step_edges' THEN
        SELECT array_agg(DISTINCT x.id) INTO v_wanted FROM (SELECT r.parent_id AS id FROM new_rows r UNION ALL SELECT r.child_id FROM new_rows r) x;
    ELSE
        SELECT array_agg(DISTINCT r.step_id) INTO v_wanted FROM new_rows r;
    END IF;
    IF v_wanted IS NULL THEN RETURN NULL; END IF;
    -- A step whose current version this transaction wrote (inserted it, or updated it and so holds
    -- its row lock) cannot be deleted by another before this one ends: it is counted, not locked
    -- again. Only the others are locked. A fan-out's 10,000 new instances, their items and edges
    -- checked by locking each paid 17–20 ms a statement for locks that protected nothing.
    -- (The statement wrote rows, so the transaction has its id; asked without assigning one all
    -- the same. A row written in a subtransaction carries that one's id and is locked. A frozen
    -- row keeps its old xmin, which could equal ours only 2^32 transactions later — then one row
    -- goes unlocked, and only rows of finished tasks are ever deleted.)
    v_me := pg_current_xact_id_if_assigned()::xid;
    SELECT count(*) FILTER (WHERE s.xmin IS NOT DISTINCT FROM v_me), array_agg(s.id ORDER BY s.id) FILTER (WHERE s.xmin IS DISTINCT FROM v_me)
    INTO v_own, v_others
    FROM orcastra.steps s WHERE s.id = ANY (v_wanted);
    SELECT v_own + count(*) INTO v_locked FROM (
        SELECT s.id FROM orcastra.steps s WHERE s.id = ANY (v_others) ORDER BY s.id FOR KEY SHARE
    ) l;
    IF v_locked < cardinality(v_wanted) THEN
        SELECT w.id INTO v_missing FROM unnest(v_wanted) AS w(id)
        WHERE NOT EXISTS (SELECT 1 FROM orcastra.steps s WHERE s.id = w.id) ORDER BY w.id LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "%" refers to step %, which does not exist', TG_TABLE_NAME, v_missing
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER step_edges_refer_to_steps_on_insert AFTER INSERT ON orcastra.step_edges
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_step_references();
CREATE OR REPLACE TRIGGER step_edges_refer_to_steps_on_update AFTER UPDATE ON orcastra.step_edges
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_step_references();
CREATE OR REPLACE TRIGGER step_items_refer_to_steps_on_insert AFTER INSERT ON orcastra.step_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_step_references();
CREATE OR REPLACE TRIGGER step_items_refer_to_steps_on_update AFTER UPDATE ON orcastra.step_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orcastra.check_step_references();

CREATE OR REPLACE FUNCTION orcastra.delete_step_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- orcastra.delete_owned deleted them already (task_references.sql).
    IF current_setting('orcastra.deleting_owned', true) = 'on' THEN RETURN NULL; END IF;
    DELETE FROM orcastra.step_edges e WHERE e.parent_id IN (SELECT o.id FROM old_steps o);
    DELETE FROM orcastra.step_edges e WHERE e.child_id IN (SELECT o.id FROM old_steps o);
    DELETE FROM orcastra.step_items i WHERE i.step_id IN (SELECT o.id FROM old_steps o);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER steps_delete_references AFTER DELETE ON orcastra.steps
    REFERENCING OLD TABLE AS old_steps FOR EACH STATEMENT EXECUTE FUNCTION orcastra.delete_step_references();
