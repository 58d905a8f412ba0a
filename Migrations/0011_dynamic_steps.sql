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
