-- The last row-level foreign keys among what a task owns (issue 20: prune throughput).
--
-- Deleting a task cascaded to its steps, and a step to its result, through PostgreSQL's row-level
-- referential-integrity triggers: one query per deleted task and one per deleted step (and one per
-- inserted step or result, to check its parent). Measured, those queries were 67 of the 80 ms of
-- a prune batch's deletes. The references are now kept by statement-level triggers
-- (functions/task_references.sql, the pattern 0013 introduced for step_edges and step_items): a
-- statement's inserted steps and results are checked against their parents in one query, and a
-- statement that deletes tasks or steps deletes what they own in one query per table. The prune
-- (functions/retention.sql) deletes children first, set-based, in the house lock order.
--
-- Dropping a foreign key takes a brief ACCESS EXCLUSIVE lock on both tables and reads nothing.
ALTER TABLE orcastra.steps DROP CONSTRAINT IF EXISTS steps_task_id_fkey;
ALTER TABLE orcastra.step_results DROP CONSTRAINT IF EXISTS step_results_step_id_fkey;
