-- Retention (issue 20): the orchestrators delete finished tasks whose time is up, with everything
-- they own, and `orcastra prune` deletes (and archives) on request. What a template keeps and for
-- how long lives in its definition (`retention`, docs/templates.md); the defaults are the
-- orchestrators' (--retention-complete and the like).
--
-- Finding the expired tasks of one template in one final state is a range scan of this index, so
-- the chore's cost follows what it deletes, not the size of the history it keeps. Only finished
-- tasks are in it: the live path never writes to it except when a task finishes (its finishing
-- UPDATE changes state and finished_at, which already rules out a HOT update).
--
-- Built inside the migration's transaction, so it holds off writes to tasks while it builds: about
-- a second per million tasks. On a large database, build it beforehand with
--   CREATE INDEX CONCURRENTLY tasks_finished ON orcastra.tasks (template_id, state, finished_at)
--       WHERE state IN ('complete', 'error', 'cancelled', 'resolved_manually');
-- and this migration finds it there.
CREATE INDEX IF NOT EXISTS tasks_finished ON orcastra.tasks (template_id, state, finished_at)
    WHERE state IN ('complete', 'error', 'cancelled', 'resolved_manually');
