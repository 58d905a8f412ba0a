-- Conditions, triggers and the `skipped` step state (issue 19, docs/templates.md "Conditions and
-- triggers", docs/state-machines.md).
--
-- A step may carry a `when:` predicate (a PostgreSQL jsonpath, evaluated with jsonb_path_match over
-- the step's input document in the transaction that makes it ready) and a `trigger:` rule saying
-- which outcomes of its parents let it run. Both are copied from the template onto the step row at
-- creation, so deciding readiness never reads the template. Plain steps keep both NULL: the hot
-- path (release_children) tests two NULL columns and a zero counter and is otherwise unchanged.

ALTER TABLE orcastra.steps DROP CONSTRAINT steps_state_check;
ALTER TABLE orcastra.steps ADD CONSTRAINT steps_state_check CHECK (state IN
    ('pending', 'enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually',
     'skipped'));

ALTER TABLE orcastra.steps
    -- NULL is the default rule, all_success.
    ADD COLUMN trigger_rule text CHECK (trigger_rule IN ('all_done', 'one_success', 'none_failed')),
    -- The step's `when:`; NULL when it has none.
    ADD COLUMN when_condition jsonpath,
    -- Parents that were skipped (they are also no longer counted in pending_parents).
    ADD COLUMN skipped_parents integer NOT NULL DEFAULT 0 CHECK (skipped_parents >= 0);

-- A pending step whose `when:` is false, or whose parents' outcomes its trigger rejects, is skipped.
-- skipped is final: nothing moves out of it.
INSERT INTO orcastra.step_state_transitions_allowed (from_state, to_state) VALUES ('pending', 'skipped');

-- A template's `when:` expressions must be jsonpath PostgreSQL accepts: checked at registration
-- (the cast raises 42601 with PostgreSQL's own message), so a difference between the offline
-- checker (JSONPathSyntax) and PostgreSQL shows at `template register`, never at a submission.
CREATE FUNCTION orcastra.definition_conditions_parse(p_definition jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM (s.step->>'when')::jsonpath
    FROM jsonb_array_elements(p_definition->'steps') AS s(step)
    WHERE s.step ? 'when';
    RETURN true;
END
$$;
ALTER TABLE orcastra.templates ADD CONSTRAINT templates_conditions_parse CHECK (orcastra.definition_conditions_parse(definition));

-- Fan-out over data (`for_each:` + `max_parallel:`, docs/templates.md "Fan-out"). The fan-out step
-- (the group) keeps its row and never runs itself: when its parents allow it, it is fanned out —
-- one instance row per item (`charge[0]`, `charge[1]`, …; each an edge instance → group), in the
-- same transaction — and it completes, with the list of its instances' results in index order,
-- when the last instance completes. Its own children therefore see parents.<group> as that list.
ALTER TABLE orcastra.steps
    -- On a group: the jsonpath that yields the list, the cap on running instances, and how many
    -- instances it was fanned out into (NULL until then).
    ADD COLUMN for_each jsonpath,
    ADD COLUMN max_parallel integer CHECK (max_parallel > 0),
    ADD COLUMN instances integer CHECK (instances >= 0),
    -- On an instance: its group and its item's index.
    ADD COLUMN fanout_of bigint,
    ADD COLUMN item_index integer;

-- The items themselves, one row per instance, beside the narrow steps table.
CREATE TABLE orcastra.step_items (
    step_id bigint PRIMARY KEY REFERENCES orcastra.steps (id) ON DELETE CASCADE,
    item    jsonb NOT NULL
);

-- A group's instances held back by max_parallel, in index order; and those running, to count.
CREATE INDEX steps_fanout_held ON orcastra.steps (fanout_of, item_index) WHERE fanout_of IS NOT NULL AND state = 'pending';
CREATE INDEX steps_fanout_active ON orcastra.steps (fanout_of)
    WHERE fanout_of IS NOT NULL AND state IN ('enqueued', 'in_progress', 'waiting_for_retry');
CREATE INDEX steps_fanout_all ON orcastra.steps (fanout_of, item_index) WHERE fanout_of IS NOT NULL;

-- A group completes without running (its instances did, or its list was empty), or fails without
-- running (its for_each did not yield a list, or a list longer than the cap).
INSERT INTO orcastra.step_state_transitions_allowed (from_state, to_state) VALUES ('pending', 'complete'), ('pending', 'error');
