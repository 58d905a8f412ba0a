-- Sub-workflows: a step with `workflow: ns/name@version` (issue 19, docs/templates.md
-- "Sub-workflows"). When the step may run, the transaction that decides it creates a child task of
-- that template (functions/subworkflows.sql); no worker ever claims the step. It stays in_progress
-- — with no lease and no worker — while the child runs, and completes or fails with it.

ALTER TABLE orcastra.steps
    -- The reference as the template writes it (`billing/refunds@1.2.0` or `billing/refunds`); NULL
    -- on every other step.
    ADD COLUMN workflow text,
    -- The child task the step's current run started (a retry of the step starts a new one).
    ADD COLUMN child_task_id uuid;

ALTER TABLE orcastra.tasks
    -- The workflow step that started this task, and that step's task: NULL for a task submitted
    -- by a client or a schedule. Kept (as plain ids, not foreign keys) when the parent is pruned,
    -- so a child's history still names its parent.
    ADD COLUMN parent_step_id bigint,
    ADD COLUMN parent_task_id uuid,
    -- How many workflow steps lead to this task: 0 for a submitted task; capped by
    -- orcastra.workflow_depth_limit().
    ADD COLUMN workflow_depth integer NOT NULL DEFAULT 0 CHECK (workflow_depth >= 0),
    ADD CONSTRAINT tasks_parent_complete CHECK ((parent_step_id IS NULL) = (parent_task_id IS NULL)
                                               AND (parent_step_id IS NULL) = (workflow_depth = 0));

-- A task's children (task show, cancelling a task with its children), and the live ones by their
-- step (children whose step no longer waits for them are cancelled: advance_subworkflows).
CREATE INDEX tasks_parent ON orcastra.tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX tasks_live_children ON orcastra.tasks (parent_step_id)
    WHERE parent_step_id IS NOT NULL AND state IN ('pending', 'in_progress', 'waiting_for_retry');
-- The workflow steps that wait for their child: few at any time, and what the orchestrator's
-- chore looks at (advance_subworkflows).
-- No index on steps for the workflow steps waiting for their child: a running workflow step has a
-- row in step_leases (0012), which advance_subworkflows reads, so updates of steps stay HOT.

-- A workflow step goes from pending straight to in_progress (its child task was made), and an
-- operator's retry of a failed one from error straight to in_progress (a new child task).
INSERT INTO orcastra.step_state_transitions_allowed (from_state, to_state) VALUES ('pending', 'in_progress'), ('error', 'in_progress');

-- Fan-out creation speed (issue 19: 10,000 `for_each` instances in one statement). Each instance
-- brings one step_items row and one step_edges row, and their foreign keys to steps were checked
-- one row at a time: three RI trigger calls per instance, each a query that looks the step up and
-- locks it — half of the statement's time, for references the same statement guarantees (the
-- rows point at steps it has just inserted, or at the group it holds locked). The three
-- constraints make way for statement-level triggers (functions/step_references.sql) that check
-- and lock every referenced step in one query per statement, and delete a deleted step's edges
-- and items in one statement: the same integrity (a dangling reference is refused with SQLSTATE
-- 23503, a deleted step takes its edges and items with it), measured in docs/benchmarks.md.
ALTER TABLE orcastra.step_edges DROP CONSTRAINT step_edges_parent_id_fkey, DROP CONSTRAINT step_edges_child_id_fkey;
ALTER TABLE orcastra.step_items DROP CONSTRAINT step_items_step_id_fkey;
