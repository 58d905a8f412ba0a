-- Task deadlines (a template's `timeout:`) and concurrency keys (a template's
-- `concurrency: {key, limit}`), docs/templates.md. The functions that use these columns are in
-- functions/limits.sql, functions/chores.sql, functions/create_task.sql and functions/settle.sql.

ALTER TABLE orcastra.tasks
    -- The template's timeout, copied at creation so that starting a task needs no template lookup.
    ADD COLUMN timeout_ms bigint CHECK (timeout_ms > 0),
    -- When the task fails if it has not finished: set each time it starts (the trigger below).
    ADD COLUMN deadline_at timestamptz,
    -- The template (namespace/name) and the key's value (jsonb_path_query_first over
    -- {"context": …} at creation, as text) and the limit of tasks running at once per key.
    ADD COLUMN concurrency_scope text,
    ADD COLUMN concurrency_key text,
    ADD COLUMN concurrency_limit integer CHECK (concurrency_limit > 0),
    -- A pending task that waits for a free slot of its key (not for its run_at), and since when:
    -- waiting tasks start in this order.
    ADD COLUMN waiting_for_slot boolean NOT NULL DEFAULT false,
    ADD COLUMN waiting_since timestamptz,
    ADD CONSTRAINT tasks_concurrency_complete CHECK ((concurrency_key IS NULL) = (concurrency_limit IS NULL)
                                                    AND (concurrency_key IS NULL) = (concurrency_scope IS NULL)),
    ADD CONSTRAINT tasks_waiting_for_slot CHECK (NOT waiting_for_slot OR concurrency_key IS NOT NULL);

-- The deadline chore's work: live tasks by deadline.
CREATE INDEX tasks_deadline ON orcastra.tasks (deadline_at)
    WHERE deadline_at IS NOT NULL AND state IN ('in_progress', 'waiting_for_retry');
-- Per key: the tasks holding a slot and the ones waiting for one, in line.
CREATE INDEX tasks_concurrency ON orcastra.tasks (concurrency_scope, concurrency_key, waiting_since)
    WHERE concurrency_key IS NOT NULL AND state IN ('pending', 'in_progress', 'waiting_for_retry');
-- Scheduled tasks waiting for their start time; a task waiting for a slot is due already and
-- must not be seen by start_due_tasks or next_due.
DROP INDEX orcastra.tasks_pending_run_at;
CREATE INDEX tasks_pending_run_at ON orcastra.tasks (run_at) WHERE state = 'pending' AND NOT waiting_for_slot;

-- The deadline is set whenever a task starts: at creation when it starts at once, when it leaves
-- pending (its start time came, or a slot freed), and when an operator's retry restarts a failed
-- task (a new deadline: the old one has passed). The WHEN clauses keep every other task update
-- free of any call.
CREATE FUNCTION orcastra.set_task_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.deadline_at := now() + NEW.timeout_ms * interval '1 millisecond';
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_deadline_on_insert BEFORE INSERT ON orcastra.tasks
    FOR EACH ROW WHEN (NEW.timeout_ms IS NOT NULL AND NEW.state = 'in_progress')
    EXECUTE FUNCTION orcastra.set_task_deadline();
CREATE TRIGGER tasks_deadline_on_start BEFORE UPDATE OF state ON orcastra.tasks
    FOR EACH ROW WHEN (NEW.timeout_ms IS NOT NULL AND NEW.state = 'in_progress' AND OLD.state IN ('pending', 'error'))
    EXECUTE FUNCTION orcastra.set_task_deadline();

-- Step concurrency (a step's `concurrency: N`): at most N attempts of one step of one template
-- version run at once, across all tasks; enforced by claim_steps (functions/claim.sql).
-- A limited step carries its scope, '<template id>:<step name>'; NULL for every other step, so
-- the column costs unlimited steps nothing (a NULL is a bit in the row's null bitmap).
ALTER TABLE orcastra.steps ADD COLUMN limit_scope text;
-- The limits, one row per scope, written when a task of the template is first created, and the
-- namespace that claims them (a claim looks up only its own namespace's scopes).
CREATE TABLE orcastra.step_limits (
    scope       text PRIMARY KEY,
    namespace   text NOT NULL,
    max_running integer NOT NULL CHECK (max_running > 0)
);
CREATE INDEX step_limits_namespace ON orcastra.step_limits (namespace);
-- The attempts running per scope: what a claim counts (at most max_running rows each).
CREATE INDEX steps_limit_running ON orcastra.steps (limit_scope) WHERE state = 'in_progress' AND limit_scope IS NOT NULL;
-- A limited step that stops running frees a slot: its namespace's workers are woken (at commit)
-- to claim the next. No polling; the WHEN clause keeps every other step update free of any call.
CREATE FUNCTION orcastra.step_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orcastra.notify_namespaces(ARRAY[NEW.namespace]);
    RETURN NULL;
END
$$;
CREATE TRIGGER steps_slot_freed AFTER UPDATE OF state ON orcastra.steps
    FOR EACH ROW WHEN (OLD.limit_scope IS NOT NULL AND OLD.state = 'in_progress' AND NEW.state <> 'in_progress')
    EXECUTE FUNCTION orcastra.step_slot_freed();
