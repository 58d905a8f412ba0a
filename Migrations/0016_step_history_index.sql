-- The history of steps with one index fewer (issue 12, docs/benchmarks.md "Statements per step"):
-- every state change of a step writes a step_transitions row (3.75 per executed step of a linear
-- task), and each row wrote three index tuples — the primary key (id, task_created_at), (step_id, id)
-- and (task_id). Every reader of one task's or one step's history knows the task: the task's log and
-- `orcastra step show` (OrcastraClient.events, the HTTP API and the dashboard through it), retention's
-- archive, the demo, the bench; the invariant checker's per-step probe joins the step's row, which
-- names its task. So one index, (task_id, step_id, id), serves them all: by its first column a task's
-- history, by its first two a step's, in order. The dashboard's newest transitions read the primary
-- key, as before. The partitioning and the key stay (0014).
--
-- Built on the partitioned table: each week's partition gets its index, new partitions inherit it.
-- The old indexes go after the new one exists, in this migration's transaction, so that no reader is
-- left without one.
CREATE INDEX step_transitions_task_step ON orcastra.step_transitions (task_id, step_id, id);
DROP INDEX orcastra.step_transitions_step;
DROP INDEX orcastra.step_transitions_task;
